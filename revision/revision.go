package revision

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/manifest"
)

// Revision is one git revision of the whole agent: every app's desired
// objects, and what the revision declares across all apps. Prune is
// computed over it, not per app: an object that any app declares is never
// deleted.
type Revision struct {
	// Apps are the revision's apps, in manifest.Load's order (by name).
	Apps []*App
	// ByName indexes Apps by app name.
	ByName map[string]*App
	// Declared maps ObjectRef.Key of every object any valid app declares
	// to that app.
	Declared map[string]string
	// Namespaces maps each namespace holding objects that the revision
	// declares to those objects ("Kind/ns/name (app a)").
	Namespaces map[string][]string
	// Invalid names the apps whose desired objects are unknown (bad input
	// or a transient error): while there are any, nothing is pruned.
	Invalid []string
	// CRDs maps "group/Kind" of every CustomResourceDefinition the
	// revision brings to the CRD and its app: an app whose custom
	// resources another app's CRD serves waits for that CRD.
	CRDs map[string]CRD

	// elsewhere caches ClaimedElsewhere (nil until a prune needs it):
	// other agents' inventories are listed once for the prunes of a moment,
	// not once per pruning app. The apps of a revision are reconciled
	// concurrently, and a revision stays in force until the next one, so
	// the cache is guarded and lives elsewhereTTL.
	elsewhereMu sync.Mutex
	elsewhere   func(key string) (string, bool)
	elsewhereAt time.Time
}

// elsewhereTTL is how long other agents' inventories, once listed, answer
// ClaimedElsewhere.
const elsewhereTTL = 5 * time.Second

// CRD is a CustomResourceDefinition of a revision: its name and app.
type CRD struct{ Name, App string }

// App is one app of a Revision.
type App struct {
	Manifest *manifest.App
	// Objects are the app's desired Kubernetes objects (DesiredObjects,
	// then Config.Prepare); nil when Err or Transient is set.
	Objects []*unstructured.Unstructured
	// Specs are the app's BCS deployments, for package paced.
	Specs []paced.Spec
	// BCSObjects are the Specs' application templates as ReplicaSet
	// objects, for the policy gates (allow-lists).
	BCSObjects []*unstructured.Unstructured
	// Err is bad input: the app's revision is rejected whole.
	Err error
	// Transient is a failure a retry may cure (discovery unreachable).
	Transient error
	// ContentHash is AppContentHash(Objects, Manifest): the app's content
	// at this revision, as state.App.ContentHash records what is applied.
	// "" when Err or Transient is set.
	ContentHash string
}

// Name is the app's name (manifest.App.Name).
func (b *App) Name() string { return b.Manifest.Name }

// PruneOK reports whether what the revision declares is fully known: no
// app is invalid.
func (r *Revision) PruneOK() bool { return len(r.Invalid) == 0 }

// Lookup is the appliers.PruneRequest.Declared of the revision: the app
// that declares the object of key, if any.
func (r *Revision) Lookup(key string) (string, bool) {
	app, ok := r.Declared[key]
	return app, ok
}

// Config is what Build needs besides git.
type Config struct {
	// Agent is the agent identity, recorded (appliers.AgentLabel) on the
	// BCS application templates so that prune can check them.
	Agent string
	// Prepare defaults the namespaces of an app's objects and checks that
	// every kind is served (appliers.Applier.Prepare). Its errors are
	// classified by appliers.IsTransient.
	Prepare func(objs []*unstructured.Unstructured) error
}

// Build builds every app: BCS specs, desired objects, Prepare (namespace
// defaulting, served kinds), then rejects objects declared twice once keyed
// as the server keys them, within an app or across apps (case 09:
// `Deployment gateway` defaulted to namespace case09 and `Deployment
// case09/gateway` are one object). Both places (file:line, and the apps
// when they differ) are named; no app holding a duplicate applies anything
// of it. cfgErr (an invalid gitpace.yaml) rejects every app.
//
// Bad input is recorded per app (App.Err); the error is returned only
// when every app failed transiently (e.g. the API server is unreachable).
func Build(cfg Config, rev sources.Revision, apps []manifest.App, cfgErr error) (*Revision, error) {
	out := &Revision{ByName: map[string]*App{}, Declared: map[string]string{}, Namespaces: map[string][]string{}}
	type place struct {
		app, where string
	}
	seen := map[string]place{}
	dups := map[string][]string{} // app -> duplicate errors
	// CRDs every app brings: another app's custom resources of their kinds
	// are Prepared as the CRD will serve them, and wait for it (the agent).
	out.CRDs = map[string]CRD{}
	var crdObjs []*unstructured.Unstructured
	var crdApps []string
	for i := range apps {
		if apps[i].Err != nil {
			continue
		}
		for _, o := range apps[i].Objects {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			out.CRDs[g+"/"+k] = CRD{Name: o.GetName(), App: apps[i].Name}
			crdObjs = append(crdObjs, o.DeepCopy())
			crdApps = append(crdApps, apps[i].Name)
		}
	}
	for i := range apps {
		b := &App{Manifest: &apps[i]}
		out.Apps = append(out.Apps, b)
		out.ByName[b.Name()] = b
		if err := firstErr(cfgErr, b.Manifest.Err); err != nil {
			b.Err = err
			continue
		}
		specs, bcsObjs, err := bcsSpecs(b.Manifest, rev.Commit)
		if err != nil {
			b.Err = err
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
			s.Template.Annotations[appliers.AppAnnotation] = b.Name()
			s.Template.Labels[appliers.AgentLabel] = cfg.Agent
		}
		objs := DesiredObjects(b.Manifest)
		withPeers := objs
		for j, c := range crdObjs {
			if crdApps[j] != b.Name() {
				withPeers = append(withPeers[:len(withPeers):len(withPeers)], c.DeepCopy())
			}
		}
		if err := cfg.Prepare(withPeers); err != nil {
			if appliers.IsTransient(err) {
				b.Transient = err
			} else {
				b.Err = err
			}
			continue
		}
		b.Objects, b.Specs, b.BCSObjects = objs, specs, bcsObjs
		b.ContentHash = AppContentHash(objs, b.Manifest)
		type keyed struct {
			ref   appliers.ObjectRef
			where string
		}
		var all []keyed
		for _, o := range objs {
			all = append(all, keyed{appliers.RefOf(o), appliers.SourceOf(o)})
		}
		for j, s := range specs {
			all = append(all, keyed{BCSRef(s.Namespace, s.Name), b.Manifest.BCS[j].File})
		}
		for _, k := range all {
			key := k.ref.Key()
			if first, dup := seen[key]; dup {
				msg := fmt.Sprintf("%s is declared twice: %s and %s", k.ref, first.where, k.where)
				if first.app != b.Name() {
					msg = fmt.Sprintf("%s is declared twice: %s (app %s) and %s (app %s)", k.ref, first.where, first.app, k.where, b.Name())
					dups[first.app] = append(dups[first.app], msg)
				}
				dups[b.Name()] = append(dups[b.Name()], msg)
				continue
			}
			seen[key] = place{b.Name(), k.where}
		}
	}
	for _, b := range out.Apps {
		if msgs := dups[b.Name()]; len(msgs) > 0 && b.Err == nil {
			sort.Strings(msgs)
			b.Err = fmt.Errorf("duplicate object: %s", strings.Join(msgs, "; "))
			b.Objects, b.Specs, b.BCSObjects, b.ContentHash = nil, nil, nil, ""
		}
		if b.Err != nil || b.Transient != nil {
			out.Invalid = append(out.Invalid, b.Name())
			continue
		}
		for _, o := range b.Objects {
			ref := appliers.RefOf(o)
			out.Declared[ref.Key()] = b.Name()
			if ns := o.GetNamespace(); ns != "" {
				out.Namespaces[ns] = append(out.Namespaces[ns], ref.String()+" (app "+b.Name()+")")
			}
		}
		for _, s := range b.Specs {
			ref := BCSRef(s.Namespace, s.Name)
			out.Declared[ref.Key()] = b.Name()
			out.Namespaces[s.Namespace] = append(out.Namespaces[s.Namespace], "BCS deployment "+s.Namespace+"/"+s.Name+" (app "+b.Name()+")")
		}
	}
	var transient []error
	for _, b := range out.Apps {
		if b.Transient != nil {
			transient = append(transient, b.Transient)
		}
	}
	if len(transient) == len(out.Apps) && len(transient) > 0 {
		return nil, errors.Join(transient...) // e.g. the API server is unreachable
	}
	return out, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
