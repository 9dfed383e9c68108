package bench

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// request is one API request as the API server classifies it (its
// RequestInfo: verb, resource, subresource, namespace, name), seen by the
// proxy when it arrived.
type request struct {
	At time.Time
	// Verb is get, list, watch, create, update, patch, apply (a server-side
	// apply patch), delete, deletecollection, or discovery for every path
	// that names no resource (/api, /apis/apps/v1, /openapi/v3, /version).
	Verb                  string
	DryRun                bool
	Resource, Subresource string // "deployments", "status"; the path for discovery
	Namespace, Name       string
	Selector              bool // a label or field selector narrows a list or watch
}

// write reports whether r would persist something: not a read, not a dry run.
func (r request) write() bool {
	switch r.Verb {
	case "create", "update", "patch", "apply", "delete", "deletecollection":
		return !r.DryRun
	}
	return false
}

// classify reads a request's verb and target from its method, URL and
// content type, as the API server's RequestInfoFactory does
// (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go): paths
// /api/v1/... and /apis/GROUP/VERSION/... then [watch/]
// [namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]], where namespaces/NS alone
// (or with status or finalize) is the namespace object itself.
func classify(method string, u *url.URL, contentType string) request {
	r := request{DryRun: u.Query().Get("dryRun") != ""}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	var rest []string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		rest = parts[3:]
	default:
		r.Verb, r.Resource = "discovery", u.Path
		return r
	}
	watchPrefix := false
	if rest[0] == "watch" {
		watchPrefix, rest = true, rest[1:]
	}
	if len(rest) >= 2 && rest[0] == "namespaces" {
		r.Namespace = rest[1]
		if len(rest) > 2 && rest[2] != "status" && rest[2] != "finalize" {
			rest = rest[2:]
		}
	}
	if len(rest) > 0 {
		r.Resource = rest[0]
	}
	if len(rest) > 1 {
		r.Name = rest[1]
	}
	if len(rest) > 2 {
		r.Subresource = rest[2]
	}
	q := u.Query()
	r.Selector = q.Get("labelSelector") != "" || q.Get("fieldSelector") != ""
	switch method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watchPrefix || q.Get("watch") == "true" || q.Get("watch") == "1":
			r.Verb = "watch"
		case r.Name == "":
			r.Verb = "list"
		default:
			r.Verb = "get"
		}
	case http.MethodPost:
		r.Verb = "create"
	case http.MethodPut:
		r.Verb = "update"
	case http.MethodPatch:
		r.Verb = "patch"
		if strings.HasPrefix(contentType, "application/apply-patch") {
			r.Verb = "apply"
		}
	case http.MethodDelete:
		r.Verb = "delete"
		if r.Name == "" {
			r.Verb = "deletecollection"
		}
	default:
		r.Verb = strings.ToLower(method)
	}
	return r
}

// recorder keeps every request the proxy forwarded since the last take.
type recorder struct {
	mu       sync.Mutex
	reqs     []request
	lastRead time.Time // when the last request other than a watch arrived
	failed   int       // requests the proxy could not forward
}

func (rec *recorder) add(r request) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, r)
	if r.Verb != "watch" {
		rec.lastRead = r.At
	}
}

// take returns the requests so far and starts afresh.
func (rec *recorder) take() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.reqs
	rec.reqs = nil
	return out
}

// last is when the last request other than a watch arrived (zero if none
// since the proxy started).
func (rec *recorder) last() time.Time {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.lastRead
}

// proxy is a TLS reverse proxy to the API server that records every
// request. Clients reach it with a placeholder token (kubeconfig,
// restConfig); it forwards with the admin client certificate. Both sides speak HTTP/2,
// as clients of the API server do; watches stream through unbuffered.
type proxy struct {
	rec        *recorder
	srv        *httptest.Server
	kubeconfig string // for processes: KUBECONFIG=kubeconfig
}

func startProxy(tb testing.TB, admin *rest.Config) *proxy {
	tb.Helper()
	upstream, err := url.Parse(admin.Host)
	if err != nil {
		tb.Fatalf("API server address %q: %v", admin.Host, err)
	}
	rt, err := rest.TransportFor(admin)
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{rec: &recorder{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Header.Del("Authorization") // the placeholder token below
		},
		Transport:     rt,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.rec.mu.Lock()
			p.rec.failed++
			p.rec.mu.Unlock()
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := classify(r.Method, r.URL, r.Header.Get("Content-Type"))
		c.At = time.Now()
		p.rec.add(c)
		rp.ServeHTTP(w, r)
	}))
	p.srv.EnableHTTP2 = true
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.StartTLS()
	tb.Cleanup(p.srv.Close)

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bench"] = &clientcmdapi.Cluster{Server: p.srv.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})}
	// A placeholder token, since kubectl asks for a user name when a
	// kubeconfig has no credentials; the proxy drops it.
	cfg.AuthInfos["bench"] = &clientcmdapi.AuthInfo{Token: "bench-proxy"}
	cfg.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "bench"}
	cfg.CurrentContext = "bench"
	p.kubeconfig = filepath.Join(tb.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p.kubeconfig); err != nil {
		tb.Fatal(err)
	}
	return p
}

// restConfig is a client configuration through the proxy, without a rate
// limit.
func (p *proxy) restConfig(tb testing.TB) *rest.Config {
	tb.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig)
	if err != nil {
		tb.Fatal(err)
	}
	rc.QPS, rc.Burst = -1, 0
	return rc
}
