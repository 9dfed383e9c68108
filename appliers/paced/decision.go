package paced

import "time"

// Action is what a Decision asks the engine to do.
type Action string

// Actions.
const (
	// Create creates application App from the template with Replicas pods.
	Create Action = "Create"
	// Scale sets application App's replicas to Replicas.
	Scale Action = "Scale"
	// Delete deletes application App (its pods go with it).
	Delete Action = "Delete"
	// Wait does nothing: call Next again at Until, or earlier when pods or
	// ReplicaSets change. A zero Until waits for such a change only (the
	// engine still polls); an Until not after now means "at once".
	Wait Action = "Wait"
	// Done: the deployment is steady and settled.
	Done Action = "Done"
)

// Statuses, as `bcs-client list -t app` shows them.
const (
	StatusDeploying     = "Deploying"
	StatusRunning       = "Running"
	StatusRollingUpdate = "RollingUpdate"
	StatusUpdatePaused  = "UpdatePaused"
	StatusUpdateSuspend = "UpdateSuspend"
	StatusDeleting      = "Deleting"
)

// Decision is one step of a deployment's rollout: the State to persist and
// then one action. Persisting first (write-ahead) makes a crash at any point
// harmless: Next, given the persisted State and what the cluster then holds,
// decides the same action again or, when it was done, the one after it.
type Decision struct {
	Action Action
	// App is the application acted on (Create, Scale, Delete).
	App string
	// Replicas is the replica count for Create and Scale.
	Replicas int32
	// Until bounds a Wait (see Wait).
	Until time.Time
	// State is the state to persist before acting.
	State State
	// Status is the deployment's status: one of the Status* constants.
	Status string
	// Reason says why: what is awaited, why paused or suspended.
	Reason string
}
