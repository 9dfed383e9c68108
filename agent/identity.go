package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultName derives an agent identity from what it reconciles: the
// repository, the branch and the path inside it. Two agents started with the
// same three share an identity (they are replicas of one agent); any other
// agent has another. The name is `<repository base name>-<10 hex digits of
// sha256(repo, branch, path)>`, a valid label value, e.g. `shop-3f2a9c01b7`.
// Local paths and file:// URLs of the same repository give the same name,
// and so do a worktree and its .git directory, and <path> for <path>.git.
func DefaultName(repo, branch, dir string) string {
	canon := canonicalRepo(repo)
	dir = path.Clean("/" + strings.Trim(filepath.ToSlash(dir), "/"))
	sum := sha256.Sum256([]byte(canon + "\x00" + branch + "\x00" + dir))
	base := strings.TrimSuffix(path.Base(strings.TrimRight(canon, "/")), ".git")
	base = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, base)
	base = strings.Trim(base, "-._")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-._")
	}
	if base == "" {
		base = "gitpace"
	}
	return base + "-" + hex.EncodeToString(sum[:5])
}

// canonicalRepo turns a local path or file:// URL into an absolute clean
// path, and trims a trailing slash of a remote URL.
func canonicalRepo(repo string) string {
	if u, err := url.Parse(repo); err == nil && u.Scheme == "file" {
		repo = u.Path
	} else if err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		return strings.TrimRight(repo, "/")
	} else if strings.Contains(repo, "@") && strings.Contains(repo, ":") && !strings.HasPrefix(repo, "/") {
		return strings.TrimRight(repo, "/") // scp-like git@host:org/repo.git
	}
	if abs, err := filepath.Abs(repo); err == nil {
		repo = abs
	}
	repo = filepath.Clean(repo)
	// The forms git accepts for one local repository name it alike: its
	// .git directory, and <path> for a bare <path>.git.
	if filepath.Base(repo) == ".git" {
		repo = filepath.Dir(repo)
	} else if _, err := os.Stat(repo); os.IsNotExist(err) {
		if _, err := os.Stat(repo + ".git"); err == nil {
			repo += ".git"
		}
	}
	return filepath.ToSlash(repo)
}

// ValidateName checks an agent identity given with --name: it is written
// as a label value on every object gitpace applies.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("--name must not be empty")
	}
	if errs := validation.IsValidLabelValue(name); len(errs) > 0 {
		return fmt.Errorf("--name %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}
