package textenc

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

func encode16(s string, bigEndian bool) []byte {
	if bigEndian {
		return Encode(s, UTF16BE)
	}
	return Encode(s, UTF16LE)
}

func TestToUTF8(t *testing.T) {
	const text = "a: é\r\nb: 😀\n"
	for _, tc := range []struct {
		name string
		in   []byte
		enc  Encoding
	}{
		{"UTF-8", []byte(text), UTF8},
		{"UTF-8 BOM", append([]byte{0xEF, 0xBB, 0xBF}, text...), UTF8BOM},
		{"UTF-16LE", encode16(text, false), UTF16LE},
		{"UTF-16BE", encode16(text, true), UTF16BE},
	} {
		got, enc, err := ToUTF8(tc.in)
		if err != nil || string(got) != text || enc != tc.enc {
			t.Errorf("%s: got %q %s %v", tc.name, got, enc, err)
		}
	}
	for _, tc := range []struct {
		name string
		in   []byte
		line int
	}{
		{"odd UTF-16", append(encode16("a\nb", false), 'x'), 2},
		{"lone high surrogate at end", append(encode16("a\n", false), 0x3D, 0xD8), 2},
		{"low surrogate first", append(encode16("", true), 0xDC, 0x00), 1},
		{"Latin-1", []byte("a\nb: caf\xe9"), 2},
		{"UTF-16 without BOM", encode16("apiVersion: v1", false)[2:], 1},
	} {
		_, _, err := ToUTF8(tc.in)
		var e *Error
		if !errors.As(err, &e) || e.Line != tc.line {
			t.Errorf("%s: got %v, want an *Error on line %d", tc.name, err, tc.line)
		}
	}
}

// FuzzToUTF8: no panic; success yields valid UTF-8 without a byte order
// mark; valid UTF-8 text (no NUL) round-trips through UTF-16 (both byte orders) and a
// UTF-8 byte order mark.
func FuzzToUTF8(f *testing.F) {
	f.Add([]byte("apiVersion: v1\r\n"))
	f.Add(encode16("kind: List\n", false))
	f.Add([]byte{0xFE, 0xFF, 0xD8, 0x3D, 0xDE, 0x00})
	f.Add([]byte{0xEF, 0xBB, 0xBF, 0xC3, 0xA9})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, _, err := ToUTF8(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if !utf8.Valid(out) {
			t.Fatalf("output is not UTF-8: %q", out)
		}
		if !utf8.Valid(data) || bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}) || bytes.IndexByte(data, 0) >= 0 {
			return // not text: NUL after a UTF-16LE BOM reads as a UTF-32 BOM
		}
		for _, in := range [][]byte{encode16(string(data), false), encode16(string(data), true), append([]byte{0xEF, 0xBB, 0xBF}, data...)} {
			got, _, err := ToUTF8(in)
			if err != nil || !bytes.Equal(got, out) {
				t.Fatalf("round trip of %q: got %q, %v", data, got, err)
			}
		}
	})
}
