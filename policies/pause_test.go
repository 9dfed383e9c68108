package policies

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPauseGate(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		app   string
		want  *Held
	}{
		{"no marker", map[string][]byte{"payments/api/deploy.yaml": nil}, "payments/api", nil},
		{
			"app marker with reason",
			map[string][]byte{"payments/api/PAUSE": []byte("\n  incident INC-42: payments degraded  \ncontact: ops\n")},
			"payments/api",
			&Held{Gate: "pause", Reason: "paused by payments/api/PAUSE: incident INC-42: payments degraded"},
		},
		{"another app's marker", map[string][]byte{"payments/api/PAUSE": nil}, "payments/worker", nil},
		{
			"root marker pauses every app, empty reason",
			map[string][]byte{"PAUSE": nil},
			"web/front",
			&Held{Gate: "pause", Reason: "paused by PAUSE"},
		},
		{
			"directory marker pauses the apps below it",
			map[string][]byte{"payments/PAUSE": []byte("freeze")},
			"payments/api",
			&Held{Gate: "pause", Reason: "paused by payments/PAUSE: freeze"},
		},
		{
			"the marker nearest the root gives the reason (sources.Pauses.For, as App.Pause)",
			map[string][]byte{"PAUSE": []byte("all"), "payments/api/PAUSE": []byte("just api")},
			"payments/api",
			&Held{Gate: "pause", Reason: "paused by PAUSE: all"},
		},
		{
			"a UTF-16 reason is decoded as manifests are",
			map[string][]byte{"web/PAUSE": {0xff, 0xfe, 'd', 0, 'b', 0, '\n', 0}},
			"web",
			&Held{Gate: "pause", Reason: "paused by web/PAUSE: db"},
		},
		{"a marker in a hidden directory pauses nothing", map[string][]byte{".github/PAUSE": nil}, ".github", nil},
		{"marker in a sibling with a common prefix", map[string][]byte{"pay/PAUSE": nil}, "payments/api", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewPauseGate(tt.files).Check(context.Background(), GateInput{App: tt.app, Rollback: true})
			var got *Held
			if err != nil && !errors.As(err, &got) {
				t.Fatalf("Check = %v, want nil or *Held", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
	}
}
