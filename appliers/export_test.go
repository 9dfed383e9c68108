package appliers

import "context"

// CachedResourceVersion is the resourceVersion the live-object cache holds
// for ref ("" when it holds none, or keeps no cache), so that tests wait
// for a write to reach the cache instead of sleeping.
func (a *Applier) CachedResourceVersion(ctx context.Context, ref ObjectRef) string {
	m, err := a.Mapping(ref)
	c := a.liveCache()
	if err != nil || c == nil {
		return ""
	}
	lm, _ := c.lookup(ctx, m.Resource, ref.Namespace, ref.Name)
	if lm == nil {
		return ""
	}
	return lm.ResourceVersion
}

// CachedResources are the resources the cache has an informer for.
func (a *Applier) CachedResources() []string {
	c := a.liveCache()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for gvr := range c.informers {
		out = append(out, gvr.Resource+"."+gvr.Group)
	}
	return out
}
