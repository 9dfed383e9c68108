package policies

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The gates' names, as Held.Gate carries them.
const (
	GateSignature = "signature"
	GatePause     = "pause"
	GateAllowList = "allow-list"
	GateWindow    = "window"
)

// Held is the answer of a gate that stops a revision for now. It is an error
// so that it travels through the agent's loop; find it with errors.As.
type Held struct {
	// Gate is the name of the gate that holds: GateSignature, GatePause,
	// GateAllowList or GateWindow.
	Gate string
	// Reason is the one-line explanation shown in status and events.
	Reason string
	// RetryAt is when checking again can give another answer. Zero means
	// only a change of input (a new revision) can release the hold.
	RetryAt time.Time
	// Err is the underlying error, if any (a *SignatureError, or the
	// *DeniedError values of the allow-list gate joined together).
	Err error
}

// Error implements error: "held by <gate>: <reason>".
func (h *Held) Error() string {
	return fmt.Sprintf("held by %s: %s", h.Gate, h.Reason)
}

// Unwrap returns the underlying error.
func (h *Held) Unwrap() error { return h.Err }

// GateInput is what the gates look at for one app and one revision.
type GateInput struct {
	// App is the app's name: its directory below the source path,
	// slash-separated (e.g. "payments/api").
	App string
	// Commit is the full hash of the revision's commit.
	Commit string
	// Rollback is true when the revision takes the app back to an earlier
	// state (a revert commit). Windows hold rollbacks only when they say so.
	Rollback bool
	// Now is the agent's clock reading for this check.
	Now time.Time
	// Objects are the app's desired objects at this revision, namespaces
	// already defaulted, as the applier would send them.
	Objects []*unstructured.Unstructured
	// Idle is true when the app has nothing to roll: the revision changes
	// none of its objects and no rollout is in flight. A window holds
	// rollouts, so it does not hold an idle app.
	Idle bool
}

// Gate is one check that may hold a revision.
type Gate interface {
	// Name is the gate's short name, as it appears in Held.Gate.
	Name() string
	// Check returns nil when the revision may go on, a *Held when it must
	// wait, or another error when the gate could not decide (the agent
	// retries later).
	Check(ctx context.Context, in GateInput) error
}

// GateSetup is what the gates of one revision are built from.
type GateSetup struct {
	// Config is the revision's parsed gitpace.yaml (the zero Config if none).
	Config *Config
	// KeyRing holds the trusted signing keys; nil turns signature checks off.
	KeyRing *KeyRing
	// Commits looks a commit up by its hash; required when KeyRing is set.
	Commits CommitLookup
	// Files are the revision's files (sources.Snapshot.Files), read for
	// PAUSE markers.
	Files map[string][]byte
}

// Gates returns the gates of one revision in their fixed priority order.
// This slice is the one place where the order is written down:
//
//  1. signature: an untrusted revision is not looked at any further;
//  2. pause: an operator's PAUSE marker beats every schedule;
//  3. allow-list: a revision that breaks gitpace.yaml apps[] never goes,
//     whatever the time;
//  4. window: the only gate that releases by itself, when the clock moves.
//
// Before them the agent stops on a source error; after them it starts the
// rollout.
func Gates(s GateSetup) []Gate {
	cfg := s.Config
	if cfg == nil {
		cfg = &Config{}
	}
	return []Gate{
		&SignatureGate{KeyRing: s.KeyRing, Commits: s.Commits},
		NewPauseGate(s.Files),
		&AllowListGate{Config: cfg},
		&WindowGate{Config: cfg},
	}
}

// Check runs gates in order and returns the first non-nil answer: nil when
// all pass, a *Held, or the error of a gate that could not decide, prefixed
// with the gate's name.
func Check(ctx context.Context, gates []Gate, in GateInput) error {
	for _, g := range gates {
		err := g.Check(ctx, in)
		var held *Held
		switch {
		case err == nil:
		case errors.As(err, &held):
			return err
		default:
			return fmt.Errorf("%s gate: %w", g.Name(), err)
		}
	}
	return nil
}
