package bcs

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpandPattern(t *testing.T) {
	cases := []struct {
		pattern string
		want    []string
		err     string
	}{
		{pattern: "^slave[3-5]$", want: []string{"slave3", "slave4", "slave5"}},
		{pattern: "^mesos-slave-1$", want: []string{"mesos-slave-1"}},
		{pattern: "^(a|b)c?$", want: []string{"a", "ac", "b", "bc"}},
		{pattern: "^a$|^b$", want: []string{"a", "b"}},
		{pattern: "^x{1,3}$", want: []string{"x", "xx", "xxx"}},
		{pattern: "^(?i)ab$", want: []string{"AB", "Ab", "aB", "ab"}},
		{pattern: "^node-(0[1-9]|1[0-2])$", want: []string{"node-01", "node-02", "node-03", "node-04", "node-05", "node-06", "node-07", "node-08", "node-09", "node-10", "node-11", "node-12"}},
		{pattern: "slave[1-2]", err: "unanchored"},
		{pattern: "slave1", err: "unanchored"},
		{pattern: "^slave1", err: "unanchored"},
		{pattern: `^a\$`, err: "unanchored"},
		{pattern: "^a$|b$", err: "anchored at both ends"},
		{pattern: "^slave-[0-9]+$", err: "unbounded repetition"},
		{pattern: "^slave.$", err: `"." matches any character`},
		{pattern: "^[a-z]{2}$", err: "more than 64 values"},
		{pattern: "^[a$", err: "invalid regexp"},
	}
	for _, tc := range cases {
		got, err := expandPattern(tc.pattern)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expandPattern(%q) = %q, %v; want an error containing %q", tc.pattern, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("expandPattern(%q): %v", tc.pattern, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("expandPattern(%q) mismatch (-want +got):\n%s", tc.pattern, diff)
		}
	}
}
