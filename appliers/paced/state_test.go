package paced

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestStateInCluster: steady reconciles write nothing, the state is in the
// annotation with the highest Seq, statuses read like bcs-client list, and
// Delete removes everything.
func TestStateInCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRig(t)
	e := &Engine{Client: r.cs, Poll: 2 * time.Second}
	v0 := seedSpec(r.ns, "v1.1.0", 2, 1, 1, vocab.OrderCreateFirst, upgrade, false)
	deploy(ctx, r, shared(e), v0)
	// Count the engine's write requests (the ReplicaSet controller may
	// still update the status, so the resourceVersion is no measure).
	var writes []string
	var writesMu sync.Mutex
	rc := testenv.Config(t)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			if req.Method != http.MethodGet {
				writesMu.Lock()
				writes = append(writes, req.Method+" "+req.URL.Path)
				writesMu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	steady := &Engine{Client: kubernetes.NewForConfigOrDie(rc), Poll: 2 * time.Second}
	for i := 0; i < 3; i++ {
		if st, err := steady.Reconcile(ctx, v0, Controls{}); err != nil || !st.Done {
			t.Fatalf("steady Reconcile: %v %s", err, describeStatus(st))
		}
	}
	writesMu.Lock()
	if len(writes) != 0 {
		t.Errorf("steady reconciles wrote: %v", writes)
	}
	writesMu.Unlock()
	again, err := r.cs.AppsV1().ReplicaSets(r.ns).Get(ctx, "test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{vocab.LabelDeployment: "test", vocab.LabelApplication: "test", LabelManagedBy: ManagedBy} {
		if again.Labels[k] != want || again.Spec.Template.Labels[k] != want {
			t.Errorf("label %s = %q on the ReplicaSet, %q on its pods; want %q", k, again.Labels[k], again.Spec.Template.Labels[k], want)
		}
	}
	st, err := decodeState(again.Annotations[AnnotationState])
	if err != nil || st.Base != "test" || st.Phase != PhaseSteady || st.Revision != "commit-v1.1.0" {
		t.Errorf("persisted state %+v, %v", st, err)
	}

	v1 := seedSpec(r.ns, "v1.1.1", 2, 1, 1, vocab.OrderCreateFirst, time.Hour, false)
	s := r.drive(ctx, shared(e), v1, &Controls{}, func(s Status) bool { return s.Cycle == 1 && s.Phase == PhaseIdle })
	if s.Status != StatusRollingUpdate || s.Cycles != 2 || s.NextCycleAt.IsZero() || len(s.Apps) != 2 {
		t.Errorf("mid-rollout status: %s next at %s", describeStatus(s), s.NextCycleAt)
	}
	for _, a := range s.Apps {
		// As the seed's bcs-client list: both applications show the
		// deployment's instance (2) during the update, 1 running each.
		want := AppStatus{Name: a.Name, Status: StatusRollingUpdate, Instance: 2, RunningInstance: 1, Namespace: r.ns}
		got := a
		got.Message, got.CreateTime = "", time.Time{}
		if diff := cmp.Diff(want, got); diff != "" || a.CreateTime.IsZero() {
			t.Errorf("application line (-want +got):\n%s", diff)
		}
	}
	t.Logf("bcs-client list -t app:\n%s", formatApps(s.Apps))
	if _, err := e.Delete(ctx, r.ns, "test", nil); err != nil {
		t.Fatal(err)
	}
	if got := r.rsReplicas(ctx); len(got) != 0 {
		t.Errorf("after Delete: %v", got)
	}
	r.waitPods(ctx, 0, "")
}

func formatApps(apps []AppStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s %-14s %-8s %-16s %-30.30s %s\n", "NAME", "STATUS", "INSTANCE", "RUNNING_INSTANCE", "MESSAGE", "NAMESPACE")
	for _, a := range apps {
		fmt.Fprintf(&b, "%-20s %-14s %-8d %-16d %-30.30s %s\n", a.Name, a.Status, a.Instance, a.RunningInstance, a.Message, a.Namespace)
	}
	return b.String()
}
