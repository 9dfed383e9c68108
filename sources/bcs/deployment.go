package bcs

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/gitpace/gitpace/sources/textenc"
)

// Parse decodes, validates and defaults one BCS v4 deployment read from file
// (file is only used in error messages). It also maps the deployment to a
// ReplicaSet once, so that every field gitpace cannot honour is reported
// here, before anything is applied.
//
// Errors are *FieldError values. A JSON syntax error is returned alone.
// Otherwise all decoding errors (wrong type, unknown or duplicate field, in
// file order) are returned together; if there were none, all validation and
// mapping errors are returned together (top-level fields, then spec, then
// policies, then containers and constraints). Several errors come as an
// errors.Join; FieldErrors unpacks them, errors.As finds the first.
//
// data may be UTF-8 with or without a byte order mark, or UTF-16 with one
// (see package textenc); a file that cannot be decoded is one *FieldError.
// Lines and columns count in the decoded text.
func Parse(file string, data []byte) (*Deployment, error) {
	data, _, err := textenc.ToUTF8(data)
	if err != nil {
		return nil, &FieldError{File: file, Msg: err.Error()}
	}
	root, err := parseTree(file, data)
	if err != nil {
		return nil, err
	}
	errs := &errList{file: file, spelled: map[string]string{}}
	d := &Deployment{file: file}
	dec := decoder{data: data, errs: errs}
	dec.decode(root, reflect.ValueOf(d).Elem(), "", "")
	if len(errs.errs) > 0 {
		return nil, errs.err()
	}
	d.validate(errs)
	if d.Spec.Template != nil {
		d.podTemplate(d.Metadata.Name, errs) // mapping errors, if any
	}
	if len(errs.errs) > 0 {
		return nil, errs.err()
	}
	return d, nil
}

// IsV4 reports whether data is a JSON object whose top-level apiVersion is
// "v4", the mark of a BCS manifest. It looks only as far as that key, so a
// BCS file with a syntax error further on is still routed to Parse, which
// reports the error.
func IsV4(data []byte) bool {
	data, _, err := textenc.ToUTF8(data)
	if err != nil {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false
		}
		if k, _ := key.(string); strings.EqualFold(k, "apiVersion") {
			val, err := dec.Token()
			return err == nil && val == "v4"
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

// Strategy is what the rollout engine needs of spec.strategy, defaulted.
type Strategy struct {
	// MaxSurge is the number of taskgroups created per update cycle (≥1).
	MaxSurge int32
	// MaxUnavailable is the number of taskgroups deleted per update cycle (≥1).
	MaxUnavailable int32
	// UpgradeDuration is the least time between the end of one cycle and the
	// start of the next.
	UpgradeDuration time.Duration
	// Order is vocab.OrderCreateFirst or vocab.OrderDeleteFirst.
	Order string
	// Manually pauses the rollout after every cycle.
	Manually bool
}

// Strategy returns the rolling-update strategy with BCS's defaults applied:
// maxSurge and maxUnavailable ≤ 0 mean 1. When both spellings of
// maxUnavailable are present Parse has checked that they agree.
func (d *Deployment) Strategy() Strategy {
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil {
		return Strategy{MaxSurge: 1, MaxUnavailable: 1}
	}
	var unavailable int32
	switch {
	case ru.MaxUnavailable != nil:
		unavailable = *ru.MaxUnavailable
	case ru.MaxUnavilable != nil:
		unavailable = *ru.MaxUnavilable
	}
	return Strategy{
		MaxSurge:        atLeastOne(ru.MaxSurge),
		MaxUnavailable:  atLeastOne(unavailable),
		UpgradeDuration: time.Duration(ru.UpgradeDuration) * time.Second,
		Order:           ru.RollingOrder,
		Manually:        ru.RollingManually,
	}
}

func atLeastOne(n int32) int32 {
	if n <= 0 {
		return 1
	}
	return n
}

// Instance is spec.instance, the number of pods wanted.
func (d *Deployment) Instance() int32 { return d.Spec.Instance }

// Name is metadata.name, the deployment's name.
func (d *Deployment) Name() string { return d.Metadata.Name }

// File is the file name given to Parse.
func (d *Deployment) File() string { return d.file }

// DefaultNamespace is the namespace BCS uses when metadata.namespace is empty.
const DefaultNamespace = "defaultGroup"

// Namespace is the Kubernetes namespace of the deployment: metadata.namespace
// (default "defaultGroup") lower-cased, e.g. "defaultgroup". Parse has checked
// that it is a DNS-1123 label.
func (d *Deployment) Namespace() string {
	ns := d.Metadata.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	return strings.ToLower(ns)
}
