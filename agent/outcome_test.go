package agent_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/sources"
)

// TestClassify: every error a reconcile meets lands in one outcome class,
// decided in one place; wrapping does not change the class.
func TestClassify(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cm := schema.GroupResource{Resource: "configmaps"}
	for _, c := range []struct {
		name string
		err  error
		want agent.OutcomeKind
	}{
		{"nil", nil, agent.Done},
		{"branch not found (bad input, not an outage)", fmt.Errorf("source: %w", fmt.Errorf("git source x: %w: \"main\"", sources.ErrBranchNotFound)), agent.Stalled},
		{"path not found", fmt.Errorf("source: %w", sources.ErrPathNotFound), agent.Stalled},
		{"kind not served", fmt.Errorf("app web: %w", appliers.ErrUnknownKind), agent.Stalled},
		{"schema error", apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "x", nil), agent.Stalled},
		{"forbidden", apierrors.NewForbidden(cm, "x", errors.New("RBAC")), agent.Stalled},
		{"explicitly stalled", &agent.StalledError{Err: errors.New("bad")}, agent.Stalled},
		{"waiting", fmt.Errorf("app web: %w", &agent.WaitingError{Err: errors.New("namespace terminating"), At: at}), agent.Waiting},
		{"server unavailable", apierrors.NewServiceUnavailable("etcd"), agent.Transient},
		{"timeout", apierrors.NewTimeoutError("slow", 1), agent.Transient},
		{"connection refused", errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), agent.Transient},
		{"cancelled", context.Canceled, agent.Transient},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := agent.Classify(c.err)
			if o.Kind != c.want {
				t.Fatalf("Classify(%v) = %s, want %s", c.err, o.Kind, c.want)
			}
			if c.want == agent.Waiting && !o.RetryAt.Equal(at) {
				t.Errorf("RetryAt = %s, want %s", o.RetryAt, at)
			}
			if c.err != nil && !errors.Is(o.Err, c.err) {
				t.Errorf("Err = %v, want the classified error", o.Err)
			}
		})
	}
}
