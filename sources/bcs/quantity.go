package bcs

import (
	"regexp"

	"k8s.io/apimachinery/pkg/api/resource"
)

var decimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// cpuQuantity maps a decimal number of cores ("0.5") to a quantity (500m).
func cpuQuantity(s, p string, errs *errList) (resource.Quantity, bool) {
	if !decimal.MatchString(s) {
		errs.add(p, "must be a positive decimal number of cores, got %q", s)
		return resource.Quantity{}, false
	}
	q := resource.MustParse(s)
	switch {
	case q.Sign() <= 0:
		errs.add(p, "must be a positive decimal number of cores, got %q", s)
		return resource.Quantity{}, false
	case !exactMillis(q):
		errs.add(p, "must be a multiple of 0.001 cores, got %q", s)
		return resource.Quantity{}, false
	}
	return resource.MustParse(q.String()), true
}

// exactMillis reports whether q is a whole number of thousandths.
func exactMillis(q resource.Quantity) bool {
	m := resource.NewMilliQuantity(q.MilliValue(), resource.DecimalSI)
	return m.Cmp(q) == 0
}

// memoryQuantity maps a decimal number of MB ("4096") to MiB (4096Mi, which
// serializes canonically as 4Gi); BCS hands the number to Mesos, whose unit
// is the MiB.
func memoryQuantity(s, p string, errs *errList) (resource.Quantity, bool) {
	if !decimal.MatchString(s) {
		errs.add(p, "must be a positive decimal number of MB, got %q", s)
		return resource.Quantity{}, false
	}
	q := resource.MustParse(s + "Mi")
	switch {
	case q.Cmp(resource.MustParse("4Mi")) < 0:
		errs.add(p, "must be at least 4 (MB): BCS sets no memory limit below that, got %q", s)
		return resource.Quantity{}, false
	case q.MilliValue()%1000 != 0:
		errs.add(p, "must be a whole number of bytes, got %q MB", s)
		return resource.Quantity{}, false
	}
	return resource.MustParse(q.String()), true
}
