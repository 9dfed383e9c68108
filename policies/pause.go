package policies

import (
	"context"
	"fmt"

	"github.com/gitpace/gitpace/sources"
)

// PauseGate holds the apps that a PAUSE marker pauses, until a revision
// without the marker arrives. It holds rollbacks too: an operator's pause
// stops everything. Which marker pauses which app, and its reason, is
// package sources' rule (sources.Pauses); what a pause freezes is
// sources.PauseFile's.
type PauseGate struct {
	// Markers are the revision's PAUSE markers.
	Markers sources.Pauses
}

// NewPauseGate finds the PAUSE markers among a revision's files
// (slash-separated paths relative to the watched path).
func NewPauseGate(files map[string][]byte) *PauseGate {
	return &PauseGate{Markers: sources.FindPauses(files)}
}

// Name returns "pause".
func (g *PauseGate) Name() string { return GatePause }

// Check holds in.App when a marker pauses it (sources.Pauses.For), with
// the reason "paused by <marker file>[: <its reason>]".
func (g *PauseGate) Check(_ context.Context, in GateInput) error {
	file, reason, ok := g.Markers.For(in.App)
	if !ok {
		return nil
	}
	msg := fmt.Sprintf("paused by %s", file)
	if reason != "" {
		msg += ": " + reason
	}
	return &Held{Gate: g.Name(), Reason: msg}
}
