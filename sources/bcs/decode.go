package bcs

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// decoder fills Go values from a node tree, strictly: a key that matches no
// field, a key given twice or a value of the wrong JSON type is an error
// naming its path, line and column. Keys match field tags exactly or, failing
// that, case-insensitively, as Go's encoding/json (and so BCS) does: the seed
// spells BCS's "intersectionItem" as "IntersectionItem". null leaves the zero
// value, as encoding/json does.
type decoder struct {
	data []byte
	errs *errList
}

// Paths: each decode call gets the path as spelled in the file and the
// canonical one (BCS's JSON names); the pair is recorded in errs.spelled.

func (d *decoder) pos(off int) position { return positionOf(d.data, off) }

func (d *decoder) typeError(n *node, path, want string) {
	d.errs.addAt(path, d.pos(n.off), "expected %s, got %s", want, n.kind)
}

func (d *decoder) decode(n *node, v reflect.Value, path, canon string) {
	if canon != path {
		d.errs.spelled[canon] = path
	}
	if n.kind == kindNull {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, canon)
	case reflect.Interface:
		if a := toAny(n); a != nil {
			v.Set(reflect.ValueOf(a))
		}
	case reflect.Struct:
		d.object(n, v, path, canon)
	case reflect.Map:
		d.stringMap(n, v, path, canon)
	case reflect.Slice:
		if n.kind != kindArray {
			d.typeError(n, path, "array")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.elems), len(n.elems))
		for i, e := range n.elems {
			d.decode(e, s.Index(i), index(path, i), index(canon, i))
		}
		v.Set(s)
	case reflect.String:
		if n.kind != kindString {
			d.typeError(n, path, "string")
			return
		}
		v.SetString(n.str)
	case reflect.Bool:
		if n.kind != kindBool {
			d.typeError(n, path, "boolean")
			return
		}
		v.SetBool(n.boolean)
	case reflect.Int, reflect.Int32, reflect.Int64:
		if n.kind != kindNumber {
			d.typeError(n, path, "integer")
			return
		}
		i, err := strconv.ParseInt(n.str, 10, v.Type().Bits())
		if err != nil {
			d.errs.addAt(path, d.pos(n.off), "must be an integer that fits in %d bits, got %s", v.Type().Bits(), n.str)
			return
		}
		v.SetInt(i)
	case reflect.Uint32, reflect.Uint64:
		if n.kind != kindNumber {
			d.typeError(n, path, "integer")
			return
		}
		u, err := strconv.ParseUint(n.str, 10, v.Type().Bits())
		if err != nil {
			d.errs.addAt(path, d.pos(n.off), "must be a non-negative integer that fits in %d bits, got %s", v.Type().Bits(), n.str)
			return
		}
		v.SetUint(u)
	case reflect.Float64:
		if n.kind != kindNumber {
			d.typeError(n, path, "number")
			return
		}
		f, err := strconv.ParseFloat(n.str, 64)
		if err != nil {
			d.errs.addAt(path, d.pos(n.off), "must be a number, got %s", n.str)
			return
		}
		v.SetFloat(f)
	default:
		panic("bcs: decoder does not handle " + v.Type().String())
	}
}

// object decodes a JSON object into the struct v.
func (d *decoder) object(n *node, v reflect.Value, path, canon string) {
	if n.kind != kindObject {
		d.typeError(n, path, "object")
		return
	}
	names := jsonNames(v.Type())
	seen := make(map[int]member)
	for _, m := range n.members {
		p := join(path, m.key)
		i := lookupField(names, m.key)
		if i < 0 {
			d.errs.addAt(p, d.pos(m.keyOff), "unknown field %q", m.key)
			continue
		}
		if prev, dup := seen[i]; dup {
			at := d.pos(prev.keyOff)
			d.errs.addAt(p, d.pos(m.keyOff), "duplicate field (%q is already set at %d:%d)", prev.key, at.line, at.col)
			continue
		}
		seen[i] = m
		d.decode(m.val, v.Field(i), p, join(canon, names[i]))
	}
}

// stringMap decodes a JSON object into a map with string keys.
func (d *decoder) stringMap(n *node, v reflect.Value, path, canon string) {
	if n.kind != kindObject {
		d.typeError(n, path, "object")
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.members))
	for _, mem := range n.members {
		p := mapKey(path, mem.key)
		key := reflect.ValueOf(mem.key)
		if m.MapIndex(key).IsValid() {
			d.errs.addAt(p, d.pos(mem.keyOff), "duplicate key")
			continue
		}
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(mem.val, e, p, mapKey(canon, mem.key))
		m.SetMapIndex(key, e)
	}
	v.Set(m)
}

// jsonNames lists the JSON name of each field of t by field index ("" for
// fields without one).
func jsonNames(t reflect.Type) []string {
	names := make([]string, t.NumField())
	for i := range names {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "-" {
			names[i] = name
		}
	}
	return names
}

// lookupField finds key among names: exactly first, then case-insensitively.
func lookupField(names []string, key string) int {
	for i, n := range names {
		if n != "" && n == key {
			return i
		}
	}
	for i, n := range names {
		if n != "" && strings.EqualFold(n, key) {
			return i
		}
	}
	return -1
}

// toAny converts a node to the value encoding/json would give an `any`.
func toAny(n *node) any {
	switch n.kind {
	case kindBool:
		return n.boolean
	case kindNumber:
		return json.Number(n.str)
	case kindString:
		return n.str
	case kindObject:
		m := make(map[string]any, len(n.members))
		for _, mem := range n.members {
			m[mem.key] = toAny(mem.val)
		}
		return m
	case kindArray:
		s := make([]any, len(n.elems))
		for i, e := range n.elems {
			s[i] = toAny(e)
		}
		return s
	}
	return nil
}
