package paced

import (
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// t0 is the second of the seed's update: the new application is test-v1562517103.
var t0 = time.Unix(1562517103, 0).UTC()

const (
	hashV0 = "hash-v1.1.0"
	hashV1 = "hash-v1.1.1"
	hashV2 = "hash-v1.1.2"
	newApp = "test-v1562517103"
)

func at(d time.Duration) time.Time { return t0.Add(d) }

// testSpec is deployment defaultgroup/test with the given template hash and
// strategy, its template a one-container pod named after the hash.
func testSpec(instance, surge, unavailable int32, order, hash string) Spec {
	return Spec{
		Namespace: "defaultgroup", Name: "test", Instance: instance,
		Strategy:     Strategy{MaxSurge: surge, MaxUnavailable: unavailable, Order: order},
		Template:     testTemplate(hash, nil),
		TemplateHash: hash,
		Revision:     "rev-" + hash,
	}
}

// testTemplate is a minimal application template; podAnnotations go on the pods.
func testTemplate(image string, podAnnotations map[string]string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"appname": "test"}},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{vocab.LabelDeployment: "test", vocab.LabelApplication: "test"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"appname": "test", vocab.LabelDeployment: "test", vocab.LabelApplication: "test"},
					Annotations: podAnnotations},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "test", Image: image}}},
			},
		},
	}
}

// app is an observed application whose pods all exist; ready of them are Ready.
func app(name string, replicas, ready int32, hash string) App {
	return App{Name: name, Replicas: replicas, Pods: replicas, Ready: ready, TemplateHash: hash, Created: t0}
}

func obs(apps ...App) Observed { return Observed{Apps: apps} }

// rolling is the state of a rollout from test (hashV0, 4 instances) to
// newApp (hashV1) before its first cycle.
func rolling() State {
	return State{Phase: PhaseIdle, Base: "test", BaseHash: hashV0, BaseInstance: 4, BaseRevision: "rev-" + hashV0,
		New: newApp, NewHash: hashV1, Revision: "rev-" + hashV1, RolloutStart: t0, PromotedFor: newApp}
}

// world is an in-memory cluster for simulations of Next: an action takes
// effect at once and pods are Ready at once.
type world struct {
	apps  map[string]*App
	state State
	now   time.Time
	log   []string
	pods  int32 // most pods at once
}

func (w *world) observed() Observed {
	var o Observed
	for _, a := range w.apps {
		o.Apps = append(o.Apps, *a)
	}
	sort.Slice(o.Apps, func(i, j int) bool { return o.Apps[i].Name < o.Apps[j].Name })
	return o
}

// step runs one Next and applies it; persistOnly drops the action, as a
// crash right after persisting would. It reports whether Next said Done.
func (w *world) step(spec Spec, c Controls, persistOnly bool) (Decision, bool) {
	c.Now = w.now
	d := Next(spec, w.observed(), w.state, c)
	w.state = d.State
	if persistOnly {
		return d, d.Action == Done
	}
	switch d.Action {
	case Create:
		w.apps[d.App] = &App{Name: d.App, Replicas: d.Replicas, Pods: d.Replicas, Ready: d.Replicas, TemplateHash: spec.TemplateHash, Created: w.now}
	case Scale:
		a := w.apps[d.App]
		a.Replicas, a.Pods, a.Ready = d.Replicas, d.Replicas, d.Replicas
	case Delete:
		delete(w.apps, d.App)
	case Wait:
		if d.Until.After(w.now) {
			w.now = d.Until
		}
	}
	stage := string(d.State.Phase)
	if d.State.InRollout() {
		stage = fmt.Sprintf("cycle %d", d.State.Cycle)
	}
	switch d.Action {
	case Create, Scale:
		w.log = append(w.log, fmt.Sprintf("t+%s %s: %s %s %d", w.now.Sub(t0), stage, d.Action, d.App, d.Replicas))
	case Delete:
		w.log = append(w.log, fmt.Sprintf("t+%s %s: %s %s", w.now.Sub(t0), stage, d.Action, d.App))
	}
	var total int32
	for _, a := range w.apps {
		total += a.Pods
	}
	w.pods = max(w.pods, total)
	return d, d.Action == Done
}
