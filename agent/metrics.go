package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/state"
)

// Metrics are the agent's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	reconciles *prometheus.CounterVec
	objects    *prometheus.CounterVec
	phases     *prometheus.GaugeVec
	healths    *prometheus.GaugeVec
	leader     prometheus.Gauge
}

// NewMetrics registers gitpace's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitpace_reconciles_total", Help: "Reconcile passes by result (ok, idle, error, source_error).",
		}, []string{"result"}),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitpace_objects_total", Help: "Objects handled by apply and prune, by action.",
		}, []string{"action"}),
		phases: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitpace_app_phase", Help: "1 for the phase each app is in (Synced, Progressing, Paused, Held, Failed, OutOfSync).",
		}, []string{"app", "phase"}),
		healths: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitpace_app_health", Help: "1 for the health each app is in (Healthy, Suspended, Progressing, Missing, Degraded, Unknown).",
		}, []string{"app", "health"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitpace_leader", Help: "1 while this agent holds the leader lease (--leader-elect), else 0.",
		}),
	}
	reg.MustRegister(m.reconciles, m.objects, m.phases, m.healths, m.leader)
	return m
}

func (m *Metrics) setLeader(on bool) {
	if m == nil {
		return
	}
	v := 0.0
	if on {
		v = 1
	}
	m.leader.Set(v)
}

func (m *Metrics) reconcile(result string) {
	if m != nil {
		m.reconciles.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) object(a appliers.Action) {
	if m != nil {
		m.objects.WithLabelValues(string(a)).Inc()
	}
}

func (m *Metrics) phase(app string, p state.Phase) {
	if m == nil {
		return
	}
	for _, q := range []state.Phase{state.Synced, state.OutOfSync, state.Progressing, state.Paused, state.Failed, state.Held} {
		v := 0.0
		if q == p {
			v = 1
		}
		m.phases.WithLabelValues(app, string(q)).Set(v)
	}
}

// health sets the app's health series: 1 for h, 0 for the others.
func (m *Metrics) health(app string, h health.Health) {
	if m == nil || h == "" {
		return
	}
	for _, q := range health.All {
		v := 0.0
		if q == h {
			v = 1
		}
		m.healths.WithLabelValues(app, string(q)).Set(v)
	}
}

// forget drops an app's phase and health series (the app left git).
func (m *Metrics) forget(app string) {
	if m == nil {
		return
	}
	for _, q := range []state.Phase{state.Synced, state.OutOfSync, state.Progressing, state.Paused, state.Failed, state.Held} {
		m.phases.DeleteLabelValues(app, string(q))
	}
	for _, q := range health.All {
		m.healths.DeleteLabelValues(app, string(q))
	}
}
