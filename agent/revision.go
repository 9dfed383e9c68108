package agent

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/manifest"
)

// revision is one git revision of the whole agent, built before any app is
// reconciled: every app's desired objects (namespaces defaulted as the
// server will key them), and what the revision declares across all apps.
// Prune is computed over it, not per app: an object that any app declares
// is never deleted.
type revision struct {
	apps   []*builtApp
	byName map[string]*builtApp
	// declared maps ObjectRef.Key of every object any valid app declares
	// to that app.
	declared map[string]string
	// namespaces holding objects that the revision declares, with those
	// objects ("Kind/ns/name (app a)").
	namespaces map[string][]string
	// invalid names the apps whose desired objects are unknown (bad input
	// or a transient error): while there are any, nothing is pruned.
	invalid []string
	// elsewhere caches claimedElsewhere for the pass (nil until a prune
	// needs it): other agents' inventories are listed once per pass.
	elsewhere func(key string) (string, bool)
}

// builtApp is one app of a revision.
type builtApp struct {
	app     *manifest.App
	objs    []*unstructured.Unstructured
	specs   []paced.Spec
	bcsObjs []*unstructured.Unstructured
	// err is bad input: the app's revision is rejected whole.
	err error
	// transient is a failure a retry may cure (discovery unreachable).
	transient error
}

func (r *revision) pruneOK() bool { return len(r.invalid) == 0 }

// lookup is the PruneRequest.Declared of the revision.
func (r *revision) lookup(key string) (string, bool) {
	app, ok := r.declared[key]
	return app, ok
}

// buildRevision builds every app: BCS specs, desired objects, Prepare
// (namespace defaulting, served kinds), then rejects objects declared twice
// once keyed as the server keys them, within an app or across apps (case
// 09: `Deployment gateway` defaulted to namespace case09 and `Deployment
// case09/gateway` are one object). Both places are named; no app holding a
// duplicate applies anything of it. The error is transient only.
func (a *Agent) buildRevision(rev sources.Revision, apps []manifest.App, cfgErr error) (*revision, error) {
	out := &revision{byName: map[string]*builtApp{}, declared: map[string]string{}, namespaces: map[string][]string{}}
	type place struct {
		app, where string
	}
	seen := map[string]place{}
	dups := map[string][]string{} // app -> duplicate errors
	for i := range apps {
		b := &builtApp{app: &apps[i]}
		out.apps = append(out.apps, b)
		out.byName[b.app.Name] = b
		if err := firstErr(cfgErr, b.app.Err); err != nil {
			b.err = err
			continue
		}
		specs, bcsObjs, err := bcsDesired(b.app, rev.Commit)
		if err != nil {
			b.err = err
			continue
		}
		for _, s := range specs {
			// Recorded on the applications' ReplicaSets: prune checks it.
			if s.Template.Annotations == nil {
				s.Template.Annotations = map[string]string{}
			}
			if s.Template.Labels == nil {
				s.Template.Labels = map[string]string{}
			}
			s.Template.Annotations[appliers.AppAnnotation] = b.app.Name
			s.Template.Labels[appliers.AgentLabel] = a.cfg.Name
		}
		objs := desiredObjects(b.app)
		if err := a.applier.Prepare(objs); err != nil {
			if isTransient(err) {
				b.transient = err
			} else {
				b.err = err
			}
			continue
		}
		b.objs, b.specs, b.bcsObjs = objs, specs, bcsObjs
		type keyed struct {
			ref   appliers.ObjectRef
			where string
		}
		var all []keyed
		for _, o := range objs {
			all = append(all, keyed{appliers.RefOf(o), o.GetAnnotations()[appliers.SourceAnnotation]})
		}
		for j, s := range specs {
			all = append(all, keyed{bcsRef(s.Namespace, s.Name), b.app.BCS[j].File})
		}
		for _, k := range all {
			key := k.ref.Key()
			if first, dup := seen[key]; dup {
				msg := fmt.Sprintf("%s is declared twice: %s and %s", k.ref, first.where, k.where)
				if first.app != b.app.Name {
					msg = fmt.Sprintf("%s is declared twice: %s (app %s) and %s (app %s)", k.ref, first.where, first.app, k.where, b.app.Name)
					dups[first.app] = append(dups[first.app], msg)
				}
				dups[b.app.Name] = append(dups[b.app.Name], msg)
				continue
			}
			seen[key] = place{b.app.Name, k.where}
		}
	}
	for _, b := range out.apps {
		if msgs := dups[b.app.Name]; len(msgs) > 0 && b.err == nil {
			sort.Strings(msgs)
			b.err = fmt.Errorf("duplicate object: %s", strings.Join(msgs, "; "))
			b.objs, b.specs, b.bcsObjs = nil, nil, nil
		}
		if b.err != nil || b.transient != nil {
			out.invalid = append(out.invalid, b.app.Name)
			continue
		}
		for _, o := range b.objs {
			ref := appliers.RefOf(o)
			out.declared[ref.Key()] = b.app.Name
			if ns := o.GetNamespace(); ns != "" {
				out.namespaces[ns] = append(out.namespaces[ns], ref.String()+" (app "+b.app.Name+")")
			}
		}
		for _, s := range b.specs {
			ref := bcsRef(s.Namespace, s.Name)
			out.declared[ref.Key()] = b.app.Name
			out.namespaces[s.Namespace] = append(out.namespaces[s.Namespace], "BCS deployment "+s.Namespace+"/"+s.Name+" (app "+b.app.Name+")")
		}
	}
	var transient []error
	for _, b := range out.apps {
		if b.transient != nil {
			transient = append(transient, b.transient)
		}
	}
	if len(transient) == len(out.apps) && len(transient) > 0 {
		return nil, errors.Join(transient...) // e.g. the API server is unreachable
	}
	return out, nil
}
