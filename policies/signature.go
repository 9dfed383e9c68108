package policies

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/gitpace/gitpace/sources/textenc"
)

// KeyRing holds the trusted public keys that may sign revisions: OpenPGP
// keys and SSH keys.
type KeyRing struct {
	entities openpgp.EntityList
	// armored is every OpenPGP key in one armored block, the form
	// Commit.Verify reads (it decodes only the first block of its input).
	armored string
	ssh     []ssh.PublicKey
}

// LoadKeyRing reads a file of trusted keys: armored OpenPGP public keys, one
// or more blocks ("gpg --export --armor KEYID... > trusted.asc", or several
// such exports concatenated), and SSH public keys, one per line outside the
// armored blocks, in authorized_keys form ("ssh-ed25519 AAAA... comment") or
// git's allowed_signers form ("jane@example.com ssh-ed25519 AAAA...").
// Blank lines and lines starting with # are ignored.
func LoadKeyRing(file string) (*KeyRing, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load key ring: %w", err)
	}
	return ParseKeyRing(file, data)
}

// ParseKeyRing reads trusted keys from data in LoadKeyRing's format; file
// names the source in errors, with the line of a bad SSH key. Private keys
// are refused. data may be UTF-8 with or without a byte order mark or UTF-16
// with one (package textenc), as editors on Windows save it.
func ParseKeyRing(file string, data []byte) (*KeyRing, error) {
	data, _, err := textenc.ToUTF8(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	kr := &KeyRing{}
	var el openpgp.EntityList
	blocks, sshLines := splitKeyFile(data)
	for n, chunk := range blocks {
		first, _, _ := strings.Cut(string(chunk), "\n")
		if typ := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(first), "-----BEGIN "), "-----"); typ != openpgp.PublicKeyType {
			return nil, fmt.Errorf("%s: armored block %d is a %q, want a %q (export with gpg --export --armor) or an SSH public key line", file, n+1, typ, openpgp.PublicKeyType)
		}
		block, err := armor.Decode(bytes.NewReader(chunk))
		if err != nil {
			return nil, fmt.Errorf("%s: armored block %d: %w", file, n+1, err)
		}
		keys, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: armored block %d: %w", file, n+1, err)
		}
		el = append(el, keys...)
	}
	for _, l := range sshLines {
		pub, err := parseSSHKeyLine(l.text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, l.n, err)
		}
		kr.ssh = append(kr.ssh, pub)
	}
	if len(el) == 0 && len(kr.ssh) == 0 {
		return nil, fmt.Errorf("%s: no armored OpenPGP public key or SSH public key found", file)
	}
	if len(el) > 0 {
		var buf bytes.Buffer
		w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
		if err != nil {
			return nil, err
		}
		for _, e := range el {
			if err := e.Serialize(w); err != nil {
				return nil, fmt.Errorf("%s: key %s: %w", file, e.PrimaryKey.KeyIdString(), err)
			}
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		kr.entities, kr.armored = el, buf.String()
	}
	return kr, nil
}

type keyLine struct {
	n    int // 1-based line number
	text string
}

// splitKeyFile returns the armored blocks of data (BEGIN to END line) and
// its other lines that are neither blank nor comments. armor.Decode reads
// through a buffer, so it cannot be called twice on one reader to get the
// blocks one after another.
func splitKeyFile(data []byte) (blocks [][]byte, other []keyLine) {
	var block []byte
	inBlock := false
	for n, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "-----BEGIN "):
			if inBlock { // an unterminated block: let armor.Decode say so
				blocks = append(blocks, block)
			}
			block, inBlock = []byte(line), true
		case inBlock:
			block = append(block, line...)
			if strings.HasPrefix(trimmed, "-----END ") {
				blocks, inBlock = append(blocks, block), false
			}
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		default:
			other = append(other, keyLine{n + 1, trimmed})
		}
	}
	if inBlock {
		blocks = append(blocks, block)
	}
	return blocks, other
}

// parseSSHKeyLine reads one SSH public key line: "keytype base64
// [comment]", optionally after options (authorized_keys form) or after
// principals and options (git's allowed_signers form, "principals [options]
// keytype base64 [comment]"). The only option honoured is namespaces=, which
// must allow "git"; any other option (cert-authority, valid-after,
// valid-before, ...) is an error, since gitpace would not enforce it, and
// so are certificates.
func parseSSHKeyLine(line string) (ssh.PublicKey, error) {
	if strings.Contains(line, "PRIVATE KEY") {
		return nil, errors.New("a private key; give the public key (the .pub file)")
	}
	tokens := splitQuoted(line)
	at := -1
	for i, tok := range tokens {
		if strings.HasSuffix(tok, "-cert-v01@openssh.com") {
			return nil, fmt.Errorf("%s: SSH certificates are not supported; list the signing keys themselves", tok)
		}
		if sshKeyTypes[tok] {
			at = i
			break
		}
	}
	if at < 0 {
		return nil, errors.New("not an SSH public key line (no key type such as ssh-ed25519 found)")
	}
	pub, err := ssh.ParsePublicKey(mustBase64(tokens, at+1))
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", tokens[at], err)
	}
	var options []string
	switch at {
	case 0: // a bare key
	case 1: // options (authorized_keys) or principals (allowed_signers)
		if looksLikeOptions(tokens[0]) {
			options = splitOptions(tokens[0])
		}
	case 2: // principals, options
		options = splitOptions(tokens[1])
	default:
		return nil, fmt.Errorf("unexpected %q before the key", strings.Join(tokens[2:at], " "))
	}
	for _, opt := range options {
		name, value, _ := strings.Cut(opt, "=")
		switch strings.ToLower(name) {
		case "namespaces":
			allowed := false
			for _, ns := range strings.Split(strings.Trim(value, `"`), ",") {
				allowed = allowed || ns == sshNamespace || ns == "*"
			}
			if !allowed {
				return nil, fmt.Errorf("option %s does not allow namespace %q, in which git signs commits", opt, sshNamespace)
			}
		default:
			return nil, fmt.Errorf("option %s is not enforced by gitpace; remove it, or the key", opt)
		}
	}
	return pub, nil
}

// sshKeyTypes are the public key algorithms of SSH signing keys.
var sshKeyTypes = map[string]bool{
	ssh.KeyAlgoED25519: true, ssh.KeyAlgoRSA: true, ssh.KeyAlgoECDSA256: true, ssh.KeyAlgoECDSA384: true,
	ssh.KeyAlgoECDSA521: true, ssh.KeyAlgoSKED25519: true, ssh.KeyAlgoSKECDSA256: true,
}

// mustBase64 decodes tokens[i], or returns nil (which ParsePublicKey refuses).
func mustBase64(tokens []string, i int) []byte {
	if i >= len(tokens) {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(tokens[i])
	if err != nil {
		return nil
	}
	return b
}

// looksLikeOptions tells an authorized_keys options field from an
// allowed_signers principals field (e-mail addresses or patterns).
func looksLikeOptions(tok string) bool {
	for _, opt := range splitOptions(tok) {
		name, _, _ := strings.Cut(opt, "=")
		switch strings.ToLower(name) {
		case "namespaces", "cert-authority", "valid-after", "valid-before", "command", "from", "restrict",
			"no-pty", "no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding", "no-user-rc",
			"permitopen", "permitlisten", "environment", "principals", "tunnel", "expiry-time", "no-touch-required", "verify-required":
			return true
		}
	}
	return false
}

// splitQuoted splits s at spaces outside double quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case (r == ' ' || r == '\t') && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// splitOptions splits a comma-separated option list outside double quotes.
func splitOptions(s string) []string {
	var out []string
	start, quoted := 0, false
	for i, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// KeyIDs lists the long (16 hex digit) ids of the OpenPGP primary keys,
// then the SHA256 fingerprints of the SSH keys (as ssh-keygen -l prints).
func (k *KeyRing) KeyIDs() []string {
	ids := make([]string, 0, len(k.entities)+len(k.ssh))
	for _, e := range k.entities {
		ids = append(ids, e.PrimaryKey.KeyIdString())
	}
	for _, pub := range k.ssh {
		ids = append(ids, ssh.FingerprintSHA256(pub))
	}
	return ids
}

// SignatureError says why a commit's signature is not accepted.
type SignatureError struct {
	Commit    string // full hash
	Committer string // "Name <email>"
	KeyID     string // id of the signing key, "" when unsigned or unreadable
	// Problem is the sentence after "commit <hash> by <committer>".
	Problem string
	Err     error // the verifier's error, if any
}

// Error implements error, e.g. commit 3f2a… by Jane <jane@example.com> is
// signed by key 0123456789ABCDEF, which is not in the trusted key ring.
func (e *SignatureError) Error() string {
	msg := fmt.Sprintf("commit %s by %s %s", e.Commit, e.Committer, e.Problem)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the verifier's error.
func (e *SignatureError) Unwrap() error { return e.Err }

// VerifyCommit checks that c carries one signature that a key of kr makes
// and that matches the commit's content. It returns the signing key's id (an
// OpenPGP long key id, or an SSH key's SHA256 fingerprint), or a
// *SignatureError naming the commit, its committer and (when there is a
// signature) the key. OpenPGP signatures are checked with go-git's
// Commit.Verify, SSH signatures (git's gpg.format=ssh, namespace "git") with
// github.com/hiddeco/sshsig; no gpg or ssh-keygen binary. X.509 signatures
// are reported as unsupported. OpenPGP key expiry and revocation are judged
// by go-crypto against the wall clock.
func VerifyCommit(c *object.Commit, kr *KeyRing) (keyID string, err error) {
	fail := func(keyID, problem string, err error) (string, error) {
		return "", &SignatureError{
			Commit:    c.Hash.String(),
			Committer: fmt.Sprintf("%s <%s>", c.Committer.Name, c.Committer.Email),
			KeyID:     keyID, Problem: problem, Err: err,
		}
	}
	if kr == nil || (len(kr.entities) == 0 && len(kr.ssh) == 0) {
		return fail("", "cannot be verified: no trusted keys", nil)
	}
	sig := strings.TrimSpace(c.PGPSignature)
	switch {
	case sig == "":
		return fail("", "is not signed", nil)
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
		return verifySSH(c, sig, kr, fail)
	case strings.HasPrefix(sig, "-----BEGIN SIGNED MESSAGE-----"), strings.HasPrefix(sig, "-----BEGIN CERTIFICATE-----"):
		return fail("", "is signed with X.509 (gpgsm); gitpace verifies OpenPGP and SSH signatures only", nil)
	}
	if len(kr.entities) == 0 {
		id, _ := issuerKeyID(sig)
		return fail(id, fmt.Sprintf("is signed by OpenPGP key %s; the trusted keys are SSH keys only", id), nil)
	}
	keyID, err = issuerKeyID(sig)
	if err != nil {
		return fail("", "has an unreadable signature", err)
	}
	if _, err := c.Verify(kr.armored); err != nil {
		switch {
		case errors.Is(err, pgperrors.ErrUnknownIssuer):
			return fail(keyID, fmt.Sprintf("is signed by key %s, which is not in the trusted key ring", keyID), nil)
		case errors.Is(err, object.ErrMultipleSignatures):
			return fail(keyID, "carries several signatures", nil)
		default:
			return fail(keyID, fmt.Sprintf("has a signature by key %s that does not verify (content changed after signing, or key expired or revoked)", keyID), err)
		}
	}
	return keyID, nil
}

// sshNamespace is the namespace git signs commits in (ssh-keygen -Y sign -n git).
const sshNamespace = "git"

// verifySSH checks an SSH signature (PROTOCOL.sshsig) over the commit as git
// signs it: the encoded commit without its gpgsig header.
func verifySSH(c *object.Commit, armored string, kr *KeyRing, fail func(keyID, problem string, err error) (string, error)) (string, error) {
	sig, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return fail("", "has an unreadable SSH signature", err)
	}
	keyID := ssh.FingerprintSHA256(sig.PublicKey)
	var trusted ssh.PublicKey
	for _, pub := range kr.ssh {
		if bytes.Equal(pub.Marshal(), sig.PublicKey.Marshal()) {
			trusted = pub
			break
		}
	}
	if trusted == nil {
		return fail(keyID, fmt.Sprintf("is signed by SSH key %s, which is not in the trusted keys", keyID), nil)
	}
	if sig.Namespace != sshNamespace {
		return fail(keyID, fmt.Sprintf("has an SSH signature by key %s in namespace %q, not %q", keyID, sig.Namespace, sshNamespace), nil)
	}
	encoded := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(encoded); err != nil {
		return fail(keyID, "cannot be encoded for verification", err)
	}
	r, err := encoded.Reader()
	if err != nil {
		return fail(keyID, "cannot be encoded for verification", err)
	}
	defer r.Close()
	if err := sshsig.Verify(r, sig, trusted, sig.HashAlgorithm, sshNamespace); err != nil {
		return fail(keyID, fmt.Sprintf("has a signature by SSH key %s that does not verify (content changed after signing)", keyID), err)
	}
	return keyID, nil
}

// issuerKeyID reads the id of the key that made an armored OpenPGP signature.
func issuerKeyID(armored string) (string, error) {
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return "", err
	}
	p, err := packet.NewReader(block.Body).Next()
	if err != nil {
		return "", err
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return "", fmt.Errorf("first packet is a %T, not a signature", p)
	}
	switch {
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *sig.IssuerKeyId), nil
	case len(sig.IssuerFingerprint) > 0:
		return fmt.Sprintf("%X", sig.IssuerFingerprint), nil
	default:
		return "", errors.New("signature names no issuer key")
	}
}

// CommitLookup returns the commit object with the given full hash, e.g.
// a go-git Repository's CommitObject.
type CommitLookup func(ctx context.Context, hash string) (*object.Commit, error)

// SignatureGate holds revisions whose commit is not signed by a trusted
// key. With a nil KeyRing it lets everything pass (verification off).
type SignatureGate struct {
	KeyRing *KeyRing
	Commits CommitLookup

	mu       sync.Mutex
	verdicts map[string]error // by commit: every app of a pass asks once
}

// Name returns "signature".
func (g *SignatureGate) Name() string { return GateSignature }

// Check verifies in.Commit. A bad signature is a *Held (until a new
// revision) whose Err is the *SignatureError; a failed lookup is a plain
// error.
func (g *SignatureGate) Check(ctx context.Context, in GateInput) error {
	if g.KeyRing == nil {
		return nil
	}
	if g.Commits == nil {
		return errors.New("no commit lookup configured")
	}
	g.mu.Lock()
	verdict, ok := g.verdicts[in.Commit]
	g.mu.Unlock()
	if !ok {
		c, err := g.Commits(ctx, in.Commit)
		if err != nil {
			return fmt.Errorf("look up commit %s: %w", in.Commit, err) // not kept: may be transient
		}
		_, verdict = VerifyCommit(c, g.KeyRing)
		g.mu.Lock()
		if g.verdicts == nil {
			g.verdicts = map[string]error{}
		}
		g.verdicts[in.Commit] = verdict
		g.mu.Unlock()
	}
	if verdict != nil {
		return &Held{Gate: g.Name(), Reason: verdict.Error(), Err: verdict}
	}
	return nil
}
