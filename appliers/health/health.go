// Package health says how healthy the objects of an app are, on Argo CD's
// axis (Healthy / Suspended / Progressing / Missing / Degraded / Unknown),
// from each live object's kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status:
// Current / InProgress / Failed / Terminating / NotFound). It is the second
// axis of an app beside its sync phase (state.Phase: Synced, OutOfSync,
// Progressing, Paused, Held, Failed): sync says whether git's revision is in
// force, health whether what is in force works.
//
// Object health, in this order (first match wins):
//
//	not found                                   → Missing      (kstatus NotFound)
//	kstatus cannot read it                      → Unknown      (the error is the reason)
//	being deleted                               → Progressing  (kstatus Terminating; Argo CD: "Pending deletion")
//	kstatus Failed                              → Degraded     (Stalled=True; Deployment past progressDeadlineSeconds; Job Failed; CRD names refused; crash-looping or unschedulable Pod)
//	Job not Complete=True                       → Progressing  (kstatus says Current once a Job started; a Job is Healthy only when it completes)
//	Job spec.suspend                            → Suspended
//	rollout frozen, not rolled out              → Suspended    (Deployment spec.paused, StatefulSet/DaemonSet frozen by a PAUSE: appliers.WorkloadStatus says Paused, the message is kubectl's)
//	Deployment spec.paused, rolled out          → Healthy      (kstatus InProgress "ReplicaSet not Available": the controller sets Progressing=Unknown/DeploymentPaused)
//	kstatus InProgress                          → Progressing  (a custom resource with Ready=False or Reconciling=True is here)
//	kstatus Current                             → Healthy      (a custom resource with Ready=True, or with no condition kstatus knows)
//
// App health is the worst object health, in Argo CD's order (gitops-engine
// pkg/health: Healthy < Suspended < Progressing < Missing < Degraded <
// Unknown), and its reason names the worst object first
// (`Deployment/shop/web: Progress deadline exceeded`), then how many others
// share that health. An app with no objects is Healthy.
package health

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
)

// Health is an object's or an app's health, as Argo CD names it.
type Health string

// The healths, from best to worst (Argo CD's order).
const (
	Healthy     Health = "Healthy"
	Suspended   Health = "Suspended"
	Progressing Health = "Progressing"
	Missing     Health = "Missing"
	Degraded    Health = "Degraded"
	Unknown     Health = "Unknown"
)

// All lists every health, from best to worst.
var All = []Health{Healthy, Suspended, Progressing, Missing, Degraded, Unknown}

// rank is a health's place in All; higher is worse.
func rank(h Health) int {
	for i, x := range All {
		if x == h {
			return i
		}
	}
	return len(All)
}

// Worse reports whether a is worse than b.
func Worse(a, b Health) bool { return rank(a) > rank(b) }

// Object is one object's health.
type Object struct {
	Ref appliers.ObjectRef `json:"ref"`
	// Status is kstatus's verdict (Current, InProgress, Failed, Terminating,
	// NotFound; Unknown when it could not compute one).
	Status  kstatus.Status `json:"status"`
	Health  Health         `json:"health"`
	Message string         `json:"message,omitempty"`
}

// String is `Kind/namespace/name: message`.
func (o Object) String() string {
	if o.Message == "" {
		return o.Ref.String() + ": " + string(o.Health)
	}
	return o.Ref.String() + ": " + o.Message
}

// OfObject is the health of live object u (nil: it does not exist; ref then
// names it).
func OfObject(ref appliers.ObjectRef, u *unstructured.Unstructured) Object {
	o := Object{Ref: ref}
	if u == nil {
		o.Status, o.Health, o.Message = kstatus.NotFoundStatus, Missing, "not found"
		return o
	}
	res, err := kstatus.Compute(u)
	if err != nil {
		o.Status, o.Health, o.Message = kstatus.UnknownStatus, Unknown, err.Error()
		return o
	}
	o.Status, o.Message = res.Status, res.Message
	switch res.Status {
	case kstatus.TerminatingStatus:
		o.Health = Progressing
	case kstatus.FailedStatus:
		o.Health = Degraded
	case kstatus.InProgressStatus:
		o.Health = Progressing
	case kstatus.CurrentStatus:
		o.Health = Healthy
	default:
		o.Health = Unknown
	}
	if o.Health == Degraded || o.Health == Unknown || res.Status == kstatus.TerminatingStatus {
		return o
	}
	gvk := u.GroupVersionKind()
	switch {
	case gvk.Group == "batch" && gvk.Kind == "Job":
		switch {
		case jobComplete(u):
			o.Health = Healthy
		case nestedBool(u, "spec", "suspend"):
			o.Health, o.Message = Suspended, "Job suspended"
		default:
			// kstatus: Current once started ("Job in progress"); a Job
			// is healthy when it has completed (Argo CD's rule too).
			o.Health = Progressing
		}
	default:
		r, ok, err := appliers.WorkloadStatus(u)
		switch {
		case !ok || err != nil:
		case r.State == appliers.RolloutPaused:
			// A rollout frozen on purpose is Suspended, judged against
			// git's partition: kstatus reads the partition a freeze
			// wrote and would call a frozen StatefulSet Current.
			o.Health, o.Message = Suspended, r.Message
		case r.State == appliers.RolloutComplete && r.Paused:
			// A paused Deployment whose rollout had finished: the
			// controller replaces its Progressing condition with
			// Unknown/DeploymentPaused (kubernetes v1.37.2
			// pkg/controller/deployment/sync.go checkPausedConditions),
			// which kstatus reads as "ReplicaSet not Available" for as
			// long as the pause lasts. Nothing is frozen mid-way:
			// Healthy (Argo CD calls every paused Deployment Suspended;
			// gitpace keeps Suspended for a rollout left unfinished).
			o.Health, o.Message = Healthy, r.Message
		}
	}
	return o
}

// jobComplete: the Job's Complete condition is True.
func jobComplete(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Complete" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func nestedBool(u *unstructured.Unstructured, fields ...string) bool {
	b, _, _ := unstructured.NestedBool(u.Object, fields...)
	return b
}

// App is an app's health: the worst of its objects', with a reason naming
// the worst object.
type App struct {
	Health Health `json:"health"`
	Reason string `json:"reason,omitempty"`
	// Objects are the objects that are not Healthy, worst first.
	Objects []Object `json:"objects,omitempty"`
}

// Aggregate is the app health of objs (see the package doc): Healthy when
// every object is (or there are none); otherwise the worst health, its
// reason `<worst object>: <its message>`, plus ` (and N more <health>)`
// when others share that health. Objects of equal health keep their order.
func Aggregate(objs []Object) App {
	var bad []Object
	for _, o := range objs {
		if o.Health != Healthy {
			bad = append(bad, o)
		}
	}
	if len(bad) == 0 {
		return App{Health: Healthy}
	}
	sort.SliceStable(bad, func(i, j int) bool { return Worse(bad[i].Health, bad[j].Health) })
	a := App{Health: bad[0].Health, Reason: bad[0].String(), Objects: bad}
	same := 0
	for _, o := range bad[1:] {
		if o.Health == a.Health {
			same++
		}
	}
	if same > 0 {
		a.Reason += fmt.Sprintf(" (and %d more %s)", same, a.Health)
	}
	return a
}

// Getter reads one live object: nil, nil when it does not exist. An
// *appliers.Applier is one (a GET per object); an informer cache can be
// another.
type Getter interface {
	Get(ctx context.Context, ref appliers.ObjectRef) (*unstructured.Unstructured, error)
}

// Of reads every object of an app's inventory through g and aggregates
// their health. A read error (other than not found) is returned, naming the
// object: it is never taken for Missing.
func Of(ctx context.Context, g Getter, inventory []appliers.ObjectRef) (App, error) {
	objs, err := Objects(ctx, g, inventory)
	if err != nil {
		return App{}, err
	}
	return Aggregate(objs), nil
}

// Objects reads each object of refs through g and returns its health, in
// the order of refs; a read error is returned as Of returns it, except for
// a kind the server no longer serves (appliers.ErrUnknownKind: its CRD was
// deleted), which is Missing.
func Objects(ctx context.Context, g Getter, refs []appliers.ObjectRef) ([]Object, error) {
	objs := make([]Object, 0, len(refs))
	for _, ref := range refs {
		u, err := g.Get(ctx, ref)
		if errors.Is(err, appliers.ErrUnknownKind) {
			// Its CRD is gone: so is the object.
			objs = append(objs, Object{Ref: ref, Status: kstatus.NotFoundStatus, Health: Missing, Message: "kind not served: " + err.Error()})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("health of %s: %w", ref, err)
		}
		objs = append(objs, OfObject(ref, u))
	}
	return objs, nil
}

// OfBCS is the health of a BCS v4 deployment (ref) that gitpace paces, from
// its status as bcs-client lists it (appliers/paced): Running → Healthy;
// Deploying, RollingUpdate, Deleting → Progressing; UpdatePaused (PAUSE, a
// closed window, a manual cycle) → Suspended; UpdateSuspend (a start or
// delete phase past its timeout) → Degraded.
func OfBCS(ref appliers.ObjectRef, st paced.Status) Object {
	o := Object{Ref: ref, Status: kstatus.InProgressStatus, Health: Progressing, Message: st.Status}
	if st.Reason != "" {
		o.Message += ": " + st.Reason
	}
	switch st.Status {
	case paced.StatusRunning:
		o.Status, o.Health = kstatus.CurrentStatus, Healthy
	case paced.StatusUpdatePaused:
		o.Health = Suspended
	case paced.StatusUpdateSuspend:
		o.Status, o.Health = kstatus.FailedStatus, Degraded
	}
	return o
}
