package policies

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// DeniedError says that an allow-list rule of gitpace.yaml forbids an object.
type DeniedError struct {
	File  string // policy file, "gitpace.yaml"
	Rule  int    // index in apps[]
	Match string // the rule's match pattern ("" for a path rule)
	Path  string // a path rule's path
	// Field is what the rule does not allow: "namespace" or "kind".
	Field string
	// Value is the namespace ("" for a cluster-scoped object, the name for
	// a Namespace) or the object's kind as "Kind" (core group) or "group/Kind".
	Value   string
	Object  string   // Kind/name, or Kind/namespace/name in kind errors
	Allowed []string // the rule's namespaces or kinds
}

// Error implements error, e.g.
// gitpace.yaml apps[0] (match "payments/*") does not allow namespace "kube-system" for Deployment/x (allowed: "payments", "payments-*").
func (e *DeniedError) Error() string {
	what := fmt.Sprintf("%s %q", e.Field, e.Value)
	if e.Field == "namespace" && e.Value == "" {
		what = "cluster-scoped objects"
	}
	allowed := make([]string, len(e.Allowed))
	for i, a := range e.Allowed {
		allowed[i] = fmt.Sprintf("%q", a)
	}
	rule := fmt.Sprintf("match %q", e.Match)
	if e.Match == "" {
		rule = fmt.Sprintf("path %q", e.Path)
	}
	return fmt.Sprintf("%s apps[%d] (%s) does not allow %s for %s (allowed %ss: %s)",
		e.File, e.Rule, rule, what, e.Object, e.Field, strings.Join(allowed, ", "))
}

// CheckObject returns nil when the allow-list rule for app (the first apps[]
// entry whose match matches it) allows obj, or a *DeniedError naming the
// rule. Apps that no rule matches are not limited. obj's namespace must be
// the one it will be applied to ("" only for cluster-scoped objects).
func (c *Config) CheckObject(app string, obj *unstructured.Unstructured) error {
	i, rule := c.ruleFor(app)
	if rule == nil {
		return nil
	}
	denied := func(field, value, object string, allowed []string) error {
		return &DeniedError{File: c.File, Rule: i, Match: rule.Match, Path: rule.Path, Field: field, Value: value, Object: object, Allowed: allowed}
	}
	gvk := obj.GroupVersionKind()
	ns := obj.GetNamespace()
	if len(rule.Namespaces) > 0 {
		target := ns
		if gvk.Group == "" && gvk.Kind == "Namespace" {
			target = obj.GetName() // a Namespace is allowed where its content would be
		}
		if target == "" || !matchAny(rule.Namespaces, target) {
			return denied("namespace", target, gvk.Kind+"/"+obj.GetName(), rule.Namespaces)
		}
	}
	if len(rule.kinds) > 0 && !rule.allowsKind(gvk.Group, gvk.Kind) {
		ref := gvk.Kind + "/" + obj.GetName()
		if ns != "" {
			ref = gvk.Kind + "/" + ns + "/" + obj.GetName()
		}
		return denied("kind", groupKind(gvk.Group, gvk.Kind), ref, rule.Kinds)
	}
	return nil
}

// ruleFor returns the apps[] rule for app: the Path rule declaring it, or
// else the first Match rule matching it; nil when none does.
func (c *Config) ruleFor(app string) (int, *AppRule) {
	if c == nil {
		return -1, nil
	}
	for i := range c.Apps {
		if c.Apps[i].Path != "" && c.Apps[i].AppName() == app {
			return i, &c.Apps[i]
		}
	}
	for i := range c.Apps {
		if c.Apps[i].Match == "" {
			continue
		}
		if ok, _ := path.Match(c.Apps[i].Match, app); ok {
			return i, &c.Apps[i]
		}
	}
	return -1, nil
}

func (r *AppRule) allowsKind(group, kind string) bool {
	for _, k := range r.kinds {
		if k.matches(group, kind) {
			return true
		}
	}
	return false
}

// groupKind prints a kind as kinds[] spells it: "Service", "apps/Deployment".
func groupKind(group, kind string) string {
	if group == "" {
		return kind
	}
	return group + "/" + kind
}

// kindPattern is one compiled entry of AppRule.Kinds.
type kindPattern struct {
	group    string // path.Match pattern on the API group; "" is the core group
	kind     string // path.Match pattern on the kind
	anyGroup bool   // the entry named no group
}

func (k kindPattern) matches(group, kind string) bool {
	if ok, _ := path.Match(k.kind, kind); !ok {
		return false
	}
	if k.anyGroup {
		return true
	}
	if k.group == "" {
		return group == ""
	}
	ok, _ := path.Match(k.group, group)
	return ok
}

var versionLike = regexp.MustCompile(`^v[0-9]+((alpha|beta)[0-9]+)?$`)

// parseKindPattern reads "Kind" or "group/Kind" ("core/Kind" for the core group).
func parseKindPattern(s string) (kindPattern, error) {
	parts := strings.Split(s, "/")
	for _, p := range parts {
		if err := checkPattern(p); err != nil {
			return kindPattern{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	switch len(parts) {
	case 1:
		return kindPattern{kind: parts[0], anyGroup: true}, nil
	case 2:
		group := parts[0]
		if versionLike.MatchString(group) {
			return kindPattern{}, fmt.Errorf("%q: %q is a version, not an API group; write %q or %q", s, group, parts[1], "core/"+parts[1])
		}
		if group == "core" {
			group = ""
		}
		return kindPattern{group: group, kind: parts[1]}, nil
	case 3:
		return kindPattern{}, fmt.Errorf("%q: versions are not part of a kind rule; write %q (or %q for any group)", s, parts[0]+"/"+parts[2], parts[2])
	default:
		return kindPattern{}, fmt.Errorf("%q: write Kind or group/Kind", s)
	}
}

// AllowListGate holds a revision when an allow-list of gitpace.yaml forbids
// any of the app's desired objects. The hold lasts until a new revision.
type AllowListGate struct {
	Config *Config
}

// Name returns "allow-list".
func (g *AllowListGate) Name() string { return GateAllowList }

// Check checks every object and reports all that are denied: Held.Reason
// names the first and counts the rest; Held.Err joins every *DeniedError.
func (g *AllowListGate) Check(_ context.Context, in GateInput) error {
	var errs []error
	for _, obj := range in.Objects {
		if err := g.Config.CheckObject(in.App, obj); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	reason := errs[0].Error()
	if len(errs) > 1 {
		reason += fmt.Sprintf(" (and %d more objects)", len(errs)-1)
	}
	return &Held{Gate: g.Name(), Reason: reason, Err: errors.Join(errs...)}
}
