package sources

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// watchWindow is how long Watch gathers a burst of ref writes (a commit
// writes the ref, then its log; `git gc` rewrites packed-refs) into one call.
const watchWindow = 100 * time.Millisecond

// Watch reports commits to a local repository's branch as they happen: it
// watches the git directory (HEAD, packed-refs) and refs/heads with fsnotify
// and calls notify at most once per 100ms burst of changes, about 100ms after
// the first. notify is a hint: the caller calls Fetch, which may find nothing
// new. The watches are in place when Watch returns; they stop when ctx ends.
//
// For a remote, Watch does nothing and returns nil: the caller polls.
func (s *GitSource) Watch(ctx context.Context, notify func()) error {
	if s.ep != nil {
		return nil
	}
	gitDir, commonDir, err := s.gitDirs()
	if err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("git source %s: watch: %w", s.display, err)
	}
	heads := filepath.Join(commonDir, "refs", "heads")
	dirs := []string{gitDir, commonDir}
	_ = filepath.WalkDir(heads, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return fmt.Errorf("git source %s: watch %s: %w", s.display, d, err)
		}
	}
	branchFile := filepath.Join(heads, filepath.FromSlash(s.branch.Short()))
	relevant := func(ev fsnotify.Event) bool {
		if strings.HasSuffix(ev.Name, ".lock") {
			return false
		}
		if ev.Has(fsnotify.Create) && strings.HasPrefix(ev.Name, heads+string(filepath.Separator)) {
			if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
				_ = w.Add(ev.Name) // a new namespace, e.g. refs/heads/release/
				return false
			}
		}
		base := filepath.Base(ev.Name)
		return ev.Name == branchFile || base == "packed-refs" || base == "HEAD"
	}
	go watchLoop(ctx, w, relevant, notify)
	return nil
}

func watchLoop(ctx context.Context, w *fsnotify.Watcher, relevant func(fsnotify.Event) bool, notify func()) {
	defer w.Close()
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if fire == nil && relevant(ev) {
				fire = time.After(watchWindow)
			}
		case <-fire:
			fire = nil
			notify()
		case _, ok := <-w.Errors:
			// An overflow loses events; the caller's poll catches up.
			if !ok {
				return
			}
		}
	}
}

// gitDirs returns the repository's git directory (the bare repository
// itself, or a worktree's .git) and its common directory (where refs live;
// different only in a linked worktree).
func (s *GitSource) gitDirs() (gitDir, commonDir string, err error) {
	repo, err := openLocal(s.local)
	if err != nil {
		return "", "", fmt.Errorf("git source %s: open repository: %w", s.display, err)
	}
	st, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return "", "", fmt.Errorf("git source %s: not an on-disk repository", s.display)
	}
	gitDir = st.Filesystem().Root()
	commonDir = gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		commonDir = strings.TrimSpace(string(b))
		if !filepath.IsAbs(commonDir) {
			commonDir = filepath.Join(gitDir, commonDir)
		}
	}
	return gitDir, filepath.Clean(commonDir), nil
}
