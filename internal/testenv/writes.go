package testenv

import (
	"net/http"
	"strings"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// Writes counts the API requests of a client that would persist something:
// not GET (nor LIST, WATCH), not a dry run.
type Writes struct {
	n  atomic.Int64
	rt http.RoundTripper
}

// CountWrites wraps rc's transport so that the returned Writes counts the
// writes of every client made from rc afterwards.
func CountWrites(rc *rest.Config) *Writes {
	w := &Writes{}
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { w.rt = rt; return w })
	return w
}

// Load is the number of writes so far.
func (w *Writes) Load() int64 { return w.n.Load() }

// RoundTrip counts r and sends it.
func (w *Writes) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && !strings.Contains(r.URL.RawQuery, "dryRun=") {
		w.n.Add(1)
	}
	return w.rt.RoundTrip(r)
}
