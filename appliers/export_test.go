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
