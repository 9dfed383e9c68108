package policies

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/gitpace/gitpace/internal/gittest"
)

// keyTime is the creation time of test keys: fixed, and in the past of
// whatever clock go-crypto verifies against.
var keyTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// newTestKey makes an Ed25519 OpenPGP entity and its armored public key.
func newTestKey(t testing.TB, name string) (*openpgp.Entity, []byte) {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return keyTime }}
	e, err := openpgp.NewEntity(name, "test", strings.ToLower(name)+"@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, armoredOf(t, e)
}

// keyRingOf writes the entities' armored public keys, one block each, to a
// file and loads it.
func keyRingOf(t *testing.T, entities ...*openpgp.Entity) *KeyRing {
	t.Helper()
	var data []byte
	for _, e := range entities {
		data = append(data, armoredOf(t, e)...)
	}
	file := filepath.Join(t.TempDir(), "trusted.asc")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := LoadKeyRing(file)
	if err != nil {
		t.Fatalf("LoadKeyRing: %v", err)
	}
	return kr
}

// commitIn makes a real commit in a repository under t.TempDir(), signed
// with key unless it is nil, and reads it back.
func commitIn(t *testing.T, key *openpgp.Entity) *object.Commit {
	t.Helper()
	return commitWith(t, git.CommitOptions{SignKey: key})
}

// sshSignedCommit is commitIn signed with an SSH key, as git with
// gpg.format=ssh signs.
func sshSignedCommit(t *testing.T, s *gittest.SSHSigner) *object.Commit {
	t.Helper()
	return commitWith(t, git.CommitOptions{Signer: s})
}

func commitWith(t *testing.T, opts git.CommitOptions) *object.Commit {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deploy.yaml"), []byte("kind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("deploy.yaml"); err != nil {
		t.Fatal(err)
	}
	who := &object.Signature{Name: "Jane Doe", Email: "jane@example.com", When: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	opts.Author, opts.Committer = who, who
	h, err := wt.Commit("add config\n", &opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func signedCommit(t *testing.T, key *openpgp.Entity) *object.Commit {
	t.Helper()
	return commitIn(t, key)
}

func TestVerifyCommit(t *testing.T) {
	trusted, _ := newTestKey(t, "Trusted")
	second, _ := newTestKey(t, "Second")
	stranger, _ := newTestKey(t, "Stranger")
	kr := keyRingOf(t, trusted)
	several := keyRingOf(t, trusted, second)

	tampered := signedCommit(t, trusted)
	tampered.Message = "add config, and something else\n"

	sshTrusted, sshStranger := gittest.NewSSHSigner(t), gittest.NewSSHSigner(t)
	sshRing, err := ParseKeyRing("allowed_signers", []byte("jane@example.com "+sshTrusted.AuthorizedKey()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := ParseKeyRing("trusted", append(armoredOf(t, trusted), sshTrusted.AuthorizedKey()+"\n"...))
	if err != nil {
		t.Fatal(err)
	}
	sshTampered := sshSignedCommit(t, sshTrusted)
	sshTampered.Message = "add config, and something else\n"
	otherNS := &gittest.SSHSigner{Signer: sshTrusted.Signer, Namespace: "file"}
	garbled := commitIn(t, nil)
	garbled.PGPSignature = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"
	fpTrusted := ssh.FingerprintSHA256(sshTrusted.Signer.PublicKey())
	fpStranger := ssh.FingerprintSHA256(sshStranger.Signer.PublicKey())

	tests := []struct {
		name      string
		commit    *object.Commit
		kr        *KeyRing
		wantKeyID string
		wantErr   []string // substrings; nil = success
	}{
		{"signed by a trusted key", signedCommit(t, trusted), kr, trusted.PrimaryKey.KeyIdString(), nil},
		{"second block of a file with several keys", signedCommit(t, second), several, second.PrimaryKey.KeyIdString(), nil},
		{"first block of a file with several keys", signedCommit(t, trusted), several, trusted.PrimaryKey.KeyIdString(), nil},
		{"unsigned", commitIn(t, nil), kr, "", []string{"by Jane Doe <jane@example.com> is not signed"}},
		{
			"signed by a key not in the ring", signedCommit(t, stranger), several, stranger.PrimaryKey.KeyIdString(),
			[]string{"by Jane Doe <jane@example.com> is signed by key " + stranger.PrimaryKey.KeyIdString() + ", which is not in the trusted key ring"},
		},
		{
			"tampered after signing", tampered, kr, trusted.PrimaryKey.KeyIdString(),
			[]string{"has a signature by key " + trusted.PrimaryKey.KeyIdString() + " that does not verify"},
		},
		{"SSH: signed by a trusted key", sshSignedCommit(t, sshTrusted), sshRing, fpTrusted, nil},
		{"SSH: trusted key in a file with OpenPGP keys", sshSignedCommit(t, sshTrusted), mixed, fpTrusted, nil},
		{"OpenPGP in a file with SSH keys", signedCommit(t, trusted), mixed, trusted.PrimaryKey.KeyIdString(), nil},
		{
			"SSH: a key not in the ring", sshSignedCommit(t, sshStranger), mixed, fpStranger,
			[]string{"is signed by SSH key " + fpStranger + ", which is not in the trusted keys"},
		},
		{"SSH: ring of OpenPGP keys only", sshSignedCommit(t, sshTrusted), kr, fpTrusted, []string{"is signed by SSH key " + fpTrusted + ", which is not in the trusted keys"}},
		{"OpenPGP: ring of SSH keys only", signedCommit(t, trusted), sshRing, trusted.PrimaryKey.KeyIdString(), []string{"the trusted keys are SSH keys only"}},
		{"SSH: tampered after signing", sshTampered, sshRing, fpTrusted, []string{"has a signature by SSH key " + fpTrusted + " that does not verify"}},
		{"SSH: signed for another namespace", sshSignedCommit(t, otherNS), sshRing, fpTrusted, []string{`in namespace "file", not "git"`}},
		{"SSH: unreadable signature", garbled, sshRing, "", []string{"has an unreadable SSH signature"}},
		{"no key ring", signedCommit(t, trusted), nil, "", []string{"cannot be verified: no trusted keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyID, err := VerifyCommit(tt.commit, tt.kr)
			if tt.wantErr == nil {
				if err != nil || keyID != tt.wantKeyID {
					t.Fatalf("VerifyCommit = %q, %v; want %q, nil", keyID, err, tt.wantKeyID)
				}
				return
			}
			var se *SignatureError
			if !errors.As(err, &se) {
				t.Fatalf("VerifyCommit = %q, %v; want a *SignatureError", keyID, err)
			}
			if keyID != "" || se.KeyID != tt.wantKeyID || se.Commit != tt.commit.Hash.String() {
				t.Errorf("keyID %q, SignatureError %+v; want key id %q in the error and commit %s", keyID, se, tt.wantKeyID, tt.commit.Hash)
			}
			msg := err.Error()
			for _, w := range append(tt.wantErr, "commit "+tt.commit.Hash.String()) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
		})
	}
}

// armoredOf is e's armored public key block.
func armoredOf(t testing.TB, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return append(buf.Bytes(), '\n')
}

func TestParseKeyRingSSH(t *testing.T) {
	a, _ := newTestKey(t, "A")
	s1, s2 := gittest.NewSSHSigner(t), gittest.NewSSHSigner(t)
	file := "# OpenPGP, then SSH in both forms\n" + string(armoredOf(t, a)) +
		"\n" + s1.AuthorizedKey() + " jane@laptop\n" +
		`jane@example.com,ops@example.com namespaces="git" ` + s2.AuthorizedKey() + "\n"
	kr, err := ParseKeyRing("trusted", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.PrimaryKey.KeyIdString(), ssh.FingerprintSHA256(s1.Signer.PublicKey()), ssh.FingerprintSHA256(s2.Signer.PublicKey())}
	if got := kr.KeyIDs(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("KeyIDs = %v, want %v", got, want)
	}
	key := s1.AuthorizedKey()
	for _, ok := range []string{
		`namespaces="git" ` + key,
		`jane@example.com namespaces="file,git" ` + key,
		`*@example.com namespaces="*" ` + key + " comment",
	} {
		if _, err := ParseKeyRing("trusted", []byte(ok+"\n")); err != nil {
			t.Errorf("ParseKeyRing(%q) = %v, want it accepted", ok, err)
		}
	}
	errTests := []struct{ name, data, want string }{
		{"not a key", "# keys\n" + s1.AuthorizedKey() + "\nhello world\n", "trusted:3: not an SSH public key"},
		{"namespace without git", `jane@example.com namespaces="file" ` + key + "\n", `trusted:1: option namespaces="file" does not allow namespace "git"`},
		{"valid-before", `jane@example.com valid-before="20200101" ` + key + "\n", `option valid-before="20200101" is not enforced by gitpace`},
		{"cert-authority", `jane@example.com cert-authority ` + key + "\n", "option cert-authority is not enforced by gitpace"},
		{"options as authorized_keys", `cert-authority,namespaces="git" ` + key + "\n", "option cert-authority is not enforced"},
		{"certificate", "jane@example.com ssh-ed25519-cert-v01@openssh.com AAAA\n", "SSH certificates are not supported"},
		{"bad base64", "ssh-ed25519 !!!\n", "ssh-ed25519 key:"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n-----END OPENSSH PRIVATE KEY-----\n", `armored block 1 is a "OPENSSH PRIVATE KEY"`},
		{"only comments", "# nothing\n\n", "trusted: no armored OpenPGP public key or SSH public key found"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeyRing("trusted", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseKeyRing = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseKeyRing(t *testing.T) {
	a, armoredA := newTestKey(t, "A")
	b, armoredB := newTestKey(t, "B")
	kr, err := ParseKeyRing("trusted.asc", append(append([]byte("# trusted keys\n"), armoredA...), armoredB...))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(kr.KeyIDs(), ","), a.PrimaryKey.KeyIdString()+","+b.PrimaryKey.KeyIdString(); got != want {
		t.Errorf("KeyIDs = %s, want %s", got, want)
	}

	var private bytes.Buffer
	w, _ := armor.Encode(&private, openpgp.PrivateKeyType, nil)
	if err := a.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	errTests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "trusted.asc: no armored OpenPGP public key or SSH public key found"},
		{"private key", private.Bytes(), `trusted.asc: armored block 1 is a "PGP PRIVATE KEY BLOCK", want a "PGP PUBLIC KEY BLOCK"`},
		{"private after public", append(armoredA, private.Bytes()...), "trusted.asc: armored block 2 is a"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeyRing("trusted.asc", tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseKeyRing = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := LoadKeyRing(filepath.Join(t.TempDir(), "missing.asc")); err == nil {
		t.Error("LoadKeyRing of a missing file = nil error")
	}
}

func TestSignatureGate(t *testing.T) {
	trusted, _ := newTestKey(t, "Trusted")
	commits := map[string]*object.Commit{}
	for _, c := range []*object.Commit{signedCommit(t, trusted), commitIn(t, nil)} {
		commits[c.Hash.String()] = c
	}
	lookup := func(_ context.Context, hash string) (*object.Commit, error) { return commits[hash], nil }
	g := &SignatureGate{KeyRing: keyRingOf(t, trusted), Commits: lookup}
	for hash, c := range commits {
		err := g.Check(context.Background(), GateInput{App: "a", Commit: hash})
		if c.PGPSignature != "" {
			if err != nil {
				t.Errorf("Check(signed) = %v, want nil", err)
			}
			continue
		}
		var held *Held
		var se *SignatureError
		if !errors.As(err, &held) || held.Gate != "signature" || !held.RetryAt.IsZero() || !errors.As(err, &se) {
			t.Errorf("Check(unsigned) = %v, want *Held by signature wrapping a *SignatureError", err)
		}
	}
	off := &SignatureGate{}
	if err := off.Check(context.Background(), GateInput{Commit: "whatever"}); err != nil {
		t.Errorf("Check without key ring = %v, want nil", err)
	}
	// Every app of a pass asks about the same commit: it is looked up and
	// verified once.
	lookups := 0
	counting := &SignatureGate{KeyRing: g.KeyRing, Commits: func(ctx context.Context, hash string) (*object.Commit, error) {
		lookups++
		return lookup(ctx, hash)
	}}
	for hash := range commits {
		for app := range 3 {
			_ = counting.Check(context.Background(), GateInput{App: fmt.Sprint(app), Commit: hash})
		}
	}
	if lookups != len(commits) {
		t.Errorf("%d lookups for %d commits asked about 3 times each", lookups, len(commits))
	}
}

// TestVerifyCommitMadeByGit verifies a commit that git 2.39 signed with
// ssh-keygen (gpg.format=ssh; `git verify-commit` said Good "git"
// signature), stored raw in testdata/ssh-git with its public key, so the
// payload gitpace verifies is proven to be the one git signs.
func TestVerifyCommitMadeByGit(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "ssh-git", "commit"))
	if err != nil {
		t.Fatal(err)
	}
	decode := func(raw []byte) *object.Commit {
		obj := &plumbing.MemoryObject{}
		obj.SetType(plumbing.CommitObject)
		if _, err := obj.Write(raw); err != nil {
			t.Fatal(err)
		}
		c := &object.Commit{}
		if err := c.Decode(obj); err != nil {
			t.Fatal(err)
		}
		return c
	}
	kr, err := LoadKeyRing(filepath.Join("testdata", "ssh-git", "key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	keyID, err := VerifyCommit(decode(raw), kr)
	if err != nil || keyID != "SHA256:kwoVZXegArWl33/mtbsim0Q9XoYEclrTw2FGGVpR52U" {
		t.Fatalf("VerifyCommit = %q, %v; want the key's fingerprint as ssh-keygen prints it", keyID, err)
	}
	forged := decode(bytes.Replace(raw, []byte("add config"), []byte("add secrets"), 1))
	if _, err := VerifyCommit(forged, kr); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("VerifyCommit(changed message) = %v, want a signature that does not verify", err)
	}
}

// sha1Signer signs git objects with an SSH key through its plain Sign,
// which for RSA is ssh-rsa (SHA-1), as old clients did; sshsig.Sign itself
// refuses to. It builds the PROTOCOL.sshsig blob by hand.
type sha1Signer struct{ ssh.Signer }

func (s sha1Signer) Sign(message io.Reader) ([]byte, error) {
	h := sha512.New()
	if _, err := io.Copy(h, message); err != nil {
		return nil, err
	}
	signed := append([]byte("SSHSIG"), ssh.Marshal(struct {
		Namespace, Reserved, Hash string
		Digest                    []byte
	}{"git", "", "sha512", h.Sum(nil)})...)
	sig, err := s.Signer.Sign(rand.Reader, signed)
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(&sshsig.Signature{Version: 1, PublicKey: s.PublicKey(), Namespace: "git", HashAlgorithm: sshsig.HashSHA512, Signature: sig}), nil
}

// TestSSHRSASHA1Refused: an SSH signature made with RSA and SHA-1 (ssh-rsa)
// is refused, as OpenSSH refuses it; the same key signing with SHA-2
// verifies.
func TestSSHRSASHA1Refused(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := ParseKeyRing("trusted", ssh.MarshalAuthorizedKey(signer.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCommit(sshSignedCommit(t, &gittest.SSHSigner{Signer: signer}), kr); err != nil {
		t.Fatalf("RSA with SHA-2: %v", err)
	}
	c := commitWith(t, git.CommitOptions{Signer: sha1Signer{signer}})
	_, err = VerifyCommit(c, kr)
	// sshsig refuses the format when reading the signature, as OpenSSH does.
	if err == nil || !strings.Contains(err.Error(), `invalid signature format "ssh-rsa"`) {
		t.Fatalf("RSA with SHA-1: %v, want it refused", err)
	}
}
