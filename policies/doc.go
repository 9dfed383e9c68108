// Package policies decides whether one app's revision may go now. It is pure
// decision code: it reads the policy file (gitpace.yaml), PAUSE markers,
// commit signatures and the desired objects, and it never talks to a cluster
// or reads the clock (every check takes "now" as input; only go-crypto,
// inside VerifyCommit, judges key expiry against the wall clock).
//
// The agent runs, for each app and revision, in this fixed priority:
//
//	source error → signature → pause → allow-lists → window → rollout
//
// A source error stops the loop before any gate runs; the gates are the
// middle four and live in one ordered slice, built by Gates; the rollout is
// the applier's work and starts only when every gate passed. A gate that says
// "not now" returns a *Held, which names the gate, says why, and says when a
// retry can help.
package policies
