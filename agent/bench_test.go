package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
)

// BenchmarkReconcile200Apps reconciles 200 apps (Deployment + Service +
// ConfigMap each) on the local control plane and reports the cold
// full-reconcile time, the idle-reconcile time, the API requests each made
// and the peak Go heap. Run with `make bench` (-benchtime 1x).
func BenchmarkReconcile200Apps(b *testing.B) {
	const apps = 200
	for i := 0; i < b.N; i++ {
		repo := gittest.New(b)
		ns := testenv.Namespace(b)
		stateNS := testenv.Namespace(b)
		files := map[string]string{}
		for j := 0; j < apps; j++ {
			name := fmt.Sprintf("app-%03d", j)
			files["apps/"+name+"/all.yaml"] = fmt.Sprintf(benchApp, name)
		}
		repo.Commit("200 apps", files)
		src, err := sources.NewGitSource(sources.GitConfig{URL: repo.Dir, Branch: "main", Path: "apps"})
		if err != nil {
			b.Fatal(err)
		}
		rc := testenv.Config(b)
		var requests atomic.Int64
		kinds := &requestKinds{n: map[string]int{}}
		rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				requests.Add(1)
				kinds.add(r)
				return rt.RoundTrip(r)
			})
		})
		rc.QPS, rc.Burst = 200, 400
		a, err := agent.New(agent.Config{Source: src, Rest: rc, StateNamespace: stateNS, DefaultNamespace: ns,
			Interval: time.Hour, Resync: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		peak := &peakHeap{}
		stop := peak.sample()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a.Follow(ctx) // as Run does: the watch informs refreshPhase

		b.ResetTimer()
		start := time.Now()
		if err := a.ReconcileOnce(ctx); err != nil {
			b.Fatal(err)
		}
		cold := time.Since(start)
		coldReq := requests.Swap(0)
		coldKinds := kinds.take()

		start = time.Now()
		if err := a.ReconcileOnce(ctx); err != nil {
			b.Fatal(err)
		}
		idle := time.Since(start)
		idleReq := requests.Swap(0)
		b.StopTimer()
		stop()

		b.ReportMetric(cold.Seconds(), "cold-s")
		b.ReportMetric(float64(idle.Microseconds())/1000, "idle-ms")
		b.ReportMetric(float64(coldReq), "cold-requests")
		b.ReportMetric(float64(idleReq), "idle-requests")
		b.ReportMetric(float64(peak.max.Load())/(1<<20), "peak-heap-MiB")
		fmt.Printf("gitpace bench: %d apps (%d objects): cold reconcile %s with %d API requests; idle reconcile %s with %d API requests; peak heap %.1f MiB\n",
			apps, apps*3, cold.Round(10*time.Millisecond), coldReq, idle.Round(10*time.Microsecond), idleReq, float64(peak.max.Load())/(1<<20))
		fmt.Printf("gitpace bench: cold requests by kind: %s\n", coldKinds)
	}
}

const benchApp = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: web
        image: example/web:v1
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector: {app: %[1]s}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s
data:
  setting: "on"
`

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// peakHeap samples the Go heap in use every 20ms.
type peakHeap struct{ max atomic.Uint64 }

func (p *peakHeap) sample() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > p.max.Load() {
				p.max.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// requestKinds counts API requests by method, resource and dry run, e.g.
// "PATCH deployments (dry run)".
type requestKinds struct {
	mu sync.Mutex
	n  map[string]int
}

func (k *requestKinds) add(r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	resource := "?"
	// /api/v1/namespaces/NS/RESOURCE[/NAME] or /apis/G/V/namespaces/NS/RESOURCE[/NAME]
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "namespaces" && i+2 < len(parts) {
			resource = parts[i+2]
			break
		}
	}
	if resource == "?" && len(parts) > 0 {
		resource = parts[len(parts)-1]
		if len(parts) >= 4 && parts[len(parts)-2] == "namespaces" {
			resource = "namespaces"
		}
	}
	key := r.Method + " " + resource
	if r.URL.Query().Has("dryRun") {
		key += " (dry run)"
	}
	k.mu.Lock()
	k.n[key]++
	k.mu.Unlock()
}

// take returns the counts, largest first, and starts afresh.
func (k *requestKinds) take() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := make([]string, 0, len(k.n))
	for key := range k.n {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		if k.n[keys[i]] != k.n[keys[j]] {
			return k.n[keys[i]] > k.n[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, len(keys))
	for i, key := range keys {
		out[i] = fmt.Sprintf("%s %d", key, k.n[key])
	}
	k.n = map[string]int{}
	return strings.Join(out, ", ")
}
