package plan

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errStale says that a unified diff does not apply to the text it was made
// from: the live object changed after the diff was taken.
var errStale = errors.New("the diff does not match the live object (it changed meanwhile)")

// applyUnifiedDiff applies a unified diff, as appliers.UnifiedDiff renders
// one (difflib: "@@ -a,b +c,d @@" hunks, lines prefixed by ' ', '-' or '+'),
// to the lines of its "from" side and returns the lines of its "to" side.
// Context and removed lines must match from, else errStale. Only
// Deployment diffs are applied: a Secret's diff holds masks, not values
// (appliers.MaskSecrets), and does not apply to the live Secret.
func applyUnifiedDiff(from []string, diff string) ([]string, error) {
	lines := strings.Split(diff, "\n")
	var out []string
	pos := 0 // next line of from to copy
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "@@ ") {
			continue
		}
		header := lines[i]
		start, oldN, newN, err := parseHunkHeader(header)
		if err != nil {
			return nil, err
		}
		if start < pos || start > len(from) {
			return nil, fmt.Errorf("%w: hunk %q out of order", errStale, header)
		}
		out = append(out, from[pos:start]...)
		pos = start
		for oldN > 0 || newN > 0 {
			i++
			if i >= len(lines) {
				return nil, fmt.Errorf("unified diff: hunk %q is cut short", header)
			}
			line := lines[i]
			op, text := " ", "" // an empty line: the trailing newline was trimmed
			if line != "" {
				op, text = line[:1], line[1:]
			}
			switch op {
			case " ", "-":
				if pos >= len(from) || from[pos] != text {
					return nil, errStale
				}
				pos++
				oldN--
				if op == " " {
					out = append(out, text)
					newN--
				}
			case "+":
				out = append(out, text)
				newN--
			default:
				return nil, fmt.Errorf("unified diff: unexpected line %q", line)
			}
		}
	}
	return append(out, from[pos:]...), nil
}

// parseHunkHeader reads "@@ -a,b +c,d @@" and returns the 0-based index in
// the from side where the hunk starts and its line counts. A count of 1 may
// be left out ("-a"); with a count of 0, a is the line before the hunk.
func parseHunkHeader(h string) (start, oldN, newN int, err error) {
	f := strings.Fields(h)
	if len(f) < 4 || f[3] != "@@" || !strings.HasPrefix(f[1], "-") || !strings.HasPrefix(f[2], "+") {
		return 0, 0, 0, fmt.Errorf("unified diff: bad hunk header %q", h)
	}
	a, oldN, err1 := parseRange(f[1][1:])
	_, newN, err2 := parseRange(f[2][1:])
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, 0, fmt.Errorf("unified diff: bad hunk header %q: %w", h, err)
	}
	if oldN == 0 {
		return a, oldN, newN, nil
	}
	return a - 1, oldN, newN, nil
}

func parseRange(s string) (start, n int, err error) {
	first, count, found := strings.Cut(s, ",")
	if start, err = strconv.Atoi(first); err != nil {
		return 0, 0, err
	}
	n = 1
	if found {
		if n, err = strconv.Atoi(count); err != nil {
			return 0, 0, err
		}
	}
	return start, n, nil
}
