package agent_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/plan"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

const (
	shopImage0 = "registry.example/shop:1.0.0"
	shopImage1 = "registry.example/shop:1.0.1"
	shopApp    = "shop/overlays/prod"
)

// shopBase is a kustomize base: a Deployment reading a generated
// ConfigMap, a Service and a plain ConfigMap "extra" (listed only when
// withExtra).
func shopBase(level string, withExtra bool) map[string]string {
	resources := "  - deployment.yaml\n  - service.yaml\n"
	if withExtra {
		resources += "  - extra.yaml\n"
	}
	return map[string]string{
		"apps/shop/base/kustomization.yaml": "resources:\n" + resources +
			"configMapGenerator:\n  - name: shop-config\n    literals:\n      - LOG_LEVEL=" + level + "\n",
		"apps/shop/base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: shop
  template:
    metadata:
      labels:
        app: shop
    spec:
      containers:
        - name: shop
          image: registry.example/shop:0.0.0
          envFrom:
            - configMapRef:
                name: shop-config
`,
		"apps/shop/base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: shop\nspec:\n  selector:\n    app: shop\n  ports:\n    - port: 80\n",
		"apps/shop/base/extra.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: \"1\"\n",
	}
}

// shopOverlay is the prod overlay setting the image tag.
func shopOverlay(tag string) map[string]string {
	return map[string]string{"apps/shop/overlays/prod/kustomization.yaml": `resources:
  - ../../base
images:
  - name: registry.example/shop
    newTag: "` + tag + `"
`}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// configMaps returns the names of the ConfigMaps in ns starting with prefix.
func (f *fixture) configMaps(prefix string) []string {
	f.t.Helper()
	l, err := f.kube.CoreV1().ConfigMaps(f.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, c := range l.Items {
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c.Name)
		}
	}
	return out
}

func envFromName(f *fixture) string {
	d := f.deployment("shop")
	if d == nil || len(d.Spec.Template.Spec.Containers[0].EnvFrom) == 0 {
		return ""
	}
	return d.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name
}

// TestKustomizeOverlay runs a base + overlay kustomize app through the
// agent on the control plane: only the overlay is an app; an overlay image
// change rolls the Deployment; a configMapGenerator change rolls it onto
// the new hash-suffixed ConfigMap, and the old one is deleted only once the
// new one exists and the Deployment uses it; removing a resource from the
// base prunes it; PAUSE in the overlay's directory holds an image change
// (the Deployment is paused) until it is removed; git revert of an image
// change rolls back.
func TestKustomizeOverlay(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("shop 1.0.0", merge(shopBase("info", true), shopOverlay("1.0.0")))
	f.run()
	f.eventually("1.0.0 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("shop"), shopImage0) })
	if st := f.appState("shop/base"); st != nil {
		t.Errorf("the base is an app of its own: %s", describe(st))
	}
	oldCM := envFromName(f)
	if !strings.HasPrefix(oldCM, "shop-config-") || len(f.configMaps("extra")) != 1 {
		t.Fatalf("generated ConfigMap %q, extra %v", oldCM, f.configMaps("extra"))
	}

	// An overlay image change rolls the Deployment.
	f.repo.Commit("shop 1.0.1", shopOverlay("1.0.1"))
	f.eventually("1.0.1 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("shop"), shopImage1) })

	// A generated ConfigMap change rolls the Deployment; the old
	// ConfigMap stays until the new one is there and in use.
	f.repo.Commit("log level debug", shopBase("debug", true))
	f.eventually("rolled onto the new ConfigMap, old one pruned", time.Minute, func() bool {
		cms, ref := f.configMaps("shop-config-"), envFromName(f)
		hasOld := false
		for _, c := range cms {
			hasOld = hasOld || c == oldCM
		}
		if !hasOld && (ref == oldCM || len(cms) == 0) {
			t.Fatalf("old ConfigMap %s deleted while the Deployment uses %s (ConfigMaps %v)", oldCM, ref, cms)
		}
		return ref != oldCM && !hasOld && len(cms) == 1 && cms[0] == ref && rolledOut(f.deployment("shop"), shopImage1)
	})

	// Removing a resource from the base prunes it.
	f.repo.Commit("drop extra", shopBase("debug", false))
	f.eventually("extra pruned", time.Minute, func() bool { return len(f.configMaps("extra")) == 0 })

	// PAUSE in the overlay directory, committed with an image change,
	// holds it: once the app is Paused the commit was read, and 1.0.1 stays.
	f.repo.Commit("shop 1.0.2 under PAUSE", merge(shopOverlay("1.0.2"),
		map[string]string{"apps/" + shopApp + "/" + sources.PauseFile: "kustomize freeze\n"}))
	f.eventually("app Paused, Deployment paused", time.Minute, func() bool {
		d := f.deployment("shop")
		return d != nil && d.Spec.Paused && f.appState(shopApp).Phase == state.Paused
	})
	if img := f.deployment("shop").Spec.Template.Spec.Containers[0].Image; img != shopImage1 {
		t.Fatalf("image %s under PAUSE, want %s kept", img, shopImage1)
	}
	if _, err := sources.Resume(f.repo.Dir, "apps", shopApp); err != nil {
		t.Fatal(err)
	}
	f.eventually("1.0.2 rolled out after resume", time.Minute, func() bool {
		d := f.deployment("shop")
		return d != nil && !d.Spec.Paused && rolledOut(d, "registry.example/shop:1.0.2")
	})

	// git revert of an overlay image change rolls back.
	c3 := f.repo.Commit("shop 1.0.3", shopOverlay("1.0.3"))
	f.eventually("1.0.3 rolled out", time.Minute, func() bool { return rolledOut(f.deployment("shop"), "registry.example/shop:1.0.3") })
	if _, err := sources.Revert(f.repo.Dir, []string{c3}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("reverted to 1.0.2", time.Minute, func() bool { return rolledOut(f.deployment("shop"), "registry.example/shop:1.0.2") })
}

// TestGeneratedConfigMapPrunedAfterRollout: a configMapGenerator change
// rolls the Deployment onto the new hash-suffixed ConfigMap; the previous
// one, which the old ReplicaSet's pods still use, is pruned only once the
// rollout has finished (Argo CD's PruneLast), not right after the apply.
// Pods take 3 s to become Ready, so the rollout lasts seconds.
func TestGeneratedConfigMapPrunedAfterRollout(t *testing.T) {
	slow := func(files map[string]string) map[string]string {
		d := files["apps/shop/base/deployment.yaml"]
		files["apps/shop/base/deployment.yaml"] = strings.Replace(d, "      labels:\n        app: shop\n",
			"      labels:\n        app: shop\n      annotations:\n        pod-ready.stage.kwok.x-k8s.io/delay: \"3s\"\n", 1)
		return files
	}
	f := newFixture(t)
	f.repo.Commit("shop 1.0.0", merge(slow(shopBase("info", false)), shopOverlay("1.0.0")))
	f.run()
	f.eventually("1.0.0 rolled out, Synced", time.Minute, func() bool {
		st := f.appState(shopApp)
		return rolledOut(f.deployment("shop"), shopImage0) && st != nil && st.Phase == state.Synced
	})
	oldCM := envFromName(f)
	ctx := context.Background()
	// oldPods: the pods of ReplicaSets whose template reads oldCM.
	oldPods := func() int32 {
		l, err := f.kube.AppsV1().ReplicaSets(f.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=shop"})
		if err != nil {
			t.Fatal(err)
		}
		var n int32
		for _, rs := range l.Items {
			if rs.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name == oldCM {
				n += rs.Status.Replicas
			}
		}
		return n
	}

	f.repo.Commit("log level debug", slow(shopBase("debug", false)))
	f.eventually("rollout onto the new ConfigMap started", time.Minute, func() bool { return envFromName(f) != oldCM })
	sawOldPodsWithCM := false
	f.eventually("rolled out, then the old ConfigMap pruned", 2*time.Minute, func() bool {
		hasOld := slices.Contains(f.configMaps("shop-config-"), oldCM)
		n := oldPods()
		if !hasOld && n > 0 {
			t.Fatalf("old ConfigMap %s pruned while %d pods of the old ReplicaSet may still use it", oldCM, n)
		}
		sawOldPodsWithCM = sawOldPodsWithCM || hasOld && n > 0
		return !hasOld
	})
	if !sawOldPodsWithCM {
		t.Errorf("never saw old pods and the old ConfigMap together; the rollout was too fast to show anything")
	}
	st := f.appState(shopApp)
	for _, r := range st.Inventory {
		if r.Kind == "ConfigMap" && r.Name == oldCM {
			t.Errorf("old ConfigMap still in the inventory after its prune: %v", st.Inventory)
		}
	}
	if st.PruneLast || st.Phase != state.Synced {
		t.Errorf("after the prune: pruneLast %t, phase %s %q; want false, Synced", st.PruneLast, st.Phase, st.Reason)
	}
	if out := f.out.String(); !strings.Contains(out, "1 object pruned once the rollout has finished (prune last)") {
		t.Errorf("agent output does not say the prune waits for the rollout:\n%s", out)
	}
}

// webChart is a Helm chart in git whose image tag comes from values.
func webChart() map[string]string {
	return map[string]string{
		"apps/web/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"apps/web/values.yaml": "replicaCount: 1\ntag: \"0.0.0\"\n",
		"apps/web/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
        - name: web
          image: "registry.example/web:{{ .Values.tag }}"
`,
		"apps/web/templates/migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-upgrade
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: m
          image: "registry.example/web:{{ .Values.tag }}"
`,
		"apps/gitpace.yaml": "apps:\n  - match: web\n    helm:\n      releaseName: front\n      valuesFiles: [values-prod.yaml]\n      values:\n        replicaCount: 2\n",
	}
}

func webValues(tag string) map[string]string {
	return map[string]string{"apps/web/values-prod.yaml": "tag: \"" + tag + "\"\n"}
}

// TestHelmApp runs a Helm chart stored in git through the agent: the
// release name, values file and inline values of gitpace.yaml apply; the
// PreSync hook Job runs; a values change rolls out; PAUSE holds
// a values change until removed; git revert rolls back.
func TestHelmApp(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("web 1.0.0", merge(webChart(), webValues("1.0.0")))
	f.run()
	f.eventually("web 1.0.0 rolled out", time.Minute, func() bool { return rolledOut(f.deploymentNamed("front"), "registry.example/web:1.0.0") })
	if d := f.deploymentNamed("front"); *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2 (inline values over the values file)", *d.Spec.Replicas)
	}
	if j := f.job("front-migrate"); j == nil || !jobComplete(j) {
		t.Errorf("PreSync hook Job front-migrate %v, want it run to completion (TestHelmHook* test hooks)", j)
	}

	f.repo.Commit("web 1.0.1", webValues("1.0.1"))
	f.eventually("web 1.0.1 rolled out", time.Minute, func() bool { return rolledOut(f.deploymentNamed("front"), "registry.example/web:1.0.1") })

	f.repo.Commit("web 1.0.2 under PAUSE", merge(webValues("1.0.2"), map[string]string{"apps/web/" + sources.PauseFile: "helm freeze\n"}))
	f.eventually("app Paused, Deployment paused", time.Minute, func() bool {
		d := f.deploymentNamed("front")
		return d != nil && d.Spec.Paused && f.appState("web").Phase == state.Paused
	})
	if img := f.deploymentNamed("front").Spec.Template.Spec.Containers[0].Image; img != "registry.example/web:1.0.1" {
		t.Fatalf("image %s under PAUSE, want 1.0.1 kept", img)
	}
	if _, err := sources.Resume(f.repo.Dir, "apps", "web"); err != nil {
		t.Fatal(err)
	}
	f.eventually("web 1.0.2 rolled out after resume", time.Minute, func() bool {
		d := f.deploymentNamed("front")
		return d != nil && !d.Spec.Paused && rolledOut(d, "registry.example/web:1.0.2")
	})
	c3 := f.repo.Commit("web 1.0.3", webValues("1.0.3"))
	f.eventually("web 1.0.3 rolled out", time.Minute, func() bool { return rolledOut(f.deploymentNamed("front"), "registry.example/web:1.0.3") })
	if _, err := sources.Revert(f.repo.Dir, []string{c3}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("reverted to 1.0.2", time.Minute, func() bool { return rolledOut(f.deploymentNamed("front"), "registry.example/web:1.0.2") })
}

func (f *fixture) deploymentNamed(name string) *appsv1.Deployment {
	d, err := f.kube.AppsV1().Deployments(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return d
}

// TestPlanOverlayChange: `gitpace plan` of a commit that changes only an
// overlay's image shows the rendered Deployment's image diff and its
// rolling steps, and writes nothing.
func TestPlanOverlayChange(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("shop 1.0.0", merge(shopBase("info", true), shopOverlay("1.0.0")))
	f.build(nil)
	f.waitSynced(shopApp, 4, "shop 1.0.0")
	head := f.repo.Commit("shop 1.0.1", shopOverlay("1.0.1"))
	before := f.counter.writes.Load()
	p, out := f.plan(head)
	for _, want := range []string{shopApp, "Deployment", "shop", shopImage1} {
		if !strings.Contains(out, want) {
			t.Errorf("plan does not mention %q", want)
		}
	}
	if p.ExitCode() != 2 {
		t.Errorf("plan exit code %d, want 2 (changes)", p.ExitCode())
	}
	if n := f.counter.writes.Load() - before; n != 0 {
		t.Errorf("plan wrote %d times", n)
	}
}

// plan makes the plan of commit head (with f.agent's identity) and its text.
func (f *fixture) plan(head string) (*plan.Plan, string) {
	f.t.Helper()
	src, err := sources.NewGitSource(sources.GitConfig{URL: f.repo.Dir, Branch: "main", Path: "apps"})
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := plan.Make(context.Background(), plan.Config{Source: src, Rest: f.cfg.Rest, StateNamespace: f.stateNS, DefaultNamespace: f.ns, AgentName: f.agent.Name()}, head)
	if err != nil {
		f.t.Fatal(err)
	}
	var b bytes.Buffer
	if err := plan.Text(&b, p); err != nil {
		f.t.Fatal(err)
	}
	f.t.Logf("plan:\n%s", b.String())
	return p, b.String()
}
