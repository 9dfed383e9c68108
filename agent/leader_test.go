package agent_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/internal/testenv"
)

// TestLeaderElection: a lease left by a killed leader is waited out, then
// taken. Two agents on one repository and state namespace: the first holds
// the lease and applies; the standby makes no request but the lease's, even
// when a new commit lands. When the leader stops, it releases the lease
// only after its agent has stopped, and the standby takes over and applies
// the next commit.
func TestLeaderElection(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cm := func(v string) map[string]string {
		return map[string]string{"apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leader\ndata:\n  v: " + v + "\n"}
	}
	data := func() string {
		c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(ctx, "leader", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return c.Data["v"]
	}
	f.repo.Commit("v1", cm("one"))
	election := func(id string) agent.Election {
		// Short enough for a test, long enough that a loaded CI machine
		// does not miss a renewal (a lost lease would end the leader).
		return agent.Election{Identity: id, LeaseDuration: 5 * time.Second, RenewDeadline: 4 * time.Second, RetryPeriod: 250 * time.Millisecond}
	}
	start := func(a *agent.Agent, id string) (stop func() error) {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.RunElected(runCtx, election(id)) }()
		var once bool
		var err error
		return func() error {
			if !once {
				once = true
				cancel()
				err = <-done
			}
			return err
		}
	}

	// A leader that was killed: its lease is valid for 3 s more and is
	// never renewed or released.
	if _, err := f.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.stateNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	crashed, seconds, now := "crashed", int32(3), metav1.NewMicroTime(time.Now())
	if _, err := f.kube.CoordinationV1().Leases(f.stateNS).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: agent.LeaseName},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &crashed, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	first := f.build(nil)
	stopFirst := start(first, "first")
	t.Cleanup(func() { _ = stopFirst() })
	f.eventually("the first agent waits for the crashed leader's lease", 30*time.Second, func() bool {
		return strings.Contains(f.logs(), `msg="leader election: standing by" leader=crashed identity=first`)
	})
	if v := data(); v != "" {
		t.Fatalf("the first agent applied (v=%q) while another held a valid lease", v)
	}
	f.eventually("the first agent takes the expired lease and applies v1", 30*time.Second, func() bool { return data() == "one" })

	// The standby: its own client, recording every request that is not
	// about the lease (or the state namespace it lives in).
	var mu sync.Mutex
	var other []string
	rc := testenv.Config(t)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if !strings.Contains(r.URL.Path, "/leases/") && r.URL.Path != "/api/v1/namespaces/"+f.stateNS {
				mu.Lock()
				other = append(other, r.Method+" "+r.URL.Path)
				mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	cfg := f.cfg
	cfg.Rest, cfg.Log = rc, f.logger()
	second, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopSecond := start(second, "second")
	t.Cleanup(func() { _ = stopSecond() })
	f.eventually("the second agent stands by", 30*time.Second, func() bool {
		return strings.Contains(f.logs(), `msg="leader election: standing by" leader=first identity=second`)
	})
	f.repo.Commit("v2", cm("two"))
	first.Trigger()
	f.eventually("the leader applies v2", 30*time.Second, func() bool { return data() == "two" })
	mu.Lock()
	if len(other) != 0 {
		t.Fatalf("the standby did more than wait for the lease: %v", other)
	}
	mu.Unlock()

	if err := stopFirst(); err != nil {
		t.Fatalf("the leader's RunElected = %v, want nil after its context ended", err)
	}
	lease, err := f.kube.CoordinationV1().Leases(f.stateNS).Get(ctx, agent.LeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h == "first" {
		t.Fatalf("the stopped leader still holds the lease")
	}
	f.eventually("the standby takes over", 30*time.Second, func() bool {
		l, err := f.kube.CoordinationV1().Leases(f.stateNS).Get(ctx, agent.LeaseName, metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == "second"
	})
	f.repo.Commit("v3", cm("three"))
	second.Trigger()
	f.eventually("the new leader applies v3", 30*time.Second, func() bool { return data() == "three" })
	if err := stopSecond(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("the second agent's RunElected = %v", err)
	}
}
