package policies

import (
	"errors"
	"fmt"
	"path"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/sources/textenc"
)

// ConfigFile is the name of the policy file at the root of the watched path.
const ConfigFile = "gitpace.yaml"

// Config is the content of gitpace.yaml. The zero Config (no file) allows
// everything: no windows, no allow-lists, hold on failure.
//
// A Config with windows or allow-lists must come from ParseConfig, which
// validates it and compiles schedules and patterns.
type Config struct {
	// File names the file the Config was read from, for messages.
	File string `json:"-"`
	// Windows are sync windows (Argo CD semantics): when rollouts may start.
	Windows []Window `json:"windows,omitempty"`
	// OnFailure says what the agent does when a rollout fails.
	// ParseConfig sets it to FailureHold when the file leaves it out; the
	// zero Config's "" means hold too.
	OnFailure FailurePolicy `json:"onFailure,omitempty"`
	// Apps are per-app allow-lists. The first rule whose Match matches an
	// app's name applies to it; an app that no rule matches is not limited.
	Apps []AppRule `json:"apps,omitempty"`
}

// FailurePolicy is what the agent does after a failed rollout.
type FailurePolicy string

const (
	// FailureHold leaves the cluster as it is and holds the app until a
	// new revision arrives.
	FailureHold FailurePolicy = "hold"
	// FailureRevert lets the agent write a revert commit of the failed
	// revision to git.
	FailureRevert FailurePolicy = "revert"
)

// AppRule is an allow-list for the apps whose names match Match.
type AppRule struct {
	// Match is a path.Match pattern on app names ("payments/*"); "*" does
	// not cross "/".
	Match string `json:"match"`
	// Namespaces are path.Match patterns of the namespaces the app may
	// write to. Empty allows every namespace and cluster-scoped objects; a
	// non-empty list allows no cluster-scoped object except a Namespace
	// whose name it allows.
	Namespaces []string `json:"namespaces,omitempty"`
	// Kinds are the kinds the app may write, each "Kind" (any API group)
	// or "group/Kind" ("apps/Deployment"; the core group is "core"), with
	// path.Match wildcards in either part ("*.example.com/*"). Versions
	// are not part of a rule. Empty allows every kind.
	Kinds []string `json:"kinds,omitempty"`

	kinds []kindPattern
}

// ConfigFromFiles parses ConfigFile from a revision's files (as in
// sources.Snapshot.Files), and returns the zero Config when there is none.
func ConfigFromFiles(files map[string][]byte) (*Config, error) {
	data, ok := files[ConfigFile]
	if !ok {
		return &Config{}, nil
	}
	return ParseConfig(ConfigFile, data)
}

// ParseConfig decodes and validates a policy file strictly: an unknown or
// duplicate field, a bad schedule, duration, time zone or pattern is an
// error that names file and field path ("gitpace.yaml: windows[1].schedule: ...").
// All problems are reported, joined.
//
// data may be UTF-8 with or without a byte order mark, or UTF-16 with one
// (package textenc); a second YAML document in the file is an error.
func ParseConfig(file string, data []byte) (*Config, error) {
	data, err := textenc.ReadYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	cfg := &Config{}
	strict, err := kjson.UnmarshalStrict(j, cfg, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var errs []error
	for _, e := range strict {
		errs = append(errs, fmt.Errorf("%s: %w", file, e)) // e.g. unknown field "windows[0].foo"
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.File = file
	for _, e := range cfg.compile() {
		errs = append(errs, fmt.Errorf("%s: %w", file, e))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// compile validates c and fills in the compiled schedules and patterns.
// Each error starts with its field path.
func (c *Config) compile() []error {
	var errs []error
	for i := range c.Windows {
		errs = append(errs, c.Windows[i].compile(fmt.Sprintf("windows[%d]", i))...)
	}
	switch c.OnFailure {
	case "":
		c.OnFailure = FailureHold
	case FailureHold, FailureRevert:
	default:
		errs = append(errs, fmt.Errorf("onFailure: must be %q or %q, got %q", FailureHold, FailureRevert, c.OnFailure))
	}
	for i := range c.Apps {
		errs = append(errs, c.Apps[i].compile(fmt.Sprintf("apps[%d]", i))...)
	}
	return errs
}

func (r *AppRule) compile(field string) []error {
	var errs []error
	if r.Match == "" {
		errs = append(errs, fmt.Errorf("%s.match: required", field))
	} else if err := checkPattern(r.Match); err != nil {
		errs = append(errs, fmt.Errorf("%s.match: %w", field, err))
	}
	errs = append(errs, checkPatterns(field+".namespaces", r.Namespaces)...)
	r.kinds = nil
	for i, k := range r.Kinds {
		kp, err := parseKindPattern(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.kinds[%d]: %w", field, i, err))
			continue
		}
		r.kinds = append(r.kinds, kp)
	}
	return errs
}

// checkPatterns validates a list of path.Match patterns.
func checkPatterns(field string, patterns []string) []error {
	var errs []error
	for i, p := range patterns {
		if err := checkPattern(p); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
		}
	}
	return errs
}

func checkPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("bad pattern %q: %w", p, err)
	}
	return nil
}

// matchAny reports whether name matches one of the (validated) patterns.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
