package bcs

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
)

// maxPatternValues caps how many values one LIKE/UNLIKE pattern may expand to.
const maxPatternValues = 64

// Markers standing for ^ and $ while enumerating a language.
const (
	markBegin = "\x00"
	markEnd   = "\x01"
)

// expandPattern returns every attribute value a BCS LIKE pattern matches,
// when that set is finite.
//
// BCS matches a value v against pattern p when fnmatch(p, v) or
// regexp(p).MatchString(v): the regexp is unanchored, so "slave[1-2]" also
// matches "myslave10". Only a pattern anchored as "^...$" whose language is
// finite (literals, classes, alternation, ?, bounded repeats) has an exact
// equivalent in a node-affinity value list. For such a pattern the fnmatch
// branch adds nothing: it would need a value starting with a literal '^',
// which no label value has.
func expandPattern(p string) ([]string, error) {
	if !strings.HasPrefix(p, "^") || !strings.HasSuffix(p, "$") || strings.HasSuffix(p, `\$`) {
		return nil, errors.New(`BCS matches it as an unanchored regexp (anywhere in the value); anchor it as "^...$"`)
	}
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("invalid regexp: %v", err)
	}
	words, err := language(re.Simplify())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range words {
		inner, ok := strings.CutPrefix(w, markBegin)
		if ok {
			inner, ok = strings.CutSuffix(inner, markEnd)
		}
		if !ok || strings.ContainsAny(inner, markBegin+markEnd) {
			return nil, errors.New(`every alternative must be anchored at both ends ("^...$")`)
		}
		out = append(out, inner)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, errors.New("it matches no value")
	}
	return out, nil
}

// language enumerates the strings re matches, with markBegin/markEnd for
// anchors, failing when there are more than maxPatternValues.
func language(re *syntax.Regexp) ([]string, error) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, nil
	case syntax.OpBeginText, syntax.OpBeginLine:
		return []string{markBegin}, nil
	case syntax.OpEndText, syntax.OpEndLine:
		return []string{markEnd}, nil
	case syntax.OpLiteral:
		words := []string{""}
		for _, r := range re.Rune {
			alts := []string{string(r)}
			if re.Flags&syntax.FoldCase != 0 {
				alts = foldings(r)
			}
			var err error
			if words, err = product(words, alts); err != nil {
				return nil, err
			}
		}
		return words, nil
	case syntax.OpCharClass:
		var words []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(words) == maxPatternValues {
					return nil, tooMany()
				}
				words = append(words, string(r))
			}
		}
		return words, nil
	case syntax.OpCapture:
		return language(re.Sub[0])
	case syntax.OpQuest:
		sub, err := language(re.Sub[0])
		if err != nil {
			return nil, err
		}
		return union([]string{""}, sub)
	case syntax.OpRepeat:
		if re.Max < 0 {
			return nil, errors.New("it has an unbounded repetition")
		}
		sub, err := language(re.Sub[0])
		if err != nil {
			return nil, err
		}
		var words []string
		power := []string{""}
		for k := 0; k <= re.Max; k++ {
			if k >= re.Min {
				if words, err = union(words, power); err != nil {
					return nil, err
				}
			}
			if power, err = product(power, sub); err != nil {
				return nil, err
			}
		}
		return words, nil
	case syntax.OpConcat:
		words := []string{""}
		for _, sub := range re.Sub {
			l, err := language(sub)
			if err != nil {
				return nil, err
			}
			if words, err = product(words, l); err != nil {
				return nil, err
			}
		}
		return words, nil
	case syntax.OpAlternate:
		var words []string
		for _, sub := range re.Sub {
			l, err := language(sub)
			if err != nil {
				return nil, err
			}
			if words, err = union(words, l); err != nil {
				return nil, err
			}
		}
		return words, nil
	case syntax.OpStar, syntax.OpPlus:
		return nil, errors.New("it has an unbounded repetition")
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return nil, errors.New(`"." matches any character`)
	default:
		return nil, fmt.Errorf("%s cannot be expanded", re)
	}
}

func product(a, b []string) ([]string, error) {
	if len(a)*len(b) > maxPatternValues {
		return nil, tooMany()
	}
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out, nil
}

func union(a, b []string) ([]string, error) {
	out := slices.Clone(a)
	for _, w := range b {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	if len(out) > maxPatternValues {
		return nil, tooMany()
	}
	return out, nil
}

func foldings(r rune) []string {
	out := []string{string(r)}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		out = append(out, string(f))
	}
	return out
}

func tooMany() error {
	return fmt.Errorf("it matches more than %d values", maxPatternValues)
}
