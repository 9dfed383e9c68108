package bcs

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Health check types.
const (
	checkHTTP       = "HTTP"
	checkTCP        = "TCP"
	checkCommand    = "COMMAND"
	checkRemoteHTTP = "REMOTE_HTTP"
	checkRemoteTCP  = "REMOTE_TCP"
)

// mapHealthChecks maps the container's one executor-run check (HTTP, TCP or
// COMMAND; BCS runs only the first) to a readiness probe, and to a liveness
// probe as well when consecutiveFailures > 0 (the executor then kills the
// task). REMOTE_HTTP and REMOTE_TCP checks are run by the scheduler, only
// report, and neither gate nor kill: they have no probe.
func mapHealthChecks(c Container, p string, errs *errList) (readiness, liveness *corev1.Probe) {
	local := -1
	for i, hc := range c.HealthChecks {
		hp := index(p, i)
		switch hc.Type {
		case checkRemoteHTTP, checkRemoteTCP:
			continue
		case checkHTTP, checkTCP, checkCommand:
		default:
			errs.add(join(hp, "type"), "must be one of HTTP, TCP, COMMAND, REMOTE_HTTP, REMOTE_TCP, got %q", hc.Type)
			continue
		}
		if local >= 0 {
			errs.add(join(hp, "type"), "only one HTTP, TCP or COMMAND check is allowed (BCS ignores all but %s)", index(p, local))
			continue
		}
		local = i
		handler, ok := probeHandler(hc, c, hp, errs)
		if !ok || !checkTimings(hc, hp, errs) {
			continue
		}
		readiness = &corev1.Probe{
			ProbeHandler:        handler,
			InitialDelaySeconds: hc.DelaySeconds,
			PeriodSeconds:       hc.IntervalSeconds,
			TimeoutSeconds:      hc.TimeoutSeconds,
			FailureThreshold:    1, // Mesos reports unhealthy on the first failure
		}
		if hc.ConsecutiveFailures > 0 {
			liveness = readiness.DeepCopy()
			// Failures within the grace period after start are ignored.
			liveness.InitialDelaySeconds = max(hc.DelaySeconds, hc.GracePeriodSeconds)
			liveness.FailureThreshold = int32(min(hc.ConsecutiveFailures, 1<<31-1))
		}
	}
	return readiness, liveness
}

func checkTimings(hc HealthCheck, p string, errs *errList) bool {
	ok := true
	for _, f := range []struct {
		name string
		v    int32
	}{{"delaySeconds", hc.DelaySeconds}, {"gracePeriodSeconds", hc.GracePeriodSeconds}, {"intervalSeconds", hc.IntervalSeconds}, {"timeoutSeconds", hc.TimeoutSeconds}} {
		if f.v < 0 {
			errs.add(join(p, f.name), "must be >= 0, got %d", f.v)
			ok = false
		}
	}
	return ok
}

func probeHandler(hc HealthCheck, c Container, p string, errs *errList) (corev1.ProbeHandler, bool) {
	switch hc.Type {
	case checkHTTP:
		h := hc.HTTP
		if h == nil {
			errs.add(join(p, "http"), "required for type HTTP")
			return corev1.ProbeHandler{}, false
		}
		port, ok := checkPort(h.Port, h.PortName, c, join(p, "http"), errs)
		var scheme corev1.URIScheme
		switch strings.ToUpper(h.Scheme) {
		case "", "HTTP":
			scheme = corev1.URISchemeHTTP
		case "HTTPS":
			scheme = corev1.URISchemeHTTPS
		default:
			errs.add(join(p, "http.scheme"), `must be "http" or "https", got %q`, h.Scheme)
			ok = false
		}
		if len(h.Headers) > 0 {
			errs.add(join(p, "http.headers"), "not supported: BCS sends headers only for REMOTE_HTTP checks")
			ok = false
		}
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: h.Path, Port: port, Scheme: scheme}}, ok
	case checkTCP:
		t := hc.TCP
		if t == nil {
			errs.add(join(p, "tcp"), "required for type TCP")
			return corev1.ProbeHandler{}, false
		}
		port, ok := checkPort(t.Port, t.PortName, c, join(p, "tcp"), errs)
		return corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: port}}, ok
	default: // COMMAND
		if hc.Command == nil || hc.Command.Value == "" {
			errs.add(join(p, "command.value"), "required for type COMMAND")
			return corev1.ProbeHandler{}, false
		}
		// Mesos runs a health-check command through the shell.
		return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", hc.Command.Value}}}, true
	}
}

// checkPort is port when > 0, else the container port named portName (BCS
// resolves it to the container port in every network mode).
func checkPort(port int32, portName string, c Container, p string, errs *errList) (intstr.IntOrString, bool) {
	if port > 65535 {
		errs.add(join(p, "port"), "must be at most 65535, got %d", port)
		return intstr.IntOrString{}, false
	}
	if port > 0 {
		return intstr.FromInt32(port), true
	}
	if portName == "" {
		errs.add(join(p, "portName"), "port or portName is required")
		return intstr.IntOrString{}, false
	}
	for _, cp := range c.Ports {
		if cp.Name == portName {
			return intstr.FromString(portName), true
		}
	}
	errs.add(join(p, "portName"), "no port of this container is named %q", portName)
	return intstr.IntOrString{}, false
}
