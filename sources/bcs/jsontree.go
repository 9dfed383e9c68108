package bcs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// node is one JSON value with the byte offset where it starts, so that
// decoding errors can name a line and column.
type node struct {
	kind    nodeKind
	off     int
	str     string // string value, or the literal of a number
	boolean bool
	members []member // objects, in file order
	elems   []*node  // arrays
}

type member struct {
	key    string
	keyOff int
	val    *node
}

type nodeKind int

const (
	kindNull nodeKind = iota
	kindBool
	kindNumber
	kindString
	kindObject
	kindArray
)

func (k nodeKind) String() string {
	return [...]string{"null", "boolean", "number", "string", "object", "array"}[k]
}

type position struct{ line, col int }

// positionOf turns a byte offset into a 1-based line and a 1-based column
// counted in characters.
func positionOf(data []byte, off int) position {
	off = min(max(off, 0), len(data))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	lineStart := bytes.LastIndexByte(data[:off], '\n') + 1
	return position{line: line, col: 1 + utf8.RuneCount(data[lineStart:off])}
}

// parseTree checks the syntax of data and returns its value tree. A syntax
// error is reported with its line and column.
func parseTree(file string, data []byte) (*node, error) {
	var syntax *json.SyntaxError
	if err := json.Unmarshal(data, new(any)); errors.As(err, &syntax) {
		off := int(syntax.Offset) - 1 // Offset counts the offending byte itself
		msg := syntax.Error()
		switch {
		case len(bytes.TrimSpace(data)) == 0:
			off, msg = 0, "empty document"
		case msg == "unexpected end of JSON input":
			off = len(data)
		}
		pos := positionOf(data, off)
		return nil, &FieldError{File: file, Msg: "invalid JSON: " + msg, Line: pos.line, Col: pos.col}
	} else if err != nil {
		return nil, &FieldError{File: file, Msg: "invalid JSON: " + err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := treeParser{data: data, dec: dec}
	return p.value()
}

type treeParser struct {
	data []byte
	dec  *json.Decoder
}

// next returns the next token and the offset where it starts.
func (p *treeParser) next() (json.Token, int, error) {
	off := int(p.dec.InputOffset())
	for off < len(p.data) && isSeparator(p.data[off]) {
		off++
	}
	tok, err := p.dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return tok, off, err
}

func (p *treeParser) value() (*node, error) {
	tok, off, err := p.next()
	if err != nil {
		return nil, err
	}
	return p.build(tok, off)
}

func (p *treeParser) build(tok json.Token, off int) (*node, error) {
	n := &node{off: off}
	switch t := tok.(type) {
	case nil:
		n.kind = kindNull
	case bool:
		n.kind, n.boolean = kindBool, t
	case json.Number:
		n.kind, n.str = kindNumber, t.String()
	case string:
		n.kind, n.str = kindString, t
	case json.Delim:
		switch t {
		case '{':
			n.kind = kindObject
			for p.dec.More() {
				key, keyOff, err := p.next()
				if err != nil {
					return nil, err
				}
				val, err := p.value()
				if err != nil {
					return nil, err
				}
				n.members = append(n.members, member{key: key.(string), keyOff: keyOff, val: val})
			}
		case '[':
			n.kind = kindArray
			for p.dec.More() {
				val, err := p.value()
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, val)
			}
		default:
			return nil, fmt.Errorf("unexpected %q", t)
		}
		if _, _, err := p.next(); err != nil { // the closing delimiter
			return nil, err
		}
	}
	return n, nil
}

// isSeparator reports bytes that may come between two tokens.
func isSeparator(b byte) bool {
	switch b {
	case ' ', '\t', '\r', '\n', ',', ':':
		return true
	}
	return false
}
