package vocab

import "testing"

func TestApplicationName(t *testing.T) {
	tests := []struct {
		deployment string
		unix       int64
		want       string
	}{
		{"test", 1562517103, "test-v1562517103"},
		{"test-v1562517103", 1700000000, "test-v1700000000"}, // suffixes never stack
		{"test-v1", 1700000000, "test-v1700000000"},
		{"test-version", 1700000000, "test-version-v1700000000"},
		{"v1", 1700000000, "v1-v1700000000"}, // only a "-v<digits>" suffix is stripped
	}
	for _, tt := range tests {
		if got := ApplicationName(tt.deployment, tt.unix); got != tt.want {
			t.Errorf("ApplicationName(%q, %d) = %q, want %q", tt.deployment, tt.unix, got, tt.want)
		}
	}
	if n := len(ApplicationName(string(make([]byte, MaxDeploymentName)), 9999999999)); n != 63 {
		t.Errorf("a %d-character name gives a %d-character application name, want 63", MaxDeploymentName, n)
	}
}
