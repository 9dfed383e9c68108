package bench

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestClassify: the proxy counts requests as the API server names them in
// apiserver_request_total (verb, resource, subresource, dry run).
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, path, contentType string
		want                      request
	}{
		{"GET", "/api/v1/namespaces/ns/configmaps/app-1", "",
			request{Verb: "get", Resource: "configmaps", Namespace: "ns", Name: "app-1"}},
		{"GET", "/api/v1/namespaces/ns/configmaps?labelSelector=a%3Db", "",
			request{Verb: "list", Resource: "configmaps", Namespace: "ns", Selector: true}},
		{"GET", "/apis/apps/v1/deployments?watch=true&resourceVersion=5", "",
			request{Verb: "watch", Resource: "deployments"}},
		{"GET", "/api/v1/watch/namespaces/ns/pods", "",
			request{Verb: "watch", Resource: "pods", Namespace: "ns"}},
		{"PATCH", "/apis/apps/v1/namespaces/ns/deployments/web?dryRun=All&fieldManager=gitpace&force=true", "application/apply-patch+yaml",
			request{Verb: "apply", DryRun: true, Resource: "deployments", Namespace: "ns", Name: "web"}},
		{"PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale", "application/merge-patch+json",
			request{Verb: "patch", Resource: "deployments", Subresource: "scale", Namespace: "ns", Name: "web"}},
		{"PUT", "/apis/apps/v1/namespaces/ns/deployments/web/status", "application/json",
			request{Verb: "update", Resource: "deployments", Subresource: "status", Namespace: "ns", Name: "web"}},
		{"POST", "/api/v1/namespaces/ns/configmaps", "application/json",
			request{Verb: "create", Resource: "configmaps", Namespace: "ns"}},
		{"DELETE", "/api/v1/namespaces/ns/services/web", "",
			request{Verb: "delete", Resource: "services", Namespace: "ns", Name: "web"}},
		{"DELETE", "/api/v1/namespaces/ns/pods", "",
			request{Verb: "deletecollection", Resource: "pods", Namespace: "ns"}},
		// The namespace object itself, and its subresources.
		{"GET", "/api/v1/namespaces/ns", "",
			request{Verb: "get", Resource: "namespaces", Namespace: "ns", Name: "ns"}},
		{"PUT", "/api/v1/namespaces/ns/finalize", "application/json",
			request{Verb: "update", Resource: "namespaces", Subresource: "finalize", Namespace: "ns", Name: "ns"}},
		{"POST", "/api/v1/namespaces", "application/json",
			request{Verb: "create", Resource: "namespaces"}},
		// Discovery and everything else that names no resource.
		{"GET", "/apis/apps/v1", "", request{Verb: "discovery", Resource: "/apis/apps/v1"}},
		{"GET", "/api", "", request{Verb: "discovery", Resource: "/api"}},
		{"GET", "/openapi/v3", "", request{Verb: "discovery", Resource: "/openapi/v3"}},
	} {
		u, err := url.Parse(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		got := classify(tc.method, u, tc.contentType)
		if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(request{}, "At")); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", tc.method, tc.path, diff)
		}
	}
}
