package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func rolling(surge, unavailable *intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavailable}}
}

func ints(n int) *intstr.IntOrString   { v := intstr.FromInt32(int32(n)); return &v }
func pct(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }

func TestDeploymentSteps(t *testing.T) {
	tests := []struct {
		name     string
		replicas int32
		strategy appsv1.DeploymentStrategy
		want     []Step
	}{{
		name: "seed: 3 replicas, surge 1, unavailable 1", replicas: 3, strategy: rolling(ints(1), ints(1)),
		want: []Step{
			{New: 1, Old: 2, Total: 4, MinAvailable: 2, Action: "scale new up to 1, old down to 2"},
			{New: 2, Old: 1, Total: 4, MinAvailable: 2, Action: "scale new up to 2, old down to 1"},
			{New: 3, Old: 0, Total: 4, MinAvailable: 2, Action: "scale new up to 3, old down to 0"},
		},
	}, {
		// surge ceil(2.5) = 3, unavailable floor(2.5) = 2: at most 13 pods, at least 8 available.
		name: "10 replicas, defaults 25%/25%", replicas: 10, strategy: appsv1.DeploymentStrategy{},
		want: []Step{
			{New: 3, Old: 8, Total: 13, MinAvailable: 8, Action: "scale new up to 3, old down to 8"},
			{New: 5, Old: 5, Total: 13, MinAvailable: 8, Action: "scale new up to 5, old down to 5"},
			{New: 8, Old: 3, Total: 13, MinAvailable: 8, Action: "scale new up to 8, old down to 3"},
			{New: 10, Old: 0, Total: 13, MinAvailable: 8, Action: "scale new up to 10, old down to 0"},
		},
	}, {
		name: "10 replicas, explicit 25%/25% equals the defaults", replicas: 10, strategy: rolling(pct("25%"), pct("25%")),
		want: []Step{
			{New: 3, Old: 8, Total: 13, MinAvailable: 8, Action: "scale new up to 3, old down to 8"},
			{New: 5, Old: 5, Total: 13, MinAvailable: 8, Action: "scale new up to 5, old down to 5"},
			{New: 8, Old: 3, Total: 13, MinAvailable: 8, Action: "scale new up to 8, old down to 3"},
			{New: 10, Old: 0, Total: 13, MinAvailable: 8, Action: "scale new up to 10, old down to 0"},
		},
	}, {
		// 5 × 10% = 0.5: surge rounds up to 1, unavailable down to 0, so
		// an old pod goes only after a new one is Ready: 10 steps.
		name: "percent rounding: 5 replicas 10%/10%", replicas: 5, strategy: rolling(pct("10%"), pct("10%")),
		want: []Step{
			{New: 1, Old: 5, Total: 6, MinAvailable: 5, Action: "scale new up to 1"},
			{New: 1, Old: 4, Total: 6, MinAvailable: 5, Action: "scale old down to 4"},
			{New: 2, Old: 4, Total: 6, MinAvailable: 5, Action: "scale new up to 2"},
			{New: 2, Old: 3, Total: 6, MinAvailable: 5, Action: "scale old down to 3"},
			{New: 3, Old: 3, Total: 6, MinAvailable: 5, Action: "scale new up to 3"},
			{New: 3, Old: 2, Total: 6, MinAvailable: 5, Action: "scale old down to 2"},
			{New: 4, Old: 2, Total: 6, MinAvailable: 5, Action: "scale new up to 4"},
			{New: 4, Old: 1, Total: 6, MinAvailable: 5, Action: "scale old down to 1"},
			{New: 5, Old: 1, Total: 6, MinAvailable: 5, Action: "scale new up to 5"},
			{New: 5, Old: 0, Total: 6, MinAvailable: 5, Action: "scale old down to 0"},
		},
	}, {
		// surge 0 and unavailable 0% resolve to 0/0: unavailable becomes 1,
		// so an old pod goes first and the new one takes its place.
		name: "both zero: unavailable becomes 1", replicas: 2, strategy: rolling(ints(0), pct("0%")),
		want: []Step{
			{New: 0, Old: 1, Total: 2, MinAvailable: 1, Action: "scale old down to 1"},
			{New: 1, Old: 1, Total: 2, MinAvailable: 1, Action: "scale new up to 1"},
			{New: 1, Old: 0, Total: 2, MinAvailable: 1, Action: "scale old down to 0"},
			{New: 2, Old: 0, Total: 2, MinAvailable: 1, Action: "scale new up to 2"},
		},
	}, {
		name: "Recreate", replicas: 3, strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
		want: []Step{
			{New: 0, Old: 0, Total: 3, MinAvailable: 0, Action: "scale old down to 0, wait until its pods are gone"},
			{New: 3, Old: 0, Total: 3, MinAvailable: 0, Action: "scale new up to 3"},
		},
	}, {
		name: "0 replicas: nothing to roll", replicas: 0, strategy: appsv1.DeploymentStrategy{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DeploymentSteps(tt.replicas, tt.strategy)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DeploymentSteps(%d) (-want +got):\n%s", tt.replicas, diff)
			}
			if tt.strategy.Type == appsv1.RecreateDeploymentStrategyType {
				return
			}
			fp, err := ResolveFenceposts(tt.replicas, tt.strategy.RollingUpdate)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range got { // the Deployment's global bounds hold at every step
				if s.Total > tt.replicas+fp.Surge || s.MinAvailable < tt.replicas-fp.Unavailable {
					t.Errorf("step %d %+v breaks the bounds: total ≤ %d, available ≥ %d", i+1, s, tt.replicas+fp.Surge, tt.replicas-fp.Unavailable)
				}
			}
		})
	}
}

func TestResolveFenceposts(t *testing.T) {
	tests := []struct {
		replicas           int32
		surge, unavailable *intstr.IntOrString
		want               Fenceposts
	}{
		{3, ints(1), ints(1), Fenceposts{1, 1}},
		{10, nil, nil, Fenceposts{3, 2}},
		{3, ints(0), ints(0), Fenceposts{0, 1}},
		{5, pct("10%"), pct("10%"), Fenceposts{1, 0}},
		{4, pct("50%"), pct("30%"), Fenceposts{2, 1}},
		{3, pct("0%"), ints(2), Fenceposts{0, 2}},
	}
	for _, tt := range tests {
		got, err := ResolveFenceposts(tt.replicas, &appsv1.RollingUpdateDeployment{MaxSurge: tt.surge, MaxUnavailable: tt.unavailable})
		if err != nil || got != tt.want {
			t.Errorf("ResolveFenceposts(%d, %v, %v) = %+v, %v; want %+v", tt.replicas, tt.surge, tt.unavailable, got, err, tt.want)
		}
	}
	if _, err := ResolveFenceposts(3, &appsv1.RollingUpdateDeployment{MaxSurge: pct("one")}); err == nil {
		t.Error("maxSurge \"one\": want an error")
	}
}
