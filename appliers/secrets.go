package appliers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
)

// Secret values never leave the cluster through gitpace. Diffs show, for a
// Secret, each key with a mask instead of its value, so that a reviewer sees
// which keys are added, changed or removed and nothing else (as `flux diff`
// and Argo CD do). The masks, as they appear in a unified diff:
//
//	   PASSWORD: '***'                 unchanged (same mask on both sides: no diff line)
//	-  TOKEN: '*** (old value)'        changed
//	+  TOKEN: '*** (changed)'
//	+  API_KEY: '*** (added)'          added
//	-  USER: '*** (removed)'           removed
//
// Keys given in stringData are shown under data, where the API server
// stores them (it merges stringData into data, stringData winning). The
// annotation kubectl.kubernetes.io/last-applied-configuration, which kubectl
// fills with the whole object, is shown as MaskLastApplied. Errors about a
// Secret have its values replaced by "***" (RedactSecretValues).
const (
	MaskUnchanged   = "***"
	MaskOld         = "*** (old value)"
	MaskChanged     = "*** (changed)"
	MaskAdded       = "*** (added)"
	MaskRemoved     = "*** (removed)"
	MaskLastApplied = "*** (hidden: kubectl's copy of the Secret)"
)

// LastAppliedAnnotation is where `kubectl apply` (client-side) keeps the
// object it last applied, values included; gitpace removes it when it takes
// an object over (takeover.go).
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// IsSecret reports whether ref is a core/v1 Secret.
func IsSecret(ref ObjectRef) bool { return ref.Group == "" && ref.Kind == "Secret" }

// MaskSecrets returns copies of the two sides of a Secret's diff (either may
// be nil: created, pruned) with every value of data and stringData replaced
// by a mask saying how the key changed from live to desired (see the
// constants above), stringData folded into data, and the last-applied
// annotation masked. Values are compared decoded: the same bytes given in
// data (base64) on one side and in stringData on the other are unchanged.
// A data that is not a map is masked whole. Objects that are not Secrets
// are returned as given.
func MaskSecrets(live, desired *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured) {
	isSecret := func(u *unstructured.Unstructured) bool { return u != nil && IsSecret(RefOf(u)) }
	if !isSecret(live) && !isSecret(desired) {
		return live, desired
	}
	lv, lok := secretValues(live)
	dv, dok := secretValues(desired)
	var ml, md any
	if lok && dok && (lv != nil || dv != nil) {
		l, d := map[string]any{}, map[string]any{}
		for k, v := range lv {
			w, ok := dv[k]
			switch {
			case !ok:
				l[k] = MaskRemoved
			case v == w:
				l[k], d[k] = MaskUnchanged, MaskUnchanged
			default:
				l[k], d[k] = MaskOld, MaskChanged
			}
		}
		for k := range dv {
			if _, ok := lv[k]; !ok {
				d[k] = MaskAdded
			}
		}
		ml, md = l, d
		if lv == nil {
			ml = nil
		}
		if dv == nil {
			md = nil
		}
	} else {
		ml, md = maskAll(lv, lok, MaskRemoved), maskAll(dv, dok, MaskAdded)
	}
	return maskedCopy(live, ml), maskedCopy(desired, md)
}

// maskAll masks every key with mask; a side whose values could not be read
// (ok false: data or stringData not a map) gets a single mask for all.
func maskAll(values map[string]string, ok bool, mask string) any {
	if values == nil {
		return nil
	}
	if !ok {
		return mask
	}
	m := map[string]any{}
	for k := range values {
		m[k] = mask
	}
	return m
}

// secretValues reads a Secret's effective values, as the server stores
// them: data decoded from base64 (kept as given when it is not valid
// base64), overlaid by stringData. It returns nil, true for nil or a Secret
// with neither field, and a non-nil map with false when either field is not
// a map of keys.
func secretValues(u *unstructured.Unstructured) (map[string]string, bool) {
	if u == nil {
		return nil, true
	}
	data, hasData := u.Object["data"]
	sdata, hasString := u.Object["stringData"]
	if !hasData && !hasString {
		return nil, true
	}
	out := map[string]string{}
	ok := true
	for _, f := range []struct {
		v      any
		has    bool
		base64 bool
	}{{data, hasData, true}, {sdata, hasString, false}} {
		if !f.has || f.v == nil {
			continue
		}
		m, isMap := f.v.(map[string]any)
		if !isMap {
			ok = false
			continue
		}
		for k, v := range m {
			s := scalarText(v)
			if f.base64 {
				if b, err := base64.StdEncoding.DecodeString(s); err == nil {
					s = string(b)
				}
			}
			out[k] = s
		}
	}
	return out, ok
}

// maskedCopy is a copy of u with data set to masks (a map of masks, or one
// mask for all; removed when nil), stringData removed and the last-applied
// annotation masked.
func maskedCopy(u *unstructured.Unstructured, masks any) *unstructured.Unstructured {
	if u == nil {
		return nil
	}
	c := u.DeepCopy()
	delete(c.Object, "stringData")
	delete(c.Object, "data")
	if masks != nil {
		c.Object["data"] = masks
	}
	if ann := c.GetAnnotations(); ann != nil {
		if _, ok := ann[LastAppliedAnnotation]; ok {
			ann[LastAppliedAnnotation] = MaskLastApplied
			c.SetAnnotations(ann)
		}
	}
	return c
}

// scalarText is a data or stringData value as text: strings as they are,
// anything else (a number or bool that YAML made of an unquoted value) as
// Go prints it, which is how it appears in the API server's errors.
func scalarText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// redactedMask replaces a Secret value in text.
const redactedMask = "***"

// shortValue is the length below which a value is replaced only where it
// stands alone (not inside a longer run of letters and digits): a value "1"
// must not turn every "1" of a message into "***".
const shortValue = 6

// RedactSecretValues returns text with every value of the Secrets among
// objs replaced by "***": each value of data and stringData in the forms a
// message can hold it (plain, base64 with and without padding, the base64
// of the base64 that data holds, JSON- and Go-quoted, each line of a
// multi-line value), and the last-applied annotation with the values in it.
// Objects that are not Secrets add nothing. Longer values are replaced
// first; values shorter than 6 bytes only where they stand alone.
func RedactSecretValues(text string, objs ...*unstructured.Unstructured) string {
	return redact(text, secretNeedles(objs...))
}

// RedactSecretError is RedactSecretValues for an error. The result keeps
// what callers classify errors by: when err wraps an API status (an
// *apierrors.StatusError), the result wraps a copy of it whose message,
// causes and fields are redacted too, so apierrors.IsInvalid and the like
// still answer, and errors.As finds no unredacted text. err itself is
// returned when it holds none of the values.
func RedactSecretError(err error, objs ...*unstructured.Unstructured) error {
	needles := secretNeedles(objs...)
	if err == nil || len(needles) == 0 {
		return err
	}
	msg := redact(err.Error(), needles)
	var status error
	var as apierrors.APIStatus
	changed := msg != err.Error()
	if errors.As(err, &as) {
		orig := as.Status()
		st := *orig.DeepCopy()
		st.Message = redact(st.Message, needles)
		if st.Details != nil {
			st.Details.Name = redact(st.Details.Name, needles)
			for i := range st.Details.Causes {
				st.Details.Causes[i].Message = redact(st.Details.Causes[i].Message, needles)
				st.Details.Causes[i].Field = redact(st.Details.Causes[i].Field, needles)
			}
		}
		changed = changed || !reflect.DeepEqual(st, orig)
		status = &apierrors.StatusError{ErrStatus: st}
	}
	if !changed {
		return err
	}
	return &redactedError{msg: msg, status: status}
}

// redactedError is an error whose text had Secret values replaced; it
// unwraps to the redacted API status only, never to the original error.
type redactedError struct {
	msg    string
	status error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.status }

// secretNeedles lists the texts to redact for objs, longest first.
func secretNeedles(objs ...*unstructured.Unstructured) []string {
	set := map[string]bool{}
	for _, u := range objs {
		if u == nil || !IsSecret(RefOf(u)) {
			continue
		}
		addSecretNeedles(set, u.Object)
		if la, ok := u.GetAnnotations()[LastAppliedAnnotation]; ok {
			addNeedle(set, la)
			var m map[string]any
			if json.Unmarshal([]byte(la), &m) == nil {
				addSecretNeedles(set, m)
			}
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) > len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// addSecretNeedles adds the values of data and stringData of the Secret
// object m in every form they can take in a message.
func addSecretNeedles(set map[string]bool, m map[string]any) {
	add := func(plain string) {
		b64 := base64.StdEncoding.EncodeToString([]byte(plain))
		for _, s := range []string{plain, b64, base64.RawStdEncoding.EncodeToString([]byte(plain)),
			base64.StdEncoding.EncodeToString([]byte(b64))} {
			addNeedle(set, s)
		}
		if strings.Contains(plain, "\n") {
			for line := range strings.Lines(plain) {
				addNeedle(set, strings.TrimRight(line, "\r\n"))
			}
		}
	}
	if data, ok := m["data"].(map[string]any); ok {
		for _, v := range data {
			s := scalarText(v)
			addNeedle(set, s)
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				add(string(b))
			} else {
				add(s)
			}
		}
	} else if v, ok := m["data"]; ok && v != nil {
		addNeedle(set, scalarText(v))
	}
	if sdata, ok := m["stringData"].(map[string]any); ok {
		for _, v := range sdata {
			add(scalarText(v))
		}
	} else if v, ok := m["stringData"]; ok && v != nil {
		addNeedle(set, scalarText(v))
	}
}

// addNeedle adds s and its JSON- and Go-quoted forms (without the quotes),
// as a value appears inside a quoted string of a message.
func addNeedle(set map[string]bool, s string) {
	if strings.TrimSpace(s) == "" {
		return
	}
	set[s] = true
	if j, err := json.Marshal(s); err == nil {
		set[string(j[1:len(j)-1])] = true
	}
	q := strconv.Quote(s)
	set[q[1:len(q)-1]] = true
}

// redact replaces each needle (longest first) in text with redactedMask.
func redact(text string, needles []string) string {
	for _, n := range needles {
		if len(n) >= shortValue {
			text = strings.ReplaceAll(text, n, redactedMask)
			continue
		}
		text = replaceStandalone(text, n)
	}
	return text
}

// replaceStandalone replaces n in text where the bytes next to it are not
// letters or digits.
func replaceStandalone(text, n string) string {
	var b strings.Builder
	for {
		i := strings.Index(text, n)
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		end := i + len(n)
		if (i > 0 && isAlnum(text[i-1])) || (end < len(text) && isAlnum(text[end])) {
			b.WriteString(text[:i+1])
			text = text[i+1:]
			continue
		}
		b.WriteString(text[:i])
		b.WriteString(redactedMask)
		text = text[end:]
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// secretsKey keys the Secrets a request's context carries (withSecrets).
type secretsKey struct{}

// withSecrets returns ctx carrying the Secrets among objs (nil and other
// kinds are left out), added to those ctx carries already, so that warnings
// the API server returns for a request about them are redacted.
func withSecrets(ctx context.Context, objs ...*unstructured.Unstructured) context.Context {
	have, _ := ctx.Value(secretsKey{}).([]*unstructured.Unstructured)
	all := have
	for _, o := range objs {
		if o != nil && IsSecret(RefOf(o)) {
			all = append(all[:len(all):len(all)], o)
		}
	}
	if len(all) == len(have) {
		return ctx
	}
	return context.WithValue(ctx, secretsKey{}, all)
}

// secretWarnings redacts the values of the Secrets a request's context
// carries from the warnings the API server returns (an admission policy
// with validationActions Warn may print them), then hands them on.
type secretWarnings struct {
	next rest.WarningHandlerWithContext
}

func (w secretWarnings) HandleWarningHeaderWithContext(ctx context.Context, code int, agent, message string) {
	if objs, ok := ctx.Value(secretsKey{}).([]*unstructured.Unstructured); ok {
		message = RedactSecretValues(message, objs...)
	}
	w.next.HandleWarningHeaderWithContext(ctx, code, agent, message)
}

// withSecretWarnings returns a copy of cfg whose warnings go through
// secretWarnings to the handler cfg had (client-go's default, which logs
// them, when none).
func withSecretWarnings(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	var next rest.WarningHandlerWithContext = rest.WarningLogger{}
	switch {
	case cfg.WarningHandlerWithContext != nil:
		next = cfg.WarningHandlerWithContext
	case cfg.WarningHandler != nil:
		next = warningsWithoutContext{cfg.WarningHandler}
	}
	cfg.WarningHandler, cfg.WarningHandlerWithContext = nil, secretWarnings{next: next}
	return cfg
}

type warningsWithoutContext struct{ rest.WarningHandler }

func (w warningsWithoutContext) HandleWarningHeaderWithContext(_ context.Context, code int, agent, message string) {
	w.HandleWarningHeader(code, agent, message)
}
