package paced

import (
	"time"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// appName is the name of the application a rollout started at now creates:
// "<deployment>-v<unix seconds>", after stripping a "-v<digits>" suffix so
// that suffixes never stack ("test-v1562517103" gives "test-v<now>"). A name
// already taken (by Base, New or any ReplicaSet, even one being deleted)
// moves to the next second.
func appName(deployment string, now time.Time, taken func(string) bool) string {
	for s := now.Unix(); ; s++ {
		if name := vocab.ApplicationName(deployment, s); !taken(name) {
			return name
		}
	}
}

// CycleTargets fixes a cycle's targets when it starts (BCS):
//
//	new = min(new + maxSurge, instance)   (never below new: a rollout does not shrink the new application)
//	old = max(old − maxUnavailable, 0)
//
// These are batch sizes per cycle, not global bounds: old + new can exceed
// instance + maxSurge while a cycle runs.
func CycleTargets(newR, oldR, instance int32, s Strategy) Targets {
	t := Targets{New: min(newR+s.MaxSurge, instance), Old: max(oldR-s.MaxUnavailable, 0)}
	t.New = max(t.New, newR)
	return t
}

// cyclesLeft is how many more cycles take new to instance and old to 0.
func cyclesLeft(newR, oldR, instance int32, s Strategy) int32 {
	up := ceilDiv(max(instance-newR, 0), s.MaxSurge)
	down := ceilDiv(max(oldR, 0), s.MaxUnavailable)
	return max(up, down)
}

func ceilDiv(a, b int32) int32 { return (a + b - 1) / b }
