package sources

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"
	"sigs.k8s.io/yaml"
)

// The verbs below are what the CLI's acting commands do: each opens a local
// clone at dir, changes files in its worktree and makes exactly one commit on
// the checked-out branch, returning the new commit's hash. None of them
// pushes; see Push. They refuse to run when changes are already staged, since
// those would end up in the commit.
//
// path is the source's directory inside the repository ("" for the root) and
// app an app's name below it, as package manifest names apps.

// Pause writes <path>/<app>/PAUSE (app "" writes <path>/PAUSE, pausing every
// app) holding reason, and commits "gitpace: pause <app>: <reason>". Pausing
// again replaces the reason; pausing again with the same reason is an error.
func Pause(dir, path, app, reason string) (string, error) {
	marker, err := markerPath(dir, path, app, PauseFile)
	if err != nil {
		return "", err
	}
	msg := "gitpace: pause " + appLabel(app)
	if reason = strings.TrimSpace(reason); reason != "" {
		msg += ": " + reason
	}
	return commitChange(dir, msg, func(wt *git.Worktree) error {
		return writeFile(wt, marker, []byte(reason+"\n"), 0o644)
	})
}

// Resume removes the PAUSE marker Pause wrote and commits
// "gitpace: resume <app>". It fails with ErrNotPaused when there is none.
func Resume(dir, path, app string) (string, error) {
	marker, err := markerPath(dir, path, app, PauseFile)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(marker))); errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("resume %s: no %s: %w", appLabel(app), marker, ErrNotPaused)
	}
	msg := fmt.Sprintf("gitpace: resume %s", appLabel(app))
	return commitChange(dir, msg, func(wt *git.Worktree) error {
		_, err := wt.Remove(marker)
		return err
	})
}

// Promote writes <path>/<app>/PROMOTE approving cycles manual cycles of the
// rollout named rollout, and commits "gitpace: promote <app>: <rollout> (<n> cycles)".
func Promote(dir, path, app, rollout string, cycles int) (string, error) {
	if app == "" {
		return "", errors.New("promote: an app is required")
	}
	p := Promotion{Rollout: rollout, Cycles: cycles}
	if err := p.Validate(); err != nil {
		return "", fmt.Errorf("promote %s: %w", app, err)
	}
	marker, err := markerPath(dir, path, app, PromoteFile)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("gitpace: promote %s: %s (%d cycles)", app, rollout, cycles)
	return commitChange(dir, msg, func(wt *git.Worktree) error {
		return writeFile(wt, marker, p.Marshal(), 0o644)
	})
}

// PromoteWave records in <path>/PROMOTE-WAVES the approval of rollout of
// manual wave (1-based), replacing an earlier approval of that wave, and
// commits "gitpace: promote wave <wave>: <rollout>".
func PromoteWave(dir, path string, wave int, rollout string) (string, error) {
	if wave < 1 || rollout == "" {
		return "", fmt.Errorf("promote --wave: a wave >= 1 and its rollout are required")
	}
	marker, err := markerPath(dir, path, "", WavePromoteFile)
	if err != nil {
		return "", err
	}
	var p WavePromotions
	if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(marker))); err == nil {
		if p, err = ParseWavePromotions(b); err != nil {
			return "", fmt.Errorf("%s: %w (fix or delete it)", marker, err)
		}
	}
	kept := p.Waves[:0]
	for _, w := range p.Waves {
		if w.Wave != wave {
			kept = append(kept, w)
		}
	}
	p.Waves = append(kept, WavePromotion{Wave: wave, Rollout: rollout})
	sort.Slice(p.Waves, func(i, j int) bool { return p.Waves[i].Wave < p.Waves[j].Wave })
	data, err := yaml.Marshal(p)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("gitpace: promote wave %d: %s", wave, rollout)
	return commitChange(dir, msg, func(wt *git.Worktree) error {
		return writeFile(wt, marker, data, 0o644)
	})
}

func appLabel(app string) string {
	if app == "" {
		return "all apps"
	}
	return app
}

// markerPath returns the slash path of a marker file in the repository at
// dir, checking that the directory it goes in exists.
func markerPath(dir, base, app, name string) (string, error) {
	d, err := cleanRelPath(path.Join(filepath.ToSlash(base), filepath.ToSlash(app)))
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", strings.ToLower(name), app, err)
	}
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(d)))
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s %s: directory %q not found in %s", strings.ToLower(name), appLabel(app), d, dir)
	}
	return path.Join(d, name), nil
}

// commitChange opens the clone at dir, lets change edit the worktree
// (staging what it writes) and commits the result as one commit.
func commitChange(dir, msg string, change func(wt *git.Worktree) error) (string, error) {
	repo, wt, err := openClone(dir)
	if err != nil {
		return "", err
	}
	st, err := wt.Status()
	if err != nil {
		return "", fmt.Errorf("%s: status: %w", dir, err)
	}
	for file, fs := range st {
		if fs.Staging != git.Unmodified && fs.Staging != git.Untracked {
			return "", fmt.Errorf("%s: %s is staged: %w", dir, file, ErrDirtyWorktree)
		}
	}
	if err := change(wt); err != nil {
		return "", fmt.Errorf("%s: %w", dir, err)
	}
	sig := commitAuthor(repo)
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if errors.Is(err, git.ErrEmptyCommit) {
		return "", fmt.Errorf("%s: nothing to commit: the files already say this", dir)
	}
	if err != nil {
		return "", fmt.Errorf("%s: commit: %w", dir, err)
	}
	return h.String(), nil
}

func openClone(dir string) (*git.Repository, *git.Worktree, error) {
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("open clone %s: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, nil, fmt.Errorf("open clone %s: %w", dir, err)
	}
	return repo, wt, nil
}

// writeFile writes a file of the worktree (making its directory) and stages it.
func writeFile(wt *git.Worktree, name string, data []byte, mode os.FileMode) error {
	if err := wt.Filesystem.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := wt.Filesystem.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The file may have existed with another mode.
	if err := os.Chmod(filepath.Join(wt.Filesystem.Root(), filepath.FromSlash(name)), mode); err != nil {
		return err
	}
	_, err = wt.Add(name)
	return err
}

// commitAuthor is who the verbs commit as, found as git finds it:
// GIT_AUTHOR_NAME / GIT_AUTHOR_EMAIL, else user.name / user.email from the
// repository's config (then the global one), else "gitpace <gitpace@localhost>".
func commitAuthor(repo *git.Repository) *object.Signature {
	name, email := os.Getenv("GIT_AUTHOR_NAME"), os.Getenv("GIT_AUTHOR_EMAIL")
	if cfg, err := repo.ConfigScoped(config.GlobalScope); err == nil {
		if name == "" {
			name = cfg.User.Name
		}
		if email == "" {
			email = cfg.User.Email
		}
	}
	if name == "" {
		name = "gitpace"
	}
	if email == "" {
		email = "gitpace@localhost"
	}
	return &object.Signature{Name: name, Email: email, When: time.Now()}
}

// NextPromoteCycles is the --cycles a new promote of rollout should carry:
// one more than the app's current PROMOTE approves for that rollout, or 1
// when the marker is missing or names another rollout.
func NextPromoteCycles(dir, path, app, rollout string) int {
	marker, err := markerPath(dir, path, app, PromoteFile)
	if err != nil {
		return 1
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(marker)))
	if err != nil {
		return 1
	}
	p, err := ParsePromotion(b)
	if err != nil || p.Rollout != rollout {
		return 1
	}
	return p.Cycles + 1
}
