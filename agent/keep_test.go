package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/state"
)

// TestRejectedRevisionKeepsInForce: while an app's newest revision is
// rejected (a YAML typo in one of its manifests; an invalid gitpace.yaml,
// which rejects every app), the revision in force is still kept applied:
// a hand scale of its Deployment by another field manager and the
// deletion of its ConfigMap are corrected at once (--resync is an hour,
// no new commit), the rejection stays recorded, and a further pass writes
// nothing.
func TestRejectedRevisionKeepsInForce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		broken map[string]string
	}{
		{"manifest typo", map[string]string{"apps/web/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [name: x\n"}},
		{"invalid gitpace.yaml", map[string]string{"apps/gitpace.yaml": "bogus: 1\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			good := f.repo.Commit("web", map[string]string{"apps/web/all.yaml": seed(t, "test1-1-0.yaml") + "---\n" + cm})
			f.build(nil)
			stop := f.runStoppable()
			settled := func() bool {
				st := f.appState("web")
				return st != nil && st.Health == health.Healthy && rolledOut(f.deployment("test"), imageV0)
			}
			f.eventually("web rolled out and Healthy", time.Minute, settled)
			bad := f.repo.Commit("broken", tc.broken)
			f.eventually("the broken revision rejected", 30*time.Second, func() bool {
				st := f.appState("web")
				return st.Rejected != nil && st.Rejected.Revision.Commit == bad
			})

			ctx := context.Background()
			// kubectl scale deploy/test --replicas=5
			scaled, err := f.kube.AppsV1().Deployments(f.ns).UpdateScale(ctx, "test",
				&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: f.ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}},
				metav1.UpdateOptions{FieldManager: "kubectl-scale"})
			if err != nil {
				t.Fatal(err)
			}
			f.eventually("replicas restored to the revision in force's 3", 30*time.Second, func() bool {
				d := f.deployment("test")
				return *d.Spec.Replicas == 3 && d.Generation > scaled.Generation
			})
			// kubectl delete cm test-config
			old, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "test-config", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.kube.CoreV1().ConfigMaps(f.ns).Delete(ctx, "test-config", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			f.eventually("test-config re-created", 30*time.Second, func() bool {
				c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "test-config", metav1.GetOptions{})
				return err == nil && c.UID != old.UID && c.Data["greeting"] == "hello"
			})
			f.eventually("web Healthy again", time.Minute, settled)
			st := f.appState("web")
			f.requireRejected(st, bad, good)
			if st.Phase != state.Failed {
				t.Errorf("phase = %s, want Failed (the rejection recorded)", st.Phase)
			}
			out := f.out.String()
			for _, w := range []string{"Deployment/" + f.ns + "/test", "ConfigMap/" + f.ns + "/test-config"} {
				if !strings.Contains(out, "app web: drift: "+w) || !strings.Contains(out, "in force while the newest one is rejected") {
					t.Errorf("agent output does not report the drift of %s:\n%s", w, out)
				}
			}

			// No write loop: a new process's full passes write nothing.
			stop()
			a := f.fullPasses()
			f.pass(a)
			before := f.counter.writes.Load()
			f.pass(a)
			if n := f.counter.writes.Load() - before; n != 0 {
				t.Errorf("a further pass made %d writes, want 0\noutput:\n%s", n, f.out.String())
			}
			f.requireRejected(f.appState("web"), bad, good)
		})
	}
}

// TestRejectedRevisionHealthOfObjectsInForce: while the newest revision is
// rejected, the health is read from the objects in force. A ConfigMap
// deleted by hand that cannot be re-created (a ValidatingAdmissionPolicy
// refuses it) makes the app Missing, naming it, not Healthy; once the
// policy goes, the next pass re-creates it and the app is Healthy again,
// still with the rejection recorded.
func TestRejectedRevisionHealthOfObjectsInForce(t *testing.T) {
	f := newFixture(t)
	good := f.repo.Commit("w", map[string]string{"apps/w/cm.yaml": namedCM("w-c", "1")})
	a := f.fullPasses()
	f.pass(a)
	if st := f.appState("w"); st.Phase != state.Synced || st.Health != health.Healthy {
		t.Fatalf("first deploy: %s, %s", st.Phase, st.Health)
	}
	bad := f.repo.Commit("typo", map[string]string{"apps/w/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [name: w-c\n"})
	f.pass(a)
	f.requireRejected(f.appState("w"), bad, good)

	ctx := context.Background()
	if err := f.kube.CoreV1().ConfigMaps(f.ns).Delete(ctx, "w-c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "w-c", Namespace: f.ns}}
	admissionPolicy(t, f.ns, []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		`object.metadata.name != "w-c"`, "w-c refused", func(ctx context.Context) error {
			_, err := f.kube.CoreV1().ConfigMaps(f.ns).Create(ctx, probe, metav1.CreateOptions{})
			if err == nil {
				_ = f.kube.CoreV1().ConfigMaps(f.ns).Delete(ctx, "w-c", metav1.DeleteOptions{})
			}
			return err
		})
	f.pass(a)
	st := f.appState("w")
	f.requireRejected(st, bad, good)
	if st.Health != health.Missing || !strings.Contains(st.HealthReason, "ConfigMap/"+f.ns+"/w-c") {
		t.Errorf("health = %s (%s), want Missing naming ConfigMap/%s/w-c", st.Health, st.HealthReason, f.ns)
	}

	removeAdmissionPolicy(t, f.ns)
	f.eventually("w-c re-created by a pass once the policy is gone", 30*time.Second, func() bool {
		f.pass(a)
		_, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "w-c", metav1.GetOptions{})
		return err == nil
	})
	st = f.appState("w")
	f.requireRejected(st, bad, good)
	if st.Health != health.Healthy {
		t.Errorf("health after the re-creation = %s (%s), want Healthy", st.Health, st.HealthReason)
	}
}
