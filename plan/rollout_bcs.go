package plan

import (
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/gitpace/gitpace/sources/bcs"
	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// application is one live BCS application (a ReplicaSet labelled with
// bcs.LabelDeployment).
type application struct {
	name     string
	replicas int32
	hash     string
	created  time.Time
}

// liveApplications keeps the ReplicaSets that are not being deleted, oldest
// first (the rollout engine's base is the oldest).
func liveApplications(rss []appsv1.ReplicaSet) []application {
	var out []application
	for i := range rss {
		rs := &rss[i]
		if rs.DeletionTimestamp != nil {
			continue
		}
		out = append(out, application{name: rs.Name, replicas: replicasOf(rs.Spec.Replicas),
			hash: rs.Annotations[vocab.AnnotationTemplateHash], created: rs.CreationTimestamp.Time})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].name < out[j].name
	})
	return out
}

// bcsRollout plans what deployment d does given its live ReplicaSets, from
// now, within windows w (see package doc and appliers/paced's rules):
//
//	no application               create one named like the deployment with instance pods
//	one, same template hash      scale it to instance (or nothing)
//	one, another hash            roll it in cycles to a new application "<name>-v<unix seconds>"
//	two (a rollout in flight):
//	  the newer has the hash     the rollout goes on (not a change of this revision)
//	  the older has the hash     cancel: the older is restored, the newer deleted (not paced)
//	  neither                    cancel, then roll the older to a new application
func bcsRollout(d *bcs.Deployment, rss []appsv1.ReplicaSet, now time.Time, w *Windows) Rollout {
	s := d.Strategy()
	r := Rollout{Kind: "BCS deployment", Namespace: d.Namespace(), Name: d.Name(),
		Strategy: fmt.Sprintf("%s, maxSurge %d, maxUnavailable %d per cycle, upgradeDuration %s",
			s.Order, s.MaxSurge, s.MaxUnavailable, s.UpgradeDuration)}
	if s.Manually {
		r.Strategy += ", rollingManually"
	}
	hash, instance := d.TemplateHash(), d.Instance()
	apps := liveApplications(rss)
	newApp := vocab.BaseName(d.Name()) + "-v<unix seconds>"
	roll := func(newR, oldR int32) {
		r.Cycles = BCSCycles(newR, oldR, instance, s, now, w)
		if n := len(r.Cycles); n > 0 {
			r.Finish = r.Cycles[n-1].Start
		} else {
			r.Finish, _, _ = w.Earliest(now)
		}
		if s.Manually && len(r.Cycles) > 1 {
			r.Notes = append(r.Notes, fmt.Sprintf("rollingManually: cycles 2 to %d each wait for `gitpace promote` (the finish assumes each is approved at once)", len(r.Cycles)))
		}
	}
	switch {
	case len(apps) == 0:
		r.Summary, r.Changed = fmt.Sprintf("creates application %s with %s (no rolling update)", d.Name(), plural(int(instance), "instance")), true
	case len(apps) == 1 && apps[0].hash == hash:
		a := apps[0]
		if a.replicas == instance {
			r.Summary = fmt.Sprintf("no change: application %s runs %s of this template", a.name, plural(int(instance), "instance"))
		} else {
			r.Summary, r.Changed = fmt.Sprintf("scales application %s from %d to %s (template unchanged: no rolling update)", a.name, a.replicas, plural(int(instance), "instance")), true
		}
	case len(apps) == 1:
		a := apps[0]
		roll(0, a.replicas)
		r.Summary, r.Changed = fmt.Sprintf("rolls application %s (%s) to a new application %s with %s in %s",
			a.name, plural(int(a.replicas), "instance"), newApp, plural(int(instance), "instance"), plural(len(r.Cycles), "cycle")), true
	default:
		base, inFlight := apps[0], apps[len(apps)-1]
		switch hash {
		case inFlight.hash:
			roll(inFlight.replicas, base.replicas)
			r.Summary = fmt.Sprintf("a rollout from %s to %s is in flight and goes on: %s left", base.name, inFlight.name, plural(len(r.Cycles), "cycle"))
		case base.hash:
			r.Summary, r.Changed = fmt.Sprintf("cancels the rollout in flight: restores application %s and deletes %s (not paced)", base.name, inFlight.name), true
		default:
			roll(0, base.replicas)
			r.Summary, r.Changed = fmt.Sprintf("cancels the rollout in flight (deletes %s, restores %s), then rolls %s to a new application %s with %s in %s",
				inFlight.name, base.name, base.name, newApp, plural(int(instance), "instance"), plural(len(r.Cycles), "cycle")), true
			r.Notes = append(r.Notes, fmt.Sprintf("the cycles count from the %d instances %s runs now; the cancel restores its count from before the rollout", base.replicas, base.name))
		}
	}
	return r
}

// plural is e.g. "1 cycle", "2 cycles".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
