package main

import (
	"github.com/spf13/pflag"

	"github.com/gitpace/gitpace/sources"
)

// sourceFlags say which repository, branch and path to read, and how to
// authenticate to it.
type sourceFlags struct {
	cfg sources.GitConfig
}

func (s *sourceFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&s.cfg.URL, "repo", "", "git repository: a local path, file://, https://, ssh:// or user@host:path URL (required)")
	fs.StringVar(&s.cfg.Branch, "branch", "main", "branch to follow")
	fs.StringVar(&s.cfg.Path, "path", ".", "directory inside the repository that holds the apps")
	fs.StringVar(&s.cfg.CacheDir, "cache-dir", "", "where remote repositories are mirrored (default: a temporary directory, removed when the process ends)")
	fs.StringVar(&s.cfg.Auth.Username, "git-username", "", "HTTP basic-auth user name (default \"git\" when a password or token is set)")
	fs.StringVar(&s.cfg.Auth.Password.Env, "git-password-env", "", "environment variable holding the HTTP password or token")
	fs.StringVar(&s.cfg.Auth.Password.File, "git-password-file", "", "file holding the HTTP password or token")
	fs.StringVar(&s.cfg.Auth.SSHKeyFile, "ssh-key", "", "SSH private key file (default: the SSH agent)")
	fs.StringVar(&s.cfg.Auth.SSHKeyPassphrase.Env, "ssh-key-passphrase-env", "", "environment variable holding the SSH key's passphrase")
	fs.StringVar(&s.cfg.Auth.KnownHostsFile, "known-hosts", "", "known_hosts file for SSH host keys (default ~/.ssh/known_hosts)")
	fs.BoolVar(&s.cfg.Auth.InsecureSkipHostKey, "insecure-skip-host-key", false, "accept any SSH host key (unsafe)")
}

func (s *sourceFlags) source() (*sources.GitSource, error) {
	if s.cfg.URL == "" {
		return nil, usageErr("--repo is required")
	}
	return sources.NewGitSource(s.cfg)
}

func usageErr(msg string) error { return &exitError{code: 1, msg: msg} }
