package bcs

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one problem found in a BCS manifest. Path is the JSON path
// of the offending value as spelled in the file ("spec.template.spec.containers[0].image");
// it is empty for errors about the document as a whole (a JSON syntax error).
// Line and Col (1-based, columns count characters) are set for errors found
// while decoding (syntax, wrong type, unknown or duplicate field) and are 0
// for errors found by validation and mapping.
type FieldError struct {
	File string
	Path string
	Msg  string
	Line int
	Col  int
}

// Error formats the error as "file[:line:col]: [path: ]msg", e.g.
// `apps/test/test.json: spec.strategy.rollingupdate.rollingOrder: must be "CreateFirst" or "DeleteFirst", got "Foo"`.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// FieldErrors returns every *FieldError inside err, in order. Parse returns
// several problems at once as an errors.Join of *FieldError; this unpacks them.
func FieldErrors(err error) []*FieldError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*FieldError
		for _, e := range j.Unwrap() {
			out = append(out, FieldErrors(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return nil
}

// errList collects FieldErrors for one file. Validation code names fields
// by their BCS JSON names ("constraint.intersectionItem[0].unionData[0].operate");
// spelled maps those canonical paths to the keys as written in the file
// ("constraint.IntersectionItem[0]..."), so messages quote the file.
type errList struct {
	file    string
	spelled map[string]string
	errs    []error
}

func (l *errList) add(path, format string, args ...any) {
	l.errs = append(l.errs, &FieldError{File: l.file, Path: l.spell(path), Msg: fmt.Sprintf(format, args...)})
}

func (l *errList) addAt(path string, pos position, format string, args ...any) {
	l.errs = append(l.errs, &FieldError{File: l.file, Path: path, Msg: fmt.Sprintf(format, args...), Line: pos.line, Col: pos.col})
}

// spell rewrites a canonical path with the file's spelling of its longest
// prefix present in the file.
func (l *errList) spell(path string) string {
	for prefix := path; prefix != ""; prefix = parent(prefix) {
		if s, ok := l.spelled[prefix]; ok {
			return s + path[len(prefix):]
		}
	}
	return path
}

// parent drops the last ".key" or "[i]" of a path.
func parent(path string) string {
	if strings.HasSuffix(path, `"]`) {
		if i := strings.LastIndex(path, `["`); i >= 0 {
			return path[:i]
		}
	}
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func (l *errList) err() error { return errors.Join(l.errs...) }

// join builds child paths: join("spec", "instance") = "spec.instance".
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// mapKey is the path of a map entry: labels.app, or labels["a.b/c"] when the
// key would be ambiguous in a dotted path.
func mapKey(path, key string) string {
	if key == "" || strings.ContainsAny(key, `.[]"/ `) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	return join(path, key)
}
