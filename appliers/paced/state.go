package paced

import (
	"encoding/json"
	"fmt"
	"time"
)

// Phase is where a deployment stands in its rollout.
type Phase string

// Phases. A rollout goes Idle → (Starting ⇄ Deleting per cycle) → Idle …
// until it finishes (Steady) or is cancelled (Cancelling → Steady).
const (
	// PhaseSteady: one application, no rollout.
	PhaseSteady Phase = "Steady"
	// PhaseIdle: a rollout between cycles (before the first or after one
	// ended), waiting for upgradeDuration, a pause to lift or a promote.
	PhaseIdle Phase = "Idle"
	// PhaseStarting: a cycle's start phase; the new application is scaled
	// to Target.New and the engine waits until that many pods are Ready.
	PhaseStarting Phase = "Starting"
	// PhaseDeleting: a cycle's delete phase; the old application is scaled
	// to Target.Old and the engine waits until its extra pods are gone.
	PhaseDeleting Phase = "Deleting"
	// PhaseCancelling: the old application is being restored; the new one
	// is deleted next.
	PhaseCancelling Phase = "Cancelling"
)

// Targets are a cycle's replica counts, fixed when the cycle starts.
type Targets struct {
	New int32 `json:"new"`
	Old int32 `json:"old"`
}

// State is the persisted rollout state of one deployment. The engine keeps
// it as JSON in the annotation AnnotationState on the deployment's
// ReplicaSets; the copy with the highest Seq wins (see package doc).
type State struct {
	// Seq counts writes; the engine sets it.
	Seq int64 `json:"seq"`
	// Phase is the rollout phase.
	Phase Phase `json:"phase"`

	// Base is the application the deployment points at: the only one when
	// steady, the old one during a rollout.
	Base string `json:"base"`
	// BaseHash is Base's template hash.
	BaseHash string `json:"baseHash"`
	// BaseInstance is Base's instance count when the rollout started (when
	// steady: its current one); a cancel restores it.
	BaseInstance int32 `json:"baseInstance"`
	// BaseRevision is the git revision Base was last deployed from.
	BaseRevision string `json:"baseRevision,omitempty"`

	// New is the application a rollout creates ("" when steady); its name
	// identifies the rollout (a PROMOTE names it).
	New string `json:"new,omitempty"`
	// NewHash is New's template hash.
	NewHash string `json:"newHash,omitempty"`
	// Revision is the git revision of the spec last acted on: the rollout's
	// target during a rollout.
	Revision string `json:"revision,omitempty"`

	// Cycle is the number of cycles started in this rollout: the current
	// cycle while Starting or Deleting, the last one ended while Idle.
	Cycle int32 `json:"cycle,omitempty"`
	// Target holds the current (or last) cycle's targets.
	Target Targets `json:"target,omitzero"`
	// RolloutStart, CycleStart, PhaseStart and LastCycleEnd are the times
	// the rollout, the current cycle and the current phase started and the
	// last cycle ended (UTC).
	RolloutStart time.Time `json:"rolloutStart,omitzero"`
	CycleStart   time.Time `json:"cycleStart,omitzero"`
	PhaseStart   time.Time `json:"phaseStart,omitzero"`
	LastCycleEnd time.Time `json:"lastCycleEnd,omitzero"`

	// Promoted is how many cycles promotes have released for the rollout
	// PromotedFor (rollingManually).
	Promoted    int    `json:"promoted,omitempty"`
	PromotedFor string `json:"promotedFor,omitempty"`
}

// InRollout reports whether a rollout is in flight.
func (s State) InRollout() bool { return s.New != "" }

// encodeState is the annotation value of s.
func encodeState(s State) string {
	b, err := json.Marshal(s)
	if err != nil { // plain data: cannot happen
		panic("paced: encoding state: " + err.Error())
	}
	return string(b)
}

// decodeState reads an annotation value written by encodeState.
func decodeState(v string) (State, error) {
	var s State
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return State{}, fmt.Errorf("annotation %s: %w", AnnotationState, err)
	}
	return s, nil
}

// sameState reports whether a and b differ in nothing but Seq, so that an
// unchanged state is not written again.
func sameState(a, b State) bool {
	a.Seq, b.Seq = 0, 0
	return encodeState(a) == encodeState(b)
}
