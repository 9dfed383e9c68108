package revision

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/sources"
)

// headContent is app's content hash at the head of r (as ContentChanges
// builds it), failing the test when there is none.
func headContent(t *testing.T, r *gittest.Repo, app string) string {
	t.Helper()
	c, err := r.Repo.CommitObject(plumbing.NewHash(r.Head()))
	if err != nil {
		t.Fatal(err)
	}
	h, err := contentAt(c, "apps", app)
	if err != nil || h == "" {
		t.Fatalf("%s at %s: content %q, %v", app, r.Head()[:7], h, err)
	}
	return h
}

// rollBack reverts, as `gitpace rollback` does, the commits ContentChanges
// lists after target, checks they are want, and returns app's content
// before and after the revert.
func rollBack(t *testing.T, r *gittest.Repo, target, app string, want []string) {
	t.Helper()
	got, err := ContentChanges(r.Dir, "apps", target, app)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("commits to revert (-want +got):\n%s", diff)
	}
	if _, err := sources.Revert(r.Dir, got, "gitpace rollback "+app); err != nil {
		t.Fatal(err)
	}
}

// TestContentChangesKustomizeBase is the kshop case: a kustomize overlay
// whose base changed after the target revision, with a `gitpace resume`
// of the overlay in between. Rollback reverts the base commit (the app's
// content), not the resume (a marker only: reverting it paused the app
// again and rolled nothing back), nor a commit of another app; the
// overlay renders as at the target, and stays unpaused.
func TestContentChangesKustomizeBase(t *testing.T) {
	r := gittest.New(t)
	deploy := func(image string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  selector:\n    matchLabels: {app: shop}\n  template:\n    metadata:\n      labels: {app: shop}\n    spec:\n      containers:\n        - name: shop\n          image: " + image + "\n"
	}
	overlay := func(replicas string) string {
		return "resources:\n  - ../../base\nnamePrefix: staging-\nreplicas:\n  - name: shop\n    count: " + replicas + "\n"
	}
	const app = "kshop/overlays/staging"
	r.Commit("kshop", map[string]string{
		"apps/kshop/base/kustomization.yaml":             "resources:\n  - deployment.yaml\n",
		"apps/kshop/base/deployment.yaml":                deploy("shop:1.0"),
		"apps/kshop/overlays/staging/kustomization.yaml": overlay("1"),
		"apps/other/cm.yaml":                             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  a: \"1\"\n",
	})
	r.Commit("gitpace: pause kshop/overlays/staging", map[string]string{"apps/kshop/overlays/staging/PAUSE": "testing\n"})
	target := r.Commit("kshop staging: 2 replicas", map[string]string{"apps/kshop/overlays/staging/kustomization.yaml": overlay("2")})
	want := headContent(t, r, app)
	r.Commit("gitpace: resume kshop/overlays/staging", map[string]string{"apps/kshop/overlays/staging/PAUSE": gittest.Delete})
	baseChange := r.Commit("kshop base: shop 2.0", map[string]string{"apps/kshop/base/deployment.yaml": deploy("shop:2.0")})
	r.Commit("other only", map[string]string{"apps/other/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  a: \"2\"\n"})
	if headContent(t, r, app) == want {
		t.Fatal("the base change did not change the overlay's content: the test proves nothing")
	}

	rollBack(t, r, target, app, []string{baseChange})
	if got := headContent(t, r, app); got != want {
		t.Errorf("content after the rollback %s, want the target revision's %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "apps/kshop/overlays/staging/PAUSE")); !os.IsNotExist(err) {
		t.Errorf("PAUSE after the rollback: %v; want none, as before it (a rollback must not pause)", err)
	}
}

// TestContentChangesHelmInlineValues: a Helm app whose change came through
// gitpace.yaml's inline values (no file in its directory changed), with a
// pause and resume of it after: rollback reverts the gitpace.yaml commit,
// and the app renders as at the target.
func TestContentChangesHelmInlineValues(t *testing.T) {
	r := gittest.New(t)
	const app = "web"
	settings := func(replicas string) string {
		return "apps:\n  - match: web\n    helm:\n      releaseName: front\n      valuesFiles: [values-prod.yaml]\n      values:\n        replicaCount: " + replicas + "\n"
	}
	target := r.Commit("web", map[string]string{
		"apps/web/Chart.yaml":       "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"apps/web/values.yaml":      "replicaCount: 1\ntag: \"1.0\"\n",
		"apps/web/values-prod.yaml": "tag: \"1.1\"\n",
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
		"apps/gitpace.yaml": settings("2"),
	})
	want := headContent(t, r, app)
	inline := r.Commit("web: 3 replicas", map[string]string{"apps/gitpace.yaml": settings("3")})
	r.Commit("gitpace: pause web", map[string]string{"apps/web/PAUSE": "hold\n"})
	r.Commit("gitpace: resume web", map[string]string{"apps/web/PAUSE": gittest.Delete})
	if headContent(t, r, app) == want {
		t.Fatal("the inline values did not change the app's content: the test proves nothing")
	}

	rollBack(t, r, target, app, []string{inline})
	if got := headContent(t, r, app); got != want {
		t.Errorf("content after the rollback %s, want the target revision's %s", got, want)
	}
}
