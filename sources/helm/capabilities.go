package helm

import (
	"sort"
	"sync"
	"time"

	"k8s.io/client-go/discovery"
)

// ClusterCapabilities reads .Capabilities from a cluster's discovery
// endpoints: the server version and every served "group/version" and
// "group/version/Kind" (as Helm's own client builds them). A group whose
// discovery fails (an aggregated API that is down) is left out, as Helm
// does; no version at all is an error.
func ClusterCapabilities(d discovery.DiscoveryInterface) (*Capabilities, error) {
	v, err := d.ServerVersion()
	if err != nil {
		return nil, err
	}
	_, lists, err := d.ServerGroupsAndResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, err
	}
	seen := map[string]bool{}
	for _, l := range lists {
		seen[l.GroupVersion] = true
		for _, r := range l.APIResources {
			seen[l.GroupVersion+"/"+r.Kind] = true
		}
	}
	caps := &Capabilities{KubeVersion: v.GitVersion}
	for k := range seen {
		caps.APIVersions = append(caps.APIVersions, k)
	}
	sort.Strings(caps.APIVersions)
	return caps, nil
}

// CachedCapabilities asks a cluster for its capabilities at most once per
// TTL (a CRD installed since shows up after it).
type CachedCapabilities struct {
	d   discovery.DiscoveryInterface
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	at   time.Time
	last *Capabilities
}

// NewCachedCapabilities returns a cache over d's discovery.
func NewCachedCapabilities(d discovery.DiscoveryInterface, ttl time.Duration) *CachedCapabilities {
	return &CachedCapabilities{d: d, ttl: ttl, now: time.Now}
}

// Get returns the cluster's capabilities, the last ones read when the
// cluster cannot be asked now, or nil (Helm's defaults) when it never
// answered.
func (c *CachedCapabilities) Get() *Capabilities {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && c.now().Sub(c.at) < c.ttl {
		return c.last
	}
	caps, err := ClusterCapabilities(c.d)
	if err == nil {
		c.last, c.at = caps, c.now()
	}
	return c.last
}
