package sources

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Secret says where a secret is read from: the environment variable named
// Env, else the file File (trailing newlines trimmed). Secrets are read on
// every use, so a rotated token file is picked up without a restart.
type Secret struct {
	Env  string
	File string
}

// IsSet reports whether a source for the secret is configured.
func (s Secret) IsSet() bool { return s.Env != "" || s.File != "" }

// Read returns the secret, or "" when none is configured.
func (s Secret) Read() (string, error) {
	if s.Env != "" {
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("secret: environment variable %s is not set", s.Env)
		}
		return v, nil
	}
	if s.File != "" {
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("secret: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

// Auth holds the credentials for a remote repository. The zero value is
// anonymous HTTP and, for SSH, the SSH agent with ~/.ssh/known_hosts.
type Auth struct {
	// Username for HTTP basic auth; "" means "git" when a password is set
	// (hosts that take a token accept any user name).
	Username string
	// Password is the HTTP password or access token.
	Password Secret

	// SSHKeyFile is a private key file; "" means use the SSH agent.
	SSHKeyFile string
	// SSHKeyPassphrase decrypts SSHKeyFile when it is encrypted.
	SSHKeyPassphrase Secret
	// KnownHostsFile lists the trusted host keys; "" means ~/.ssh/known_hosts.
	KnownHostsFile string
	// InsecureSkipHostKey accepts any SSH host key. Off by default.
	InsecureSkipHostKey bool
}

// method returns the go-git auth method for an endpoint, nil for anonymous.
func (a Auth) method(ep *transport.Endpoint) (transport.AuthMethod, error) {
	switch ep.Protocol {
	case "http", "https":
		return a.httpMethod()
	case "ssh":
		return a.sshMethod(ep)
	default:
		return nil, nil
	}
}

func (a Auth) httpMethod() (transport.AuthMethod, error) {
	if !a.Password.IsSet() {
		return nil, nil
	}
	pass, err := a.Password.Read()
	if err != nil {
		return nil, fmt.Errorf("http password: %w", err)
	}
	user := a.Username
	if user == "" {
		user = "git"
	}
	return &githttp.BasicAuth{Username: user, Password: pass}, nil
}

func (a Auth) sshMethod(ep *transport.Endpoint) (transport.AuthMethod, error) {
	user := ep.User
	if user == "" {
		user = "git"
	}
	hostKeys, err := a.hostKeyCallback()
	if err != nil {
		return nil, err
	}
	if a.SSHKeyFile == "" {
		agent, err := gitssh.NewSSHAgentAuth(user)
		if err != nil {
			return nil, fmt.Errorf("ssh: no key file configured and no SSH agent: %w", err)
		}
		agent.HostKeyCallback = hostKeys
		return agent, nil
	}
	passphrase, err := a.SSHKeyPassphrase.Read()
	if err != nil {
		return nil, fmt.Errorf("ssh key passphrase: %w", err)
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, passphrase)
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %w", a.SSHKeyFile, err)
	}
	keys.HostKeyCallback = hostKeys
	return keys, nil
}

func (a Auth) hostKeyCallback() (gossh.HostKeyCallback, error) {
	if a.InsecureSkipHostKey {
		return func(string, net.Addr, gossh.PublicKey) error { return nil }, nil
	}
	file := a.KnownHostsFile
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("ssh known_hosts: %w", err)
		}
		file = filepath.Join(home, ".ssh", "known_hosts")
	}
	cb, err := gitssh.NewKnownHostsCallback(file)
	if err != nil {
		return nil, fmt.Errorf("ssh known_hosts %s (set a known_hosts file, or skip host key checks explicitly): %w", file, err)
	}
	return cb, nil
}

// redact returns a URL fit for messages: any password in it is replaced.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
