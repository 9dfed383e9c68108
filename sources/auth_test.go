package sources

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// TestHTTPTokenIsSent checks the credentials reach the server on the
// ref listing, read from an environment variable or a file.
func TestHTTPTokenIsSent(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		http.Error(w, "no such repo", http.StatusNotFound)
	}))
	defer srv.Close()
	t.Setenv("GITPACE_TEST_TOKEN", "tok-from-env")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		auth Auth
		want string
	}{
		{Auth{Username: "bot", Password: Secret{Env: "GITPACE_TEST_TOKEN"}}, "bot:tok-from-env"},
		{Auth{Password: Secret{File: tokenFile}}, "git:tok-from-file"},
	} {
		got = nil
		src := newSource(t, GitConfig{URL: srv.URL + "/org/repo.git", Auth: tt.auth})
		_, err := src.Fetch(context.Background(), "")
		if err == nil || !strings.Contains(err.Error(), srv.URL+"/org/repo.git") {
			t.Errorf("Fetch = %v, want an error naming the URL", err)
		}
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(tt.want))
		if len(got) == 0 || got[0] != want {
			t.Errorf("Authorization = %q, want %q", got, want)
		}
	}

	_, err := newSource(t, GitConfig{URL: srv.URL + "/r.git", Auth: Auth{Password: Secret{Env: "GITPACE_TEST_UNSET"}}}).
		Fetch(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "GITPACE_TEST_UNSET") {
		t.Errorf("unset token variable: %v", err)
	}
}

func TestSSHAuth(t *testing.T) {
	dir := t.TempDir()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := gossh.NewSignerFromKey(key)
	knownHosts := filepath.Join(dir, "known_hosts")
	line := "github.com " + string(gossh.MarshalAuthorizedKey(signer.PublicKey()))
	if err := os.WriteFile(knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	ep, err := transport.NewEndpoint("git@github.com:org/repo.git")
	if err != nil {
		t.Fatal(err)
	}

	addr := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	m, err := Auth{SSHKeyFile: keyFile, KnownHostsFile: knownHosts}.method(ep)
	if err != nil {
		t.Fatal(err)
	}
	pk, ok := m.(*gitssh.PublicKeys)
	if !ok || pk.User != "git" || pk.HostKeyCallback == nil {
		t.Fatalf("method = %#v", m)
	}
	if err := pk.HostKeyCallback("github.com:22", addr, signer.PublicKey()); err != nil {
		t.Errorf("known host rejected: %v", err)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _ := gossh.NewPublicKey(other)
	if err := pk.HostKeyCallback("github.com:22", addr, otherPub); err == nil {
		t.Error("a changed host key was accepted")
	}

	missing := filepath.Join(dir, "nope")
	if _, err := (Auth{SSHKeyFile: keyFile, KnownHostsFile: missing}).method(ep); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing known_hosts: %v, want an error naming it", err)
	}
	m, err = Auth{SSHKeyFile: keyFile, KnownHostsFile: missing, InsecureSkipHostKey: true}.method(ep)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.(*gitssh.PublicKeys).HostKeyCallback("github.com:22", addr, otherPub); err != nil {
		t.Errorf("insecure skip still checked the host key: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://bot:s3cret@host/r.git": "https://bot:xxxxx@host/r.git",
		"https://host/r.git":            "https://host/r.git",
		"git@host:org/r.git":            "git@host:org/r.git",
		"/srv/repo":                     "/srv/repo",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
