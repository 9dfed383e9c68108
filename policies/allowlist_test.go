package policies

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func newObject(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

const allowListYAML = `
apps:
- match: "payments/*"
  namespaces: ["payments", "payments-*"]
  kinds: ["Deployment", "Service", "ConfigMap", "core/Secret", "*.example.com/*"]
- match: "payments/*"
  kinds: ["ClusterRole"] # never reached: the first matching rule applies
- match: "platform/*"
  kinds: ["rbac.authorization.k8s.io/ClusterRole", "Namespace"]
`

func TestCheckObject(t *testing.T) {
	cfg := mustConfig(t, allowListYAML)
	tests := []struct {
		name string
		app  string
		obj  *unstructured.Unstructured
		want string // "" = allowed
	}{
		{"allowed namespace and kind", "payments/api", newObject("apps/v1", "Deployment", "payments", "x"), ""},
		{"namespace wildcard", "payments/api", newObject("v1", "Service", "payments-eu", "x"), ""},
		{
			"namespace not allowed", "payments/api", newObject("apps/v1", "Deployment", "kube-system", "x"),
			`gitpace.yaml apps[0] (match "payments/*") does not allow namespace "kube-system" for Deployment/x (allowed namespaces: "payments", "payments-*")`,
		},
		{
			"kind not allowed", "payments/api", newObject("rbac.authorization.k8s.io/v1", "Role", "payments", "x"),
			`gitpace.yaml apps[0] (match "payments/*") does not allow kind "rbac.authorization.k8s.io/Role" for Role/payments/x (allowed kinds: "Deployment", "Service", "ConfigMap", "core/Secret", "*.example.com/*")`,
		},
		{"core/Kind allows the core group", "payments/api", newObject("v1", "Secret", "payments", "x"), ""},
		{
			"core/Kind refuses another group", "payments/api", newObject("example.org/v1", "Secret", "payments", "x"),
			`does not allow kind "example.org/Secret" for Secret/payments/x`,
		},
		{"group wildcard", "payments/api", newObject("db.example.com/v1", "Database", "payments", "x"), ""},
		{"Kind alone matches any group", "payments/api", newObject("apps/v1", "Deployment", "payments", "x"), ""},
		{
			"cluster-scoped refused when namespaces are listed", "payments/api", newObject("rbac.authorization.k8s.io/v1", "ClusterRole", "", "x"),
			`gitpace.yaml apps[0] (match "payments/*") does not allow cluster-scoped objects for ClusterRole/x`,
		},
		{
			"Namespace checked by its name: refused", "payments/api", newObject("v1", "Namespace", "", "kube-system"),
			`does not allow namespace "kube-system" for Namespace/kube-system`,
		},
		{
			"Namespace checked by its name: allowed namespace, but kind not listed", "payments/api", newObject("v1", "Namespace", "", "payments-eu"),
			`does not allow kind "Namespace" for Namespace/payments-eu`,
		},
		{"rule without namespaces allows cluster-scoped", "platform/rbac", newObject("rbac.authorization.k8s.io/v1", "ClusterRole", "", "x"), ""},
		{"rule without namespaces allows any namespace", "platform/rbac", newObject("v1", "Namespace", "", "anything"), ""},
		{
			"group/Kind refuses the same kind in another group", "platform/rbac", newObject("example.com/v1", "ClusterRole", "", "x"),
			`gitpace.yaml apps[2] (match "platform/*") does not allow kind "example.com/ClusterRole" for ClusterRole/x`,
		},
		{"app no rule matches is not limited", "web/front", newObject("v1", "Secret", "kube-system", "x"), ""},
		{"match does not cross a slash", "payments/api/v2", newObject("v1", "Secret", "kube-system", "x"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cfg.CheckObject(tt.app, tt.obj)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckObject = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Errorf("CheckObject = nil, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("CheckObject = %q\nwant it to contain %q", err, tt.want)
			}
			var denied *DeniedError
			if err != nil && !errors.As(err, &denied) {
				t.Errorf("CheckObject = %T, want *DeniedError", err)
			}
		})
	}
}

func TestCheckObjectZeroConfig(t *testing.T) {
	obj := newObject("v1", "Secret", "kube-system", "x")
	for _, cfg := range []*Config{nil, {}} {
		if err := cfg.CheckObject("a", obj); err != nil {
			t.Errorf("CheckObject on %#v = %v, want nil", cfg, err)
		}
	}
}

func TestAllowListGate(t *testing.T) {
	g := &AllowListGate{Config: mustConfig(t, allowListYAML)}
	in := GateInput{App: "payments/api", Objects: []*unstructured.Unstructured{
		newObject("apps/v1", "Deployment", "payments", "ok"),
		newObject("apps/v1", "Deployment", "kube-system", "a"),
		newObject("rbac.authorization.k8s.io/v1", "Role", "payments", "b"),
	}}
	err := g.Check(context.Background(), in)
	var held *Held
	if !errors.As(err, &held) {
		t.Fatalf("Check = %v, want *Held", err)
	}
	wantReason := `gitpace.yaml apps[0] (match "payments/*") does not allow namespace "kube-system" for Deployment/a (allowed namespaces: "payments", "payments-*") (and 1 more objects)`
	if diff := cmp.Diff(wantReason, held.Reason); held.Gate != "allow-list" || diff != "" || !held.RetryAt.IsZero() {
		t.Errorf("Held = %+v, want gate allow-list, no RetryAt, reason (-want +got):\n%s", held, diff)
	}
	var denied *DeniedError
	if !errors.As(err, &denied) || denied.Object != "Deployment/a" {
		t.Errorf("errors.As(*DeniedError) = %+v, want the first denied object", denied)
	}
	if !strings.Contains(held.Err.Error(), "Role/payments/b") {
		t.Errorf("Held.Err = %q, want every denied object", held.Err)
	}
	in.Objects = in.Objects[:1]
	if err := g.Check(context.Background(), in); err != nil {
		t.Errorf("Check of allowed objects = %v, want nil", err)
	}
}
