package policies

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// KeyRing holds the trusted OpenPGP public keys that may sign revisions.
type KeyRing struct {
	entities openpgp.EntityList
	// armored is every key in one armored block, the form Commit.Verify
	// reads (it decodes only the first block of its input).
	armored string
}

// LoadKeyRing reads a file of armored OpenPGP public keys, one or more
// blocks ("gpg --export --armor KEYID... > trusted.asc", or several such
// exports concatenated).
func LoadKeyRing(file string) (*KeyRing, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load key ring: %w", err)
	}
	return ParseKeyRing(file, data)
}

// ParseKeyRing reads armored OpenPGP public keys from data; file names the
// source in errors. Private key blocks are refused.
func ParseKeyRing(file string, data []byte) (*KeyRing, error) {
	var el openpgp.EntityList
	for n, chunk := range armoredBlocks(data) {
		block, err := armor.Decode(bytes.NewReader(chunk))
		if err != nil {
			return nil, fmt.Errorf("%s: armored block %d: %w", file, n+1, err)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("%s: armored block %d is a %q, want a %q (export with gpg --export --armor)", file, n+1, block.Type, openpgp.PublicKeyType)
		}
		keys, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: armored block %d: %w", file, n+1, err)
		}
		el = append(el, keys...)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("%s: no armored OpenPGP public key found", file)
	}
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
	return &KeyRing{entities: el, armored: buf.String()}, nil
}

// armoredBlocks splits data before each line that starts an armored block.
// armor.Decode reads through a buffer, so it cannot be called twice on one
// reader to get the blocks one after another.
func armoredBlocks(data []byte) [][]byte {
	const begin = "-----BEGIN "
	var starts []int
	for off := 0; off < len(data); {
		if bytes.HasPrefix(data[off:], []byte(begin)) {
			starts = append(starts, off)
		}
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	blocks := make([][]byte, len(starts))
	for i, start := range starts {
		end := len(data)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		blocks[i] = data[start:end]
	}
	return blocks
}

// KeyIDs lists the long (16 hex digit) ids of the primary keys.
func (k *KeyRing) KeyIDs() []string {
	ids := make([]string, len(k.entities))
	for i, e := range k.entities {
		ids[i] = e.PrimaryKey.KeyIdString()
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

// VerifyCommit checks that c carries one OpenPGP signature that a key of kr
// makes and that matches the commit's content. It returns the signing key's
// id, or a *SignatureError naming the commit, its committer and (when there
// is a signature) the key id. It uses go-git's Commit.Verify; no gpg
// binary. SSH and X.509 signatures are reported as unsupported: go-git v5
// verifies OpenPGP only. Key expiry and revocation are judged by go-crypto
// against the wall clock.
func VerifyCommit(c *object.Commit, kr *KeyRing) (keyID string, err error) {
	fail := func(keyID, problem string, err error) (string, error) {
		return "", &SignatureError{
			Commit:    c.Hash.String(),
			Committer: fmt.Sprintf("%s <%s>", c.Committer.Name, c.Committer.Email),
			KeyID:     keyID, Problem: problem, Err: err,
		}
	}
	if kr == nil || len(kr.entities) == 0 {
		return fail("", "cannot be verified: no trusted keys", nil)
	}
	sig := strings.TrimSpace(c.PGPSignature)
	switch {
	case sig == "":
		return fail("", "is not signed", nil)
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
		return fail("", "is signed with an SSH key; gitpace verifies OpenPGP signatures only", nil)
	case strings.HasPrefix(sig, "-----BEGIN SIGNED MESSAGE-----"), strings.HasPrefix(sig, "-----BEGIN CERTIFICATE-----"):
		return fail("", "is signed with X.509 (gpgsm); gitpace verifies OpenPGP signatures only", nil)
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
}

// Name returns "signature".
func (g *SignatureGate) Name() string { return "signature" }

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
	c, err := g.Commits(ctx, in.Commit)
	if err != nil {
		return fmt.Errorf("look up commit %s: %w", in.Commit, err)
	}
	if _, err := VerifyCommit(c, g.KeyRing); err != nil {
		return &Held{Gate: g.Name(), Reason: err.Error(), Err: err}
	}
	return nil
}
