package bcs

import (
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

// Constraint operators.
const (
	opUnique     = "UNIQUE"
	opMaxPer     = "MAXPER"
	opCluster    = "CLUSTER"
	opLike       = "LIKE"
	opUnlike     = "UNLIKE"
	opGroupBy    = "GROUPBY"
	opExclude    = "EXCLUDE"
	opGreater    = "GREATER"
	opToleration = "TOLERATION"
)

// LabelHostname is the node label BCS's "hostname" and "InnerIP" attributes
// map to.
const LabelHostname = "kubernetes.io/hostname"

// maxNodeTerms caps the node-affinity terms that ORed unionData may multiply into.
const maxNodeTerms = 32

// requirements is one alternative: node requirements that must all hold.
type requirements []corev1.NodeSelectorRequirement

// placement is what one unionData maps to.
type placement struct {
	node        requirements // nil: no node requirement
	antiAllOf   []corev1.PodAffinityTerm
	spread      []corev1.TopologySpreadConstraint
	tolerations []corev1.Toleration
}

func (p placement) podLevel() bool {
	return len(p.antiAllOf)+len(p.spread)+len(p.tolerations) > 0
}

// mapConstraint maps constraint.intersectionItem to affinity, topology spread
// and tolerations. Items are ANDed and each item's unionData ORed, so node
// requirements are multiplied out into node-affinity terms (which Kubernetes
// ORs). Pod-level placements (UNIQUE, MAXPER, GROUPBY, EXCLUDE, TOLERATION)
// cannot be ORed and must be alone in their item.
func (d *Deployment) mapConstraint(spec *corev1.PodSpec, app string, errs *errList) {
	if d.Constraint == nil {
		return
	}
	terms := []requirements{nil}
	var anti []corev1.PodAffinityTerm
	for i, item := range d.Constraint.IntersectionItem {
		if item == nil {
			continue // BCS skips null items
		}
		ip := index("constraint.intersectionItem", i)
		var union []*ConstraintData
		for _, ud := range item.UnionData {
			if ud != nil {
				union = append(union, ud)
			}
		}
		if len(union) == 0 {
			errs.add(join(ip, "unionData"), "at least one entry is required (BCS places no pod for an empty item)")
			continue
		}
		var alts []requirements
		for j, ud := range item.UnionData {
			if ud == nil {
				continue
			}
			up := index(join(ip, "unionData"), j)
			pl, ok := d.mapUnionData(ud, app, up, errs)
			if !ok {
				continue
			}
			if len(union) > 1 && (pl.podLevel() || pl.node == nil) {
				errs.add(join(up, "operate"), "%s cannot be ORed with other unionData: Kubernetes can only OR node requirements; put it in an IntersectionItem of its own", ud.Operate)
				continue
			}
			anti = append(anti, pl.antiAllOf...)
			spec.TopologySpreadConstraints = append(spec.TopologySpreadConstraints, pl.spread...)
			spec.Tolerations = append(spec.Tolerations, pl.tolerations...)
			if pl.node != nil {
				alts = append(alts, pl.node)
			}
		}
		if len(alts) > 0 {
			terms = multiply(terms, alts)
			if len(terms) > maxNodeTerms {
				errs.add(ip, "the ORed unionData multiply into more than %d node-affinity terms", maxNodeTerms)
				return
			}
		}
	}
	if len(anti) > 0 {
		spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: anti}}
	}
	if len(terms[0]) > 0 {
		if spec.Affinity == nil {
			spec.Affinity = &corev1.Affinity{}
		}
		sel := &corev1.NodeSelector{}
		for _, t := range terms {
			sel.NodeSelectorTerms = append(sel.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: t})
		}
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: sel}
	}
}

// multiply ANDs the terms with the ORed alternatives.
func multiply(terms, alts []requirements) []requirements {
	var out []requirements
	for _, t := range terms {
		for _, a := range alts {
			out = append(out, append(append(requirements{}, t...), a...))
		}
	}
	return out
}

// nodeKey maps a BCS attribute name to a node label key: "hostname" and
// "InnerIP" (any case) to kubernetes.io/hostname, anything else to the node
// label of the same name.
func nodeKey(name string) string {
	if strings.EqualFold(name, "hostname") || strings.EqualFold(name, "InnerIP") {
		return LabelHostname
	}
	return name
}

func (d *Deployment) mapUnionData(ud *ConstraintData, app, p string, errs *errList) (placement, bool) {
	key := nodeKey(ud.Name)
	if ud.Operate != opExclude {
		if ud.Name == "" {
			errs.add(join(p, "name"), "required")
			return placement{}, false
		}
		if msgs := validation.IsQualifiedName(key); len(msgs) > 0 {
			errs.add(join(p, "name"), "%q is not a valid node label key: %s", ud.Name, strings.Join(msgs, "; "))
			return placement{}, false
		}
	}
	switch ud.Operate {
	case opUnique:
		return d.unique(key), true
	case opMaxPer:
		v, ok := textValue(ud, p, errs)
		if !ok {
			return placement{}, false
		}
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			errs.add(join(p, "text.value"), "must be an integer, got %q", v)
		case n < 1:
			errs.add(join(p, "text.value"), "must be >= 1 (BCS places no pod under MAXPER %d), got %d", n, n)
		case n > 1:
			errs.add(join(p, "text.value"), "MAXPER %d has no mapping: Kubernetes cannot cap pods per %s value above 1 (MAXPER 1 = UNIQUE is supported)", n, ud.Name)
		default:
			return d.unique(key), true
		}
		return placement{}, false
	case opCluster:
		vals, ok := values(ud, p, errs)
		if !ok || !labelValues(vals, valuesPath(ud, p), errs) {
			return placement{}, false
		}
		return placement{node: requirements{{Key: key, Operator: corev1.NodeSelectorOpIn, Values: vals}}}, true
	case opLike, opUnlike:
		vals, ok := expandValues(ud, p, errs)
		if !ok {
			return placement{}, false
		}
		if ud.Operate == opLike {
			return placement{node: requirements{{Key: key, Operator: corev1.NodeSelectorOpIn, Values: vals}}}, true
		}
		notIn := requirements{{Key: key, Operator: corev1.NodeSelectorOpNotIn, Values: vals}}
		if key != LabelHostname {
			// BCS fails a node without the attribute; NotIn alone would accept it.
			notIn = append(requirements{{Key: key, Operator: corev1.NodeSelectorOpExists}}, notIn...)
		}
		return placement{node: notIn}, true
	case opGroupBy:
		vals, ok := setValue(ud, p, errs)
		if !ok || !labelValues(vals, join(p, "set.item"), errs) {
			return placement{}, false
		}
		return placement{
			node: requirements{{Key: key, Operator: corev1.NodeSelectorOpIn, Values: vals}},
			spread: []corev1.TopologySpreadConstraint{{
				MaxSkew:           1,
				TopologyKey:       key,
				WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{vocab.LabelDeployment: d.Metadata.Name, vocab.LabelApplication: app}},
			}},
		}, true
	case opExclude:
		return d.exclude(ud, p, errs)
	case opGreater:
		if !hasType(ud, p, errs, ValueScalar) {
			return placement{}, false
		}
		if ud.Scalar == nil {
			errs.add(join(p, "scalar"), "required for type 1")
			return placement{}, false
		}
		v := ud.Scalar.Value
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			errs.add(join(p, "scalar.value"), "must be a whole number (Kubernetes compares node labels as integers), got %v", v)
			return placement{}, false
		}
		return placement{node: requirements{{Key: key, Operator: corev1.NodeSelectorOpGt, Values: []string{strconv.FormatInt(int64(v), 10)}}}}, true
	case opToleration:
		v, ok := textValue(ud, p, errs)
		if !ok || !labelValues([]string{v}, join(p, "text.value"), errs) {
			return placement{}, false
		}
		// BCS taints are NoSchedule taints "key=value".
		return placement{tolerations: []corev1.Toleration{{Key: ud.Name, Operator: corev1.TolerationOpEqual, Value: v, Effect: corev1.TaintEffectNoSchedule}}}, true
	default:
		errs.add(join(p, "operate"), "unknown operator %q (want one of %s)", ud.Operate,
			strings.Join([]string{opUnique, opMaxPer, opCluster, opLike, opUnlike, opGroupBy, opExclude, opGreater, opToleration}, ", "))
		return placement{}, false
	}
}

// unique keeps pods of the deployment (old and new applications together) on
// distinct values of key. BCS fails a node without the attribute; the
// anti-affinity alone would accept it, hence Exists.
func (d *Deployment) unique(key string) placement {
	pl := placement{antiAllOf: []corev1.PodAffinityTerm{{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{vocab.LabelDeployment: d.Metadata.Name}},
		TopologyKey:   key,
	}}}
	if key != LabelHostname {
		pl.node = requirements{{Key: key, Operator: corev1.NodeSelectorOpExists}}
	}
	return pl
}

// exclude keeps pods off hosts running pods, in any namespace, that carry one
// of the set's "key:value" labels, except pods of this deployment.
func (d *Deployment) exclude(ud *ConstraintData, p string, errs *errList) (placement, bool) {
	items, ok := setValue(ud, p, errs)
	if !ok {
		return placement{}, false
	}
	var pl placement
	for i, item := range items {
		ipath := index(join(p, "set.item"), i)
		k, v, found := strings.Cut(item, ":")
		if !found {
			errs.add(ipath, `must be "key:value", got %q`, item)
			ok = false
			continue
		}
		if len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			errs.add(ipath, "%q is not a valid Kubernetes label", item)
			ok = false
			continue
		}
		pl.antiAllOf = append(pl.antiAllOf, corev1.PodAffinityTerm{
			LabelSelector: &metav1.LabelSelector{
				MatchLabels:      map[string]string{k: v},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: vocab.LabelDeployment, Operator: metav1.LabelSelectorOpNotIn, Values: []string{d.Metadata.Name}}},
			},
			NamespaceSelector: &metav1.LabelSelector{},
			TopologyKey:       LabelHostname,
		})
	}
	return pl, ok
}

func hasType(ud *ConstraintData, p string, errs *errList, want ...int32) bool {
	for _, w := range want {
		if ud.Type == w {
			return true
		}
	}
	names := map[int32]string{ValueScalar: "1 (scalar)", ValueRange: "2 (ranges)", ValueText: "3 (text)", ValueSet: "4 (set)"}
	var ws []string
	for _, w := range want {
		ws = append(ws, names[w])
	}
	errs.add(join(p, "type"), "must be %s for %s, got %d", strings.Join(ws, " or "), ud.Operate, ud.Type)
	return false
}

func textValue(ud *ConstraintData, p string, errs *errList) (string, bool) {
	if !hasType(ud, p, errs, ValueText) {
		return "", false
	}
	if ud.Text == nil {
		errs.add(join(p, "text"), "required for type 3")
		return "", false
	}
	return ud.Text.Value, true
}

func setValue(ud *ConstraintData, p string, errs *errList) ([]string, bool) {
	if !hasType(ud, p, errs, ValueSet) {
		return nil, false
	}
	if ud.Set == nil || len(ud.Set.Item) == 0 {
		errs.add(join(p, "set.item"), "at least one value is required")
		return nil, false
	}
	return ud.Set.Item, true
}

// values is the text (type 3) or the set (type 4) of ud.
func values(ud *ConstraintData, p string, errs *errList) ([]string, bool) {
	if !hasType(ud, p, errs, ValueText, ValueSet) {
		return nil, false
	}
	if ud.Type == ValueText {
		v, ok := textValue(ud, p, errs)
		return []string{v}, ok
	}
	return setValue(ud, p, errs)
}

// expandValues expands LIKE/UNLIKE patterns into the values they match.
func expandValues(ud *ConstraintData, p string, errs *errList) ([]string, bool) {
	pats, ok := values(ud, p, errs)
	if !ok {
		return nil, false
	}
	var out []string
	for i, pat := range pats {
		pp := join(p, "text.value")
		if ud.Type == ValueSet {
			pp = index(join(p, "set.item"), i)
		}
		vals, err := expandPattern(pat)
		if err != nil {
			errs.add(pp, "%s %q has no node-affinity mapping: %v (or use CLUSTER with the exact values)", ud.Operate, pat, err)
			return nil, false
		}
		if !labelValues(vals, pp, errs) {
			return nil, false
		}
		for _, v := range vals {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	if len(out) > maxPatternValues {
		errs.add(p, "%s patterns match more than %d values", ud.Operate, maxPatternValues)
		return nil, false
	}
	return out, true
}

func labelValues(vals []string, p string, errs *errList) bool {
	for _, v := range vals {
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			errs.add(p, "%q can never be a node label value: %s", v, strings.Join(msgs, "; "))
			return false
		}
	}
	return true
}

// valuesPath is where the values of ud are: text.value or set.item.
func valuesPath(ud *ConstraintData, p string) string {
	if ud.Type == ValueSet {
		return join(p, "set.item")
	}
	return join(p, "text.value")
}
