package agent_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/agent"
	"github.com/gitpace/gitpace/internal/testenv"
	"github.com/gitpace/gitpace/sources"
)

// TestWebhookTriggersPoll: with an hour-long poll interval, POST /hooks/git
// makes the agent fetch a remote at once; /metrics counts reconciles.
func TestWebhookTriggersPoll(t *testing.T) {
	f := newFixture(t)
	f.repo.Commit("v1", map[string]string{"apps/web/cm.yaml": cm})
	remote := t.TempDir() + "/remote.git"
	if err := cloneBare(f.repo.Dir, remote); err != nil {
		t.Fatal(err)
	}
	src, err := sources.NewGitSource(sources.GitConfig{URL: "file://" + remote, Branch: "main", Path: "apps", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	f.cfg = agent.Config{Source: src, Rest: testenv.Config(t), StateNamespace: f.stateNS, DefaultNamespace: f.ns,
		Interval: time.Hour, Resync: time.Hour, Out: f.out, Log: f.logger(), Metrics: agent.NewMetrics(reg)}
	a := f.rebuild()
	f.run()
	srv := httptest.NewServer(a.Handler(reg))
	defer srv.Close()
	value := func() string {
		c, err := f.kube.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "test-config", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return c.Data["greeting"]
	}
	f.eventually("first revision", time.Minute, func() bool { return value() == "hello" })

	f.repo.Commit("v2", map[string]string{"apps/web/cm.yaml": strings.Replace(cm, "hello", "webhook", 1)})
	if err := pushBare(f.repo.Dir, remote); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/hooks/git", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook answered %s", resp.Status)
	}
	f.eventually("pushed revision applied without waiting for the hour-long poll", 30*time.Second, func() bool { return value() == "webhook" })

	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(b.String(), `gitpace_reconciles_total{result="ok"}`) || !strings.Contains(b.String(), `gitpace_app_phase{app="web",phase="Synced"} 1`) ||
		!strings.Contains(b.String(), `gitpace_app_health{app="web",health="Healthy"} 1`) || !strings.Contains(b.String(), `gitpace_app_health{app="web",health="Degraded"} 0`) {
		t.Errorf("metrics lack reconcile counts, the app phase or its health:\n%s", b.String())
	}
}
