package policies

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestGatesOrder(t *testing.T) {
	var names []string
	for _, g := range Gates(GateSetup{}) {
		names = append(names, g.Name())
	}
	if got, want := strings.Join(names, " → "), "signature → pause → allow-list → window"; got != want {
		t.Errorf("Gates order = %s, want %s", got, want)
	}
}

// TestCheckPriority builds a revision that every gate would hold and
// removes the causes one by one, from the highest priority down.
func TestCheckPriority(t *testing.T) {
	ctx := context.Background()
	trusted, _ := newTestKey(t, "Trusted")
	kr := keyRingOf(t, trusted)
	unsigned := &object.Commit{Committer: object.Signature{Name: "Jane", Email: "jane@example.com"}}
	signed := signedCommit(t, trusted)

	cfg := mustConfig(t, `
windows:
- kind: deny
  schedule: "0 22 * * *"
  duration: 8h
apps:
- match: "payments/*"
  namespaces: ["payments"]
`)
	night := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	day := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	bad := []*unstructured.Unstructured{newObject("v1", "Secret", "kube-system", "x")}
	good := []*unstructured.Unstructured{newObject("v1", "Secret", "payments", "x")}
	paused := map[string][]byte{"payments/api/PAUSE": []byte("incident 42\n")}

	tests := []struct {
		name   string
		commit *object.Commit
		files  map[string][]byte
		in     GateInput
		want   string // gate that holds, "" for none
	}{
		{"all causes: signature first", unsigned, paused, GateInput{Now: night, Objects: bad}, "signature"},
		{"signed: pause next", signed, paused, GateInput{Now: night, Objects: bad}, "pause"},
		{"unpaused: allow-list next", signed, nil, GateInput{Now: night, Objects: bad}, "allow-list"},
		{"allowed objects: window last", signed, nil, GateInput{Now: night, Objects: good}, "window"},
		{"outside the deny window: go", signed, nil, GateInput{Now: day, Objects: good}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(_ context.Context, hash string) (*object.Commit, error) { return tt.commit, nil }
			gates := Gates(GateSetup{Config: cfg, KeyRing: kr, Commits: lookup, Files: tt.files})
			tt.in.App = "payments/api"
			err := Check(ctx, gates, tt.in)
			var held *Held
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check = %v, want nil", err)
			case tt.want != "" && !errors.As(err, &held):
				t.Errorf("Check = %v, want *Held by %s", err, tt.want)
			case tt.want != "" && held.Gate != tt.want:
				t.Errorf("Check held by %s (%v), want %s", held.Gate, err, tt.want)
			}
		})
	}
}

func TestCheckWrapsUndecidedGate(t *testing.T) {
	trusted, _ := newTestKey(t, "Trusted")
	lookup := func(_ context.Context, hash string) (*object.Commit, error) {
		return nil, errors.New("object not found")
	}
	gates := Gates(GateSetup{KeyRing: keyRingOf(t, trusted), Commits: lookup})
	err := Check(context.Background(), gates, GateInput{App: "a", Commit: "abc"})
	var held *Held
	if err == nil || errors.As(err, &held) {
		t.Fatalf("Check = %v, want a plain error", err)
	}
	if want := "signature gate: look up commit abc: object not found"; err.Error() != want {
		t.Errorf("Check = %q, want %q", err, want)
	}
}

func TestHeldError(t *testing.T) {
	cause := errors.New("cause")
	h := &Held{Gate: "pause", Reason: "paused by PAUSE", Err: cause}
	if got, want := h.Error(), "held by pause: paused by PAUSE"; got != want {
		t.Errorf("Error = %q, want %q", got, want)
	}
	if !errors.Is(h, cause) {
		t.Error("errors.Is(held, cause) = false")
	}
}
