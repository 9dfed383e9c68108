package sources

import (
	"context"
	"testing"
	"time"
)

func TestWatchLocalCommit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	repo := newRepo(t, dir)
	commitFiles(t, repo, map[string]string{"a.yaml": "a\n"}, "one")

	src := newSource(t, GitConfig{URL: dir})
	notify, fired := notifier()
	if err := src.Watch(ctx, notify); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	commitFiles(t, repo, map[string]string{"a.yaml": "b\n"}, "two")
	select {
	case <-fired:
		t.Logf("notified %v after the commit", time.Since(start))
	case <-time.After(5 * time.Second): // about 100ms when the machine is idle; 5s leaves room for a loaded one
		t.Fatal("no notification within 5s of a commit")
	}
}

func TestWatchRemoteIsNoop(t *testing.T) {
	src := newSource(t, GitConfig{URL: "https://example.invalid/org/repo.git"})
	if src.IsLocal() {
		t.Fatal("an https URL is not local")
	}
	if err := src.Watch(context.Background(), func() { t.Error("notified for a remote") }); err != nil {
		t.Fatal(err)
	}
}
