package paced

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/sources/bcs"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// specFromBCS is what the agent does with a parsed BCS deployment: the
// template is the deployment's first application, which the engine renames.
// ns replaces the deployment's namespace (tests run in their own).
func specFromBCS(t *testing.T, file, ns string, upgrade time.Duration) Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bcs", file))
	if err != nil {
		t.Fatal(err)
	}
	d, err := bcs.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := d.ReplicaSet(d.Name())
	if err != nil {
		t.Fatal(err)
	}
	s := d.Strategy()
	return Spec{
		Namespace: ns, Name: d.Name(), Instance: d.Instance(),
		Strategy: Strategy{MaxSurge: s.MaxSurge, MaxUnavailable: s.MaxUnavailable, UpgradeDuration: upgrade,
			Order: s.Order, Manually: s.Manually},
		Template: tmpl, TemplateHash: d.TemplateHash(), Revision: file,
	}
}

// TestBCSSeedManifests rolls the seed's own manifests, test1-1-0.json →
// test1-1-1.json, as package sources/bcs maps them (UNIQUE InnerIP
// anti-affinity, 4096 MB memory), with upgradeDuration cut from 60 s.
func TestBCSSeedManifests(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRig(t)
	e := shared(&Engine{Client: r.cs, Poll: 2 * time.Second})
	v0 := specFromBCS(t, "test1-1-0.json", r.ns, upgrade)
	v0.Template.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	since := deploy(ctx, r, e, v0)
	v1 := specFromBCS(t, "test1-1-1.json", r.ns, upgrade)
	v1.Template.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	st := r.drive(ctx, e, v1, &Controls{}, isDone)
	r.waitPods(ctx, 2, "v1.1.1")
	cycles := [][]string{{"new 1", "old 1"}, {"new 2", "old 0"}}
	if diff := cmp.Diff(flatten(cycles), r.steps(since, roles)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if _, errs := checkCycles(r.events(), since, cycles, vocab.OrderCreateFirst, upgrade); len(errs) > 0 {
		t.Error(errs)
	}
	for _, p := range r.pods.Snapshot() {
		if p.Labels[vocab.LabelApplication] != st.Apps[0].Name || p.Spec.Containers[0].Ports[0].ContainerPort != 8888 {
			t.Errorf("pod %s: application %q, port %d", p.Name, p.Labels[vocab.LabelApplication], p.Spec.Containers[0].Ports[0].ContainerPort)
		}
	}
}
