package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the agent's HTTP endpoints:
//
//	GET  /metrics    Prometheus metrics from g
//	GET  /healthz    200 while the process runs
//	POST /hooks/git  a webhook: poll the git remote now
func (a *Agent) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("POST /hooks/git", func(w http.ResponseWriter, _ *http.Request) {
		a.cfg.Log.Info("webhook: polling git now")
		a.Trigger()
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("poll triggered\n"))
	})
	return mux
}
