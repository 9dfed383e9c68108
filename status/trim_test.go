package status

import (
	"testing"
	"unicode/utf8"
)

// TestTrimKeepsCharactersWhole: a Chinese subject is cut between
// characters, never inside one.
func TestTrimKeepsCharactersWhole(t *testing.T) {
	got := trim("滚动升级：蓝鲸容器服务的两种方案说明", 10)
	if !utf8.ValidString(got) || got != "滚动升级：蓝鲸..." {
		t.Errorf("trim = %q", got)
	}
	if got := trim("short", 10); got != "short" {
		t.Errorf("trim(short) = %q", got)
	}
}
