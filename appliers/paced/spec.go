package paced

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// Default phase timeouts: BCS suspends a rollout whose start phase takes
// over 360 s or whose delete phase takes over 7560 s.
const (
	DefaultStartTimeout  = 360 * time.Second
	DefaultDeleteTimeout = 7560 * time.Second
)

// Spec is what the engine needs of one BCS v4 deployment at one git
// revision. It does not depend on the parser (package sources/bcs); the
// agent fills it from a parsed deployment.
type Spec struct {
	// Namespace and Name identify the deployment; Namespace is already the
	// lower-cased Kubernetes namespace.
	Namespace, Name string
	// Instance is spec.instance, the number of pods wanted.
	Instance int32
	// Strategy is spec.strategy.rollingupdate, defaulted.
	Strategy Strategy
	// Template is the desired application: any ReplicaSet of the deployment,
	// e.g. the one sources/bcs builds for the deployment's own name. The
	// engine names it: it sets metadata.name, namespace and replicas and
	// rewrites the label bcs.gitpace.dev/application wherever it appears
	// (ReplicaSet labels, selector, pod labels, label selectors of pod
	// affinity, anti-affinity and topology spread) to the application name.
	Template *appsv1.ReplicaSet
	// TemplateHash changes if and only if the pod template changes; an
	// instance-only change keeps it.
	TemplateHash string
	// Revision is the git commit that carries this spec; it is recorded.
	Revision string
}

// Strategy is a BCS rolling-update strategy with its defaults applied.
type Strategy struct {
	// MaxSurge is the number of pods created per cycle (≥1).
	MaxSurge int32
	// MaxUnavailable is the number of pods deleted per cycle (≥1).
	MaxUnavailable int32
	// UpgradeDuration is the least time from the end of one cycle to the
	// start of the next.
	UpgradeDuration time.Duration
	// Order is vocab.OrderCreateFirst or vocab.OrderDeleteFirst.
	Order string
	// Manually ends every cycle paused; see Controls.Promote.
	Manually bool
}

// Controls are the inputs that come from git markers and the clock rather
// than from the manifest.
type Controls struct {
	// Paused is set while a PAUSE marker is committed; PauseReason is its text.
	Paused      bool
	PauseReason string
	// Promote is the PROMOTE marker, if any: it approves manual cycles.
	Promote *Promote
	// Now is the clock; the engine uses time.Now when it is zero.
	Now time.Time
	// StartTimeout and DeleteTimeout bound the two phases of a cycle; zero
	// means DefaultStartTimeout and DefaultDeleteTimeout.
	StartTimeout, DeleteTimeout time.Duration
}

// Promote approves the cycles of a manual rollout (rollingManually).
type Promote struct {
	// Rollout is the name of the new application it approves.
	Rollout string
	// Cycles is the total number of cycles approved for that rollout so
	// far (the first cycle needs none): raising it by one releases one more.
	Cycles int
}

func (c Controls) withDefaults() Controls {
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.DeleteTimeout <= 0 {
		c.DeleteTimeout = DefaultDeleteTimeout
	}
	return c
}

// Validate reports a spec the engine cannot run. Errors name the deployment.
func (s Spec) Validate() error {
	id := s.Namespace + "/" + s.Name
	switch {
	case len(validation.IsDNS1123Label(s.Namespace)) > 0:
		return fmt.Errorf("BCS deployment %s: namespace %q is not a DNS-1123 label", id, s.Namespace)
	case len(validation.IsDNS1123Label(s.Name)) > 0 || len(s.Name) > vocab.MaxDeploymentName:
		return fmt.Errorf("BCS deployment %s: name must be a DNS-1123 label of at most %d characters", id, vocab.MaxDeploymentName)
	case s.Instance < 0:
		return fmt.Errorf("BCS deployment %s: instance %d is negative", id, s.Instance)
	case s.Strategy.MaxSurge < 1 || s.Strategy.MaxUnavailable < 1:
		return fmt.Errorf("BCS deployment %s: maxSurge and maxUnavailable must be defaulted to at least 1, got %d and %d",
			id, s.Strategy.MaxSurge, s.Strategy.MaxUnavailable)
	case s.Strategy.Order != vocab.OrderCreateFirst && s.Strategy.Order != vocab.OrderDeleteFirst:
		return fmt.Errorf("BCS deployment %s: rollingOrder %q is neither %s nor %s", id, s.Strategy.Order, vocab.OrderCreateFirst, vocab.OrderDeleteFirst)
	case s.Strategy.UpgradeDuration < 0:
		return fmt.Errorf("BCS deployment %s: upgradeDuration %s is negative", id, s.Strategy.UpgradeDuration)
	case s.Template == nil:
		return fmt.Errorf("BCS deployment %s: no template", id)
	case s.TemplateHash == "":
		return fmt.Errorf("BCS deployment %s: no template hash", id)
	}
	return nil
}
