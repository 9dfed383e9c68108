package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/sources"
)

// Outcome is what reconciling one app (or fetching the source) leaves the
// loop to do next. The three kinds follow Flux source-controller's error
// classes (stalling, waiting, generic):
//
//	Done      nothing to do until the next trigger (new head, drift, resync)
//	Stalled   bad input: retrying cannot help until the content changes;
//	          tried again on a new revision or at the next resync
//	Waiting   a gate or a condition outside git (a window, a namespace
//	          terminating): tried again at RetryAt
//	Transient a failure a retry may cure (the API server or the git remote
//	          unreachable): tried again with per-app exponential backoff
//
// Classify is the one place where an error becomes an Outcome.
type Outcome struct {
	Kind OutcomeKind
	// RetryAt is when a Waiting outcome is due again.
	RetryAt time.Time
	// Err is the error behind a Stalled or Transient outcome.
	Err error
}

// OutcomeKind is the class of an Outcome.
type OutcomeKind int

const (
	Done OutcomeKind = iota
	Stalled
	Waiting
	Transient
)

func (k OutcomeKind) String() string {
	switch k {
	case Stalled:
		return "stalled"
	case Waiting:
		return "waiting"
	case Transient:
		return "transient"
	}
	return "done"
}

// StalledError marks bad input: an invalid revision, a branch that does not
// exist, a kind the server does not serve. errors.As finds it.
type StalledError struct{ Err error }

func (e *StalledError) Error() string { return e.Err.Error() }
func (e *StalledError) Unwrap() error { return e.Err }

// WaitingError marks a revision that waits for a time or a condition
// outside git; At is when to try again.
type WaitingError struct {
	Err error
	At  time.Time
}

func (e *WaitingError) Error() string {
	return fmt.Sprintf("%v (retrying at %s)", e.Err, e.At.Format(time.TimeOnly))
}
func (e *WaitingError) Unwrap() error { return e.Err }

// Classify turns the error of a reconcile into its Outcome: nil is Done;
// a *StalledError, and errors that are the input's fault (a kind the
// server does not serve, a schema error, Forbidden, NotFound, Conflict,
// AlreadyExists, a branch that does not exist) are Stalled; a
// *WaitingError is Waiting; everything else, a cancelled context aside, is
// Transient.
func Classify(err error) Outcome {
	if err == nil {
		return Outcome{Kind: Done}
	}
	var w *WaitingError
	if errors.As(err, &w) {
		return Outcome{Kind: Waiting, RetryAt: w.At, Err: err}
	}
	var s *StalledError
	if errors.As(err, &s) || isBadInput(err) {
		return Outcome{Kind: Stalled, Err: err}
	}
	return Outcome{Kind: Transient, Err: err}
}

// isBadInput: an error that retrying the same input will meet again: the
// source's (a branch or path that does not exist) and the applier's
// (appliers.IsTransient says which API answers are).
func isBadInput(err error) bool {
	if errors.Is(err, sources.ErrBranchNotFound) || errors.Is(err, sources.ErrPathNotFound) {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	return !appliers.IsTransient(err)
}

// isTransient: an error that a retry may cure, as opposed to bad input.
func isTransient(err error) bool { return Classify(err).Kind == Transient }
