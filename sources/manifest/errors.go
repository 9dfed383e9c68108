package manifest

import (
	"errors"
	"fmt"
	"strings"
)

// Classes of problems, for errors.Is on App.Err.
var (
	// ErrSyntax: a file is not valid YAML or JSON, or a document is not an
	// object.
	ErrSyntax = errors.New("syntax error")
	// ErrEncoding: a file is not text gitpace can decode (see package
	// sources/textenc: UTF-8, or UTF-16 with a byte order mark).
	ErrEncoding = errors.New("encoding error")
	// ErrSymlink: a manifest file is a symlink that leaves the repository,
	// points at nothing, or loops (see sources.Skipped); its target is not
	// read.
	ErrSymlink = errors.New("file not read")
	// ErrInvalidObject: an object lacks apiVersion, kind or metadata.name, or
	// is malformed (a List whose items are not objects, a BCS spec in YAML).
	ErrInvalidObject = errors.New("invalid object")
	// ErrDuplicateObject: two objects of one app share group, kind,
	// namespace and name.
	ErrDuplicateObject = errors.New("duplicate object")
)

// Error is one problem in an app's files.
type Error struct {
	File   string // relative to the repository root
	Line   int    // 1-based line in File; 0 when not known
	Object string // "Kind/namespace/name" (or "Kind/name"), when known
	Err    error
}

// Error reads "file:line: Kind/ns/name: problem".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Object != "" {
		b.WriteString(": " + e.Object)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

// Unwrap returns the problem, wrapping one of the Err* classes above.
func (e *Error) Unwrap() error { return e.Err }

func duplicateErr(first Origin) error {
	return fmt.Errorf("%w: also defined at %s:%d", ErrDuplicateObject, first.File, first.Line)
}
