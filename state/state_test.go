package state_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newStore is a Store in a state namespace of the test's own, whose writes
// are counted.
func newStore(t *testing.T) (*state.Store, *testenv.Writes) {
	t.Helper()
	rc := testenv.Config(t)
	writes := testenv.CountWrites(rc)
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return state.NewStore(cs, testenv.Namespace(t)), writes
}

func app(agent, name string) *state.App {
	return &state.App{
		Name: name, Agent: agent, Phase: state.Synced,
		Applied:     &sources.Revision{Commit: "0123456789abcdef0123456789abcdef01234567", Subject: "first"},
		ContentHash: "c0ffee",
		Inventory:   []appliers.ObjectRef{{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "web"}},
		Fingerprints: map[string]string{
			"/ConfigMap/shop/web":      "0b3f-uid/5e1d/9a8c",
			"apps/Deployment/shop/web": "77aa-uid/01b2/33c4",
		},
		Updated: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC),
	}
}

// TestStoreRoundTrip: Save, then Get, List (another Store, as a restarted
// agent) and Find give the state back as saved, fingerprints included;
// Delete removes it.
func TestStoreRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	web, api := app("agent-a", "web"), app("agent-b", "api")
	for _, a := range []*state.App{web, api} {
		if err := s.Save(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, "agent-a", "web")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(web, got); d != "" {
		t.Errorf("Get (-want +got):\n%s", d)
	}
	cs, err := kubernetes.NewForConfig(testenv.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	all, err := state.NewStore(cs, s.Namespace).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]*state.App{web, api}, all); d != "" {
		t.Errorf("List, sorted by agent (-want +got):\n%s", d)
	}
	if found, err := s.Find(ctx, "api"); err != nil || found == nil || found.Agent != "agent-b" {
		t.Errorf("Find(api) = %+v, %v; want agent-b's", found, err)
	}

	if err := s.Delete(ctx, web); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "agent-a", "web"); err != nil || got != nil {
		t.Errorf("after Delete: %+v, %v; want nil, nil", got, err)
	}
	if _, err := cs.CoreV1().ConfigMaps(s.Namespace).Get(ctx, state.ConfigMapName("agent-a", "web"), metav1.GetOptions{}); err == nil {
		t.Error("the state ConfigMap is still there")
	}
}

// TestSaveWritesOnlyChanges: saving a state that differs only in Updated
// writes nothing and gives back the stored time; a changed fingerprint is
// written.
func TestSaveWritesOnlyChanges(t *testing.T) {
	s, writes := newStore(t)
	ctx := context.Background()
	a := app("agent-a", "web")
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	saved := a.Updated
	before := writes.Load()
	a.Updated = saved.Add(time.Hour)
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load() - before; n != 0 {
		t.Errorf("Save with only Updated changed made %d writes, want 0", n)
	}
	if !a.Updated.Equal(saved) {
		t.Errorf("Updated = %s, want the stored %s", a.Updated, saved)
	}

	a.Fingerprints["/ConfigMap/shop/web"] = "0b3f-uid/6f2e/9a8c"
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load() - before; n != 1 {
		t.Errorf("Save of a changed fingerprint made %d writes, want 1", n)
	}
	got, err := s.Get(ctx, "agent-a", "web")
	if err != nil || got == nil || got.Fingerprints["/ConfigMap/shop/web"] != "0b3f-uid/6f2e/9a8c" {
		t.Errorf("stored fingerprints %v, %v; want the changed one", got, err)
	}
}
