package manifest

import (
	"fmt"
	"testing"

	"github.com/gitpace/gitpace/sources"
)

// benchRepo is n kustomize apps, each a base (Deployment, Service,
// configMapGenerator) and a prod overlay (namespace, image, replicas, a
// strategic-merge patch): "app-000/base", "app-000/overlays/prod", ...
func benchRepo(n int) *sources.Snapshot {
	snap := &sources.Snapshot{Files: map[string][]byte{}}
	for i := 0; i < n; i++ {
		app := fmt.Sprintf("app-%03d", i)
		put := func(name, content string) { snap.Files[app+"/"+name] = []byte(content) }
		put("base/kustomization.yaml", "resources: [deployment.yaml, service.yaml]\nconfigMapGenerator:\n  - name: cfg\n    literals: [LEVEL=info]\n")
		put("base/deployment.yaml", fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %s}
  template:
    metadata:
      labels: {app: %s}
    spec:
      containers:
        - name: main
          image: registry.example/%s:1.0.0
          envFrom: [{configMapRef: {name: cfg}}]
`, app, app, app, app))
		put("base/service.yaml", fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  selector: {app: %s}\n  ports: [{port: 80}]\n", app, app))
		put("overlays/prod/kustomization.yaml", fmt.Sprintf(`namespace: prod
resources: [../../base]
images:
  - name: registry.example/%s
    newTag: 1.0.1
replicas:
  - name: %s
    count: 3
patches:
  - path: resources.yaml
`, app, app))
		put("overlays/prod/resources.yaml", fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  template:
    spec:
      containers:
        - name: main
          resources: {requests: {cpu: 10m}}
`, app))
	}
	return snap
}

// BenchmarkRender200Kustomize: a Load of 200 kustomize apps (base +
// overlay each), every render a cache miss ("cold"), and a Load after one
// app changed ("one changed", one render). Reports ms per app and per Load.
//
//	go test ./sources/manifest -run '^$' -bench Render200 -benchtime 3x
func BenchmarkRender200Kustomize(b *testing.B) {
	const n = 200
	b.Run("cold", func(b *testing.B) {
		snap := benchRepo(n)
		for i := 0; i < b.N; i++ {
			apps := NewLoader(nil).Load(snap)
			if len(apps) != n || apps[0].Err != nil || len(apps[0].Objects) != 3 {
				b.Fatalf("%d apps, first %+v", len(apps), apps[0].Err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/load")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n)/1000, "ms/app")
	})
	b.Run("one-changed", func(b *testing.B) {
		snap := benchRepo(n)
		l := NewLoader(nil)
		l.Load(snap)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			snap.Files["app-007/overlays/prod/kustomization.yaml"] = append(snap.Files["app-007/overlays/prod/kustomization.yaml"], '\n')
			before := l.Renders()
			l.Load(snap)
			if l.Renders()-before != 1 {
				b.Fatalf("%d renders, want 1", l.Renders()-before)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/load")
	})
}

// FuzzRender loads an app whose kustomization and Helm chart files are
// the fuzzer's input, next to a plain app. Invariants: no panic or hang;
// each app has objects xor an error; the plain app is never affected.
func FuzzRender(f *testing.F) {
	f.Add([]byte("resources: [cm.yaml]\nnamePrefix: p-\nconfigMapGenerator:\n- name: g\n  literals: [A=1]\n"),
		[]byte("apiVersion: v2\nname: c\nversion: 0.1.0\n"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  v: {{ .Values.v | quote }}\n"))
	f.Add([]byte("resources: [github.com/org/repo//x?ref=v1]\n"), []byte("apiVersion: v2\nname: c\nversion: 1\ndependencies:\n- name: d\n  version: 1\n  repository: https://x\n"), []byte("{{ fail \"no\" }}"))
	f.Add([]byte("resources: [../k]\n"), []byte(":"), []byte("{{"))
	f.Fuzz(func(t *testing.T, kust, chart, tmpl []byte) {
		snap := &sources.Snapshot{Files: map[string][]byte{
			"k/kustomization.yaml": kust,
			"k/cm.yaml":            []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"),
			"c/Chart.yaml":         chart,
			"c/values.yaml":        []byte("v: 1\n"),
			"c/templates/t.yaml":   tmpl,
			"plain/cm.yaml":        []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n"),
		}}
		for _, a := range NewLoader(nil).Load(snap) {
			if a.Err != nil && len(a.Objects) > 0 {
				t.Fatalf("app %s: objects and error %v", a.Name, a.Err)
			}
			if a.Name == "plain" && (a.Err != nil || len(a.Objects) != 1) {
				t.Fatalf("plain app affected: %v", a.Err)
			}
		}
	})
}
