package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
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
		rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) { requests.Add(1); return rt.RoundTrip(r) })
		})
		rc.QPS, rc.Burst = 200, 400
		a, err := agent.New(agent.Config{Source: src, Rest: rc, StateNamespace: stateNS, DefaultNamespace: ns,
			Interval: time.Hour, Resync: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		peak := &peakHeap{}
		stop := peak.sample()
		ctx := context.Background()

		b.ResetTimer()
		start := time.Now()
		if err := a.ReconcileOnce(ctx); err != nil {
			b.Fatal(err)
		}
		cold := time.Since(start)
		coldReq := requests.Swap(0)

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
