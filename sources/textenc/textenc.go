// Package textenc turns the bytes of a text file a user committed into
// UTF-8, the way kubectl reads manifests, but strictly.
//
// kubectl wraps every file in golang.org/x/text's
// unicode.BOMOverride(unicode.UTF8.NewDecoder()) (k8s.io/cli-runtime
// pkg/resource/visitor.go, since kubernetes/kubernetes#39008): a UTF-16 byte
// order mark (FF FE little-endian, FE FF big-endian) selects UTF-16, a UTF-8
// byte order mark (EF BB BF) is dropped, anything else is read as UTF-8.
// ToUTF8 decodes the same encodings, but where that reader would replace
// bytes it cannot decode with U+FFFD and go on, ToUTF8 fails, so that a file
// is never read as something other than what its author saved:
//
//   - UTF-8 that is not valid UTF-8 (a Latin-1 file, a truncated character);
//   - UTF-16 of an odd number of bytes, or with an unpaired surrogate;
//   - UTF-32 byte order marks (00 00 FE FF, FF FE 00 00), which kubectl does
//     not read either;
//   - UTF-16 without a byte order mark (recognised by its NUL bytes), which
//     kubectl would misread as UTF-8.
//
// Line ends are left as they are: YAML and JSON parsers read CRLF as LF.
package textenc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
)

// Encoding names the encoding a file was found in.
type Encoding string

// The encodings ToUTF8 reads.
const (
	UTF8    Encoding = "UTF-8"
	UTF8BOM Encoding = "UTF-8 with byte order mark"
	UTF16LE Encoding = "UTF-16LE"
	UTF16BE Encoding = "UTF-16BE"
)

// Error says why a file could not be decoded.
type Error struct {
	// Encoding is what the file claims or looks like (its byte order mark,
	// or UTF-8 when it has none).
	Encoding Encoding
	// Line is the 1-based line of the problem, counted in the decoded text
	// up to it; 0 when the problem is the whole file.
	Line int
	// Offset is the byte offset of the problem in the file as committed.
	Offset int
	// Problem is what is wrong, e.g. "odd number of bytes (1275)".
	Problem string
}

func (e *Error) Error() string {
	return fmt.Sprintf("cannot decode as %s: %s (byte %d)", e.Encoding, e.Problem, e.Offset)
}

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
	bomUTF32LE = []byte{0xFF, 0xFE, 0x00, 0x00}
	bomUTF32BE = []byte{0x00, 0x00, 0xFE, 0xFF}
)

// ToUTF8 returns data as UTF-8 without a byte order mark, and the encoding
// it was found in. Valid UTF-8 without a byte order mark is returned as it
// is (not copied). Errors are *Error.
func ToUTF8(data []byte) ([]byte, Encoding, error) {
	switch {
	case bytes.HasPrefix(data, bomUTF32LE), bytes.HasPrefix(data, bomUTF32BE):
		return nil, "UTF-32", &Error{Encoding: "UTF-32", Problem: "UTF-32 is not supported (kubectl does not read it either); save the file as UTF-8"}
	case bytes.HasPrefix(data, bomUTF8):
		rest := data[len(bomUTF8):]
		if err := checkUTF8(rest, len(bomUTF8), UTF8BOM); err != nil {
			return nil, UTF8BOM, err
		}
		return rest, UTF8BOM, nil
	case bytes.HasPrefix(data, bomUTF16LE):
		out, err := fromUTF16(data[2:], false)
		return out, UTF16LE, err
	case bytes.HasPrefix(data, bomUTF16BE):
		out, err := fromUTF16(data[2:], true)
		return out, UTF16BE, err
	}
	if err := checkUTF8(data, 0, UTF8); err != nil {
		return nil, UTF8, err
	}
	return data, UTF8, nil
}

// checkUTF8 fails on the first byte that is not part of a valid UTF-8
// character; base is data's offset in the file. NUL bytes in every other
// position are reported as UTF-16 without a byte order mark.
func checkUTF8(data []byte, base int, enc Encoding) error {
	if looksUTF16(data) {
		return &Error{Encoding: enc, Offset: base, Line: 1,
			Problem: "NUL bytes between the characters: this looks like UTF-16 without a byte order mark; save it as UTF-8, or as UTF-16 with a byte order mark"}
	}
	if utf8.Valid(data) {
		return nil
	}
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			return &Error{Encoding: enc, Offset: base + off, Line: 1 + bytes.Count(data[:off], []byte("\n")),
				Problem: fmt.Sprintf("invalid byte 0x%02X (not UTF-8; was the file saved as Latin-1 or another code page?)", data[off])}
		}
		off += size
	}
	return nil
}

// looksUTF16 reports whether data, at least 4 bytes long, has a NUL byte in
// every other position of its first bytes: ASCII text in UTF-16.
func looksUTF16(data []byte) bool {
	n := min(len(data), 64) &^ 1
	if n < 4 {
		return false
	}
	for _, first := range []int{0, 1} {
		all := true
		for i := first; i < n; i += 2 {
			if data[i] != 0 || data[i^1] == 0 {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// fromUTF16 decodes UTF-16 (after its 2-byte byte order mark) strictly.
func fromUTF16(data []byte, bigEndian bool) ([]byte, error) {
	enc := UTF16LE
	if bigEndian {
		enc = UTF16BE
	}
	units := make([]uint16, len(data)/2)
	for i := range units {
		if bigEndian {
			units[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		} else {
			units[i] = uint16(data[2*i]) | uint16(data[2*i+1])<<8
		}
	}
	out := make([]byte, 0, len(data)/2+8)
	line := 1
	for i := 0; i < len(units); i++ {
		u := units[i]
		r := rune(u)
		if utf16.IsSurrogate(r) {
			if i+1 < len(units) {
				r = utf16.DecodeRune(r, rune(units[i+1]))
			} else {
				r = utf8.RuneError
			}
			if r == utf8.RuneError {
				return nil, &Error{Encoding: enc, Offset: 2 + 2*i, Line: line,
					Problem: fmt.Sprintf("unpaired surrogate 0x%04X", u)}
			}
			i++
		}
		if r == '\n' {
			line++
		}
		out = utf8.AppendRune(out, r)
	}
	if len(data)%2 != 0 {
		return nil, &Error{Encoding: enc, Offset: 2 + len(data) - 1, Line: line,
			Problem: fmt.Sprintf("odd number of bytes (%d) after the byte order mark: the last character is cut off", len(data))}
	}
	return out, nil
}

// YAMLDocuments counts the documents a YAML parser (go.yaml.in/yaml/v2, the
// one sigs.k8s.io/yaml and so kubectl use) finds in data, which must be
// UTF-8. It returns 0 when data does not parse; the caller's own parse
// reports why. sigs.k8s.io/yaml reads only the first document of its input,
// so a caller that expects one document checks this first, rather than
// silently reading a file in part.
func YAMLDocuments(data []byte) int {
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	n := 0
	for {
		var v interface{}
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return n
			}
			return 0
		}
		n++
	}
}

// ReadYAML decodes data with ToUTF8 and checks that it holds at most one
// YAML document: the reading of a single-document file (gitpace.yaml,
// PROMOTE).
func ReadYAML(data []byte) ([]byte, error) {
	out, _, err := ToUTF8(data)
	if err != nil {
		return nil, err
	}
	if n := YAMLDocuments(out); n > 1 {
		return nil, fmt.Errorf("holds %d YAML documents, want one", n)
	}
	return out, nil
}

// Encode writes UTF-8 text in enc, with the byte order mark enc implies (none
// for UTF8): the inverse of ToUTF8, e.g. for tests that commit a file as an
// editor on Windows saves it. An unknown enc is treated as UTF8.
func Encode(text string, enc Encoding) []byte {
	switch enc {
	case UTF8BOM:
		return append(append([]byte{}, bomUTF8...), text...)
	case UTF16LE, UTF16BE:
		out := append([]byte{}, bomUTF16LE...)
		if enc == UTF16BE {
			out = append([]byte{}, bomUTF16BE...)
		}
		for _, u := range utf16.Encode([]rune(text)) {
			if enc == UTF16BE {
				out = append(out, byte(u>>8), byte(u))
			} else {
				out = append(out, byte(u), byte(u>>8))
			}
		}
		return out
	}
	return []byte(text)
}
