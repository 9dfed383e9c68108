package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/sources/textenc"
)

// parsed is what one file holds.
type parsed struct {
	objects []*unstructured.Unstructured
	origins []Origin
	bcs     []BCSFile
	errs    []error
}

// parseFile parses one manifest file; file is its repository-relative name.
// The file is first decoded to UTF-8 as kubectl decodes it (see package
// textenc: UTF-8 with or without a byte order mark, UTF-16 with one); a file
// that cannot be decoded yields one ErrEncoding error and nothing else.
// docs, when not nil, answers for YAML documents converted before.
func parseFile(file string, raw []byte, docs *docCache) parsed {
	var p parsed
	data, _, err := textenc.ToUTF8(raw)
	if err != nil {
		var te *textenc.Error
		line := 0
		if errors.As(err, &te) {
			line = te.Line
		}
		p.errs = append(p.errs, &Error{File: file, Line: line, Err: fmt.Errorf("%w: %v", ErrEncoding, err)})
		return p
	}
	if strings.EqualFold(path.Ext(file), ".json") {
		p.parseJSON(file, data)
		return p
	}
	for i, d := range splitYAML(data) {
		p.parseYAMLDoc(file, i, d, docs)
	}
	return p
}

func (p *parsed) parseJSON(file string, data []byte) {
	var probe struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		p.errs = append(p.errs, jsonError(file, data, err))
		return
	}
	if probe.APIVersion == "v4" {
		p.bcs = append(p.bcs, BCSFile{File: file, Kind: probe.Kind, Data: data})
		return
	}
	p.addDocument(file, 0, 1, data, nil)
}

func (p *parsed) parseYAMLDoc(file string, index int, d document, docs *docCache) {
	c := docs.convert(d.data)
	if n := c.docs; n > 1 {
		// splitYAML cuts where the YAML spec puts document markers; this
		// guards against reading only the first of several documents.
		p.errs = append(p.errs, &Error{File: file, Line: d.firstContentLine(),
			Err: fmt.Errorf("%w: %d YAML documents where gitpace found one; put each \"---\" at the start of its own line", ErrSyntax, n)})
		return
	}
	j, err := c.json, c.err
	if err != nil {
		p.errs = append(p.errs, yamlError(file, d.line, err))
		return
	}
	if string(bytes.TrimSpace(j)) == "null" {
		return // only comments or blank
	}
	p.addDocument(file, index, d.firstContentLine(), j, &d)
}

// addDocument decodes one JSON document that started at line, flattens a List
// and validates every object.
// src is the YAML document j was converted from (nil for JSON), to quote
// values YAML typed in a way the author did not mean.
func (p *parsed) addDocument(file string, index, line int, j []byte, src *document) {
	var m map[string]interface{}
	if !bytes.HasPrefix(bytes.TrimSpace(j), []byte("{")) {
		p.errs = append(p.errs, &Error{File: file, Line: line, Err: fmt.Errorf("%w: document is not an object", ErrSyntax)})
		return
	}
	if err := utiljson.Unmarshal(j, &m); err != nil {
		p.errs = append(p.errs, &Error{File: file, Line: line, Err: fmt.Errorf("%w: %v", ErrSyntax, err)})
		return
	}
	doc := &unstructured.Unstructured{Object: m}
	items, isList := m["items"].([]interface{})
	if !isList || !strings.HasSuffix(doc.GetKind(), "List") {
		p.add(file, doc, Origin{File: file, Line: line, Doc: index, Item: -1}, src)
		return
	}
	for i, it := range items {
		obj, ok := it.(map[string]interface{})
		if !ok {
			p.errs = append(p.errs, &Error{File: file, Line: line, Object: objectID(doc),
				Err: fmt.Errorf("%w: items[%d] is not an object", ErrInvalidObject, i)})
			continue
		}
		p.add(file, &unstructured.Unstructured{Object: obj}, Origin{File: file, Line: line, Doc: index, Item: i}, src)
	}
}

// add validates an object and keeps it, or records why not. Errors name
// file and the line in it, or o.Read when set.
func (p *parsed) add(file string, obj *unstructured.Unstructured, o Origin, src *document) {
	at, atLine := file, o.Line
	if o.Read != "" {
		at, atLine = o.Read, 0
	}
	where := ""
	if o.Item >= 0 {
		where = fmt.Sprintf(" (items[%d])", o.Item)
	}
	if probs := checkStringFields(obj.Object); len(probs) > 0 {
		for _, tp := range probs {
			line, msg := atLine, tp.describe(nil)
			if lit, l, ok := src.scalar(o, tp.path); ok {
				line, msg = l, tp.describe(&lit)
			}
			p.errs = append(p.errs, &Error{File: at, Line: line, Object: objectID(obj), Err: fmt.Errorf("%w: %s%s", ErrInvalidObject, msg, where)})
		}
		return
	}
	if err := validate(obj, path.Ext(file)); err != nil {
		p.errs = append(p.errs, &Error{File: at, Line: atLine, Object: objectID(obj), Err: fmt.Errorf("%w%s", err, where)})
		return
	}
	if cp := checkConversion(obj); cp != nil {
		p.errs = append(p.errs, &Error{File: at, Line: src.lineOf(atLine, o, cp.yamlPath()), Object: objectID(obj),
			Err: fmt.Errorf("%w: %s: %s%s", ErrInvalidObject, cp.field(), cp.msg, where)})
		return
	}
	p.objects = append(p.objects, obj)
	p.origins = append(p.origins, o)
}

// scalar returns the scalar at path (yamlScalar) of the object at o in
// the YAML document d, as written, and its line in the file; not ok when
// there is no document (JSON) or no scalar there.
func (d *document) scalar(o Origin, path []string) (lit string, line int, ok bool) {
	if d == nil {
		return "", 0, false
	}
	if o.Item >= 0 {
		path = append([]string{"items", strconv.Itoa(o.Item)}, path...)
	}
	lit, l, ok := yamlScalar(d.data, path)
	return lit, d.line + l - 1, ok
}

// lineOf is the line in the file of the scalar at path of the object at o
// in d, else line.
func (d *document) lineOf(line int, o Origin, path []string) int {
	if _, l, ok := d.scalar(o, path); ok {
		return l
	}
	return line
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlError turns a YAML error for a document starting at docLine into an
// *Error carrying the line in the file.
func yamlError(file string, docLine int, err error) error {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := docLine
	first := true
	msg = yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
		n, _ := strconv.Atoi(yamlLine.FindStringSubmatch(s)[1])
		n += docLine - 1
		if first {
			line, first = n, false
		}
		return "line " + strconv.Itoa(n)
	})
	msg = strings.TrimPrefix(msg, fmt.Sprintf("line %d: ", line))
	return &Error{File: file, Line: line, Err: fmt.Errorf("%w: %s", ErrSyntax, msg)}
}

// jsonError turns an encoding/json error into an *Error with the line of its
// offset.
func jsonError(file string, data []byte, err error) error {
	line := 0
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line = lineAt(data, syn.Offset)
	case errors.As(err, &typ):
		line = lineAt(data, typ.Offset)
	}
	return &Error{File: file, Line: line, Err: fmt.Errorf("%w: %v", ErrSyntax, err)}
}

func lineAt(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}

// document is one YAML document of a file and the file line its data starts
// on (the line after a "---" separator, or the separator's own line when the
// document starts on it).
type document struct {
	line int
	data []byte
}

// firstContentLine is the file line of the document's first line that is not
// blank or a comment: where its object visibly starts.
func (d document) firstContentLine() int {
	for i, l := range bytes.Split(d.data, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return d.line + i
		}
	}
	return d.line
}

// splitYAML splits a multi-document YAML file where the YAML spec (1.2,
// section 9.2) ends a document: at a "---" (directives end) or "..."
// (document end) marker at the start of a line, followed by a space, a tab or
// the line's end. What follows "---" on its line (a comment, or the first
// line of the document itself) stays with the next document; so does
// anything after "...", for the parser to judge. Each document keeps the
// number of the file line it starts on, so that parser line numbers can be
// mapped back to the file.
func splitYAML(data []byte) []document {
	var docs []document
	cur := document{line: 1}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, l := range lines {
		rest, isMarker := marker(l)
		switch {
		case !isMarker:
			cur.data = append(cur.data, l...)
			continue
		case len(bytes.TrimSpace(rest)) == 0 || bytes.TrimSpace(rest)[0] == '#':
			docs = append(docs, cur)
			cur = document{line: i + 2}
		default:
			docs = append(docs, cur)
			cur = document{line: i + 1, data: append([]byte(nil), rest...)}
		}
	}
	return append(docs, cur)
}

// marker reports whether line is a "---" or "..." document marker and
// returns what follows it on the line, leading blanks removed.
func marker(line []byte) ([]byte, bool) {
	if len(line) < 3 || !(bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("..."))) {
		return nil, false
	}
	rest := line[3:]
	if len(rest) > 0 && !bytes.ContainsRune([]byte(" \t\r\n"), rune(rest[0])) {
		return nil, false // "----", "...foo": not a marker
	}
	return bytes.TrimLeft(rest, " \t"), true
}

// docCache keeps the conversion of the YAML documents of recent Loads (how
// many documents textenc finds in the text, and its JSON or error), by the
// document's text: a Load of a revision that changes one file of many
// converts that file's documents alone (YAML parsing is most of the load
// of plain apps). It holds the documents of the last two Loads (rotate).
// A nil *docCache converts every document.
type docCache struct {
	mu        sync.Mutex
	cur, prev map[string]docJSON
}

// docJSON is one YAML document converted: docs is textenc.YAMLDocuments
// of its text; json and err are yaml.YAMLToJSONStrict's (unset when docs
// is more than 1). json is shared: read it only.
type docJSON struct {
	docs int
	json []byte
	err  error
}

func newDocCache() *docCache {
	return &docCache{cur: map[string]docJSON{}, prev: map[string]docJSON{}}
}

// rotate starts a Load: the documents of the Load before the last are
// forgotten unless this one reads them.
func (c *docCache) rotate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prev, c.cur = c.cur, map[string]docJSON{}
}

// convert converts one YAML document's text, or answers from the cache.
func (c *docCache) convert(data []byte) docJSON {
	if c == nil {
		return convertDoc(data)
	}
	key := string(data)
	c.mu.Lock()
	r, ok := c.cur[key]
	if !ok {
		if r, ok = c.prev[key]; ok {
			c.cur[key] = r
		}
	}
	c.mu.Unlock()
	if ok {
		return r
	}
	r = convertDoc(data)
	c.mu.Lock()
	c.cur[key] = r
	c.mu.Unlock()
	return r
}

func convertDoc(data []byte) docJSON {
	if n := textenc.YAMLDocuments(data); n > 1 {
		return docJSON{docs: n}
	}
	j, err := yaml.YAMLToJSONStrict(data)
	return docJSON{docs: 1, json: j, err: err}
}
