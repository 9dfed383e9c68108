package plan_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/internal/gittest"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/plan"
	"github.com/gitpace/gitpace/sources"
)

func seed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../testdata/seed/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPlanSeed applies the seed's test1-1-0 with the agent, commits
// test1-1-1 and plans it against the real control plane: the image diff and
// the three rolling steps of 3 replicas with surge 1 and unavailable 1
// (exit 2); the applied commit changes nothing (exit 0); a malformed file is
// an error naming it (exit 1). Planning writes nothing.
func TestPlanSeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := testenv.Namespace(t)
	repo := gittest.New(t)
	applied := repo.Commit("test: deploy v1.1.0", map[string]string{"apps/test/deployment.yaml": seed(t, "test1-1-0.yaml")})
	src, err := sources.NewGitSource(sources.GitConfig{URL: repo.Dir, Branch: "main", Path: "apps"})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Config{Source: src, Rest: testenv.Config(t), StateNamespace: ns, DefaultNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	if err := ag.ReconcileOnce(ctx); err != nil {
		t.Fatalf("applying test1-1-0: %v", err)
	}
	head := repo.Commit("test: v1.1.1 listening on 8888", map[string]string{"apps/test/deployment.yaml": seed(t, "test1-1-1.yaml")})
	broken := repo.Commit("test: a broken file", map[string]string{"apps/test/broken.yaml": "kind: [Service\n"})

	rc := testenv.Config(t)
	counter := testenv.CountWrites(rc)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	cfg := plan.Config{AgentName: ag.Name(), Source: src, Rest: rc, StateNamespace: ns, DefaultNamespace: ns, Now: func() time.Time { return now }}
	planAt := func(t *testing.T, rev string) (*plan.Plan, string, string) {
		t.Helper()
		p, err := plan.Make(ctx, cfg, rev)
		if err != nil {
			t.Fatal(err)
		}
		var text, md bytes.Buffer
		if err := plan.Text(&text, p); err != nil {
			t.Fatal(err)
		}
		if err := plan.Markdown(&md, p); err != nil {
			t.Fatal(err)
		}
		return p, text.String(), md.String()
	}

	t.Run("the new commit rolls in 3 steps", func(t *testing.T) {
		p, text, md := planAt(t, head[:10])
		if got := p.ExitCode(); got != 2 {
			t.Errorf("exit code %d, want 2\n%s", got, text)
		}
		for _, want := range []string{
			"# Deployment/" + ns + "/test configured",
			"-        image: hub.docker.com:xxxx/xxxxxx:v1.1.0",
			"+        image: hub.docker.com:xxxx/xxxxxx:v1.1.1",
			"Deployment " + ns + "/test: rolls to the new pod template in 3 steps",
			"RollingUpdate, maxSurge 1, maxUnavailable 1: at most 4 pods, at least 2 available",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("text output lacks %q:\n%s", want, text)
			}
		}
		steps := regexp.MustCompile(`(?m)^  [123] +([0-9]+) +([0-9]+) +4 +2 +scale new up to ([0-9]), old down to ([0-9])$`).FindAllStringSubmatch(text, -1)
		if len(steps) != 3 || steps[2][1] != "3" || steps[2][2] != "0" {
			t.Errorf("text output: want 3 rolling steps ending with 3 new, 0 old; got %q:\n%s", steps, text)
		}
		for _, want := range []string{
			"### app `test`",
			"| `Deployment/" + ns + "/test` | configured |",
			"```diff\n--- live/Deployment/" + ns + "/test",
			"| 3 | 3 | 0 | 4 | 2 | scale new up to 3, old down to 0 |",
		} {
			if !strings.Contains(md, want) {
				t.Errorf("markdown output lacks %q:\n%s", want, md)
			}
		}
	})

	t.Run("the applied commit changes nothing", func(t *testing.T) {
		p, text, _ := planAt(t, applied)
		if got := p.ExitCode(); got != 0 {
			t.Errorf("exit code %d, want 0\n%s", got, text)
		}
		if !strings.Contains(text, "revision "+applied[:7]+": no changes") {
			t.Errorf("text output:\n%s", text)
		}
	})

	t.Run("a malformed file is an error naming it", func(t *testing.T) {
		p, text, md := planAt(t, broken)
		if got := p.ExitCode(); got != 1 {
			t.Errorf("exit code %d, want 1\n%s", got, text)
		}
		for _, out := range []string{text, md} {
			if !strings.Contains(out, "apps/test/broken.yaml:1") {
				t.Errorf("output does not name apps/test/broken.yaml:1:\n%s", out)
			}
		}
	})

	if n := counter.Load(); n != 0 {
		t.Errorf("planning made %d write requests, want none", n)
	}
}

// TestPlanHelmCapabilitiesFromCluster: the plan renders Helm charts with
// .Capabilities from the live cluster, as the agent does (not Helm's
// defaults): a chart writing the Kubernetes version into a ConfigMap
// shows the server's version in the plan's diff.
func TestPlanHelmCapabilitiesFromCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := testenv.Namespace(t)
	repo := gittest.New(t)
	repo.Commit("chart", map[string]string{
		"apps/kv/Chart.yaml": "apiVersion: v2\nname: kv\nversion: 0.1.0\n",
		"apps/kv/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kv\ndata:\n" +
			"  kube: \"{{ .Capabilities.KubeVersion.Version }}\"\n",
	})
	src, err := sources.NewGitSource(sources.GitConfig{URL: repo.Dir, Branch: "main", Path: "apps"})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := testenv.Client(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Make(ctx, plan.Config{AgentName: "plan-caps", Source: src, Rest: testenv.Config(t), StateNamespace: ns, DefaultNamespace: ns}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Apps) != 1 || len(p.Apps[0].Changes) != 1 {
		t.Fatalf("plan apps = %+v", p.Apps)
	}
	if d := p.Apps[0].Changes[0].Diff; !strings.Contains(d, "kube: "+sv.GitVersion) {
		t.Errorf("diff does not render the cluster's version %s:\n%s", sv.GitVersion, d)
	}
}
