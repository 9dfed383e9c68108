package policies

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// PauseMarker is the name of the file that pauses apps. At the root of the
// watched path it pauses every app; in a directory it pauses every app at
// or below that directory. Its first non-empty line is the reason.
const PauseMarker = "PAUSE"

// PauseGate holds the apps that a PAUSE marker pauses, until a revision
// without the marker arrives. It holds rollbacks too: an operator's pause
// stops everything.
type PauseGate struct {
	// Markers maps the directory of each PAUSE file ("." for the root) to
	// its reason.
	Markers map[string]string
}

// NewPauseGate finds the PAUSE markers among a revision's files
// (slash-separated paths relative to the watched path).
func NewPauseGate(files map[string][]byte) *PauseGate {
	g := &PauseGate{Markers: map[string]string{}}
	for name, data := range files {
		if path.Base(name) == PauseMarker {
			g.Markers[path.Dir(name)] = firstLine(string(data))
		}
	}
	return g
}

// Name returns "pause".
func (g *PauseGate) Name() string { return GatePause }

// Check holds in.App when its directory or one of its parents holds a
// PAUSE marker; the nearest marker gives the reason.
func (g *PauseGate) Check(_ context.Context, in GateInput) error {
	for dir := path.Clean(in.App); ; dir = path.Dir(dir) {
		if reason, ok := g.Markers[dir]; ok {
			file := path.Join(dir, PauseMarker)
			msg := fmt.Sprintf("paused by %s", file)
			if reason != "" {
				msg += ": " + reason
			}
			return &Held{Gate: g.Name(), Reason: msg}
		}
		if dir == "." || dir == "/" {
			return nil
		}
	}
}

func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}
