package policies

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
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
	// Apps are per-app rules: allow-lists and settings. A rule with Path
	// applies to the app it declares (named Name); otherwise the first rule
	// whose Match matches an app's name applies to it. An app that no rule
	// matches is not limited and has default settings.
	Apps []AppRule `json:"apps,omitempty"`
	// Waves roll a revision that changes many apps out wave by wave (see
	// Wave); apps that no wave matches are not held by them.
	Waves []Wave `json:"waves,omitempty"`
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

// AppRule is an allow-list and the settings for the apps whose names match
// Match, or for the one app a Path rule declares. Exactly one of Match and
// Path is set.
type AppRule struct {
	// Match is a path.Match pattern on app names ("payments/*"); "*" does
	// not cross "/".
	Match string `json:"match,omitempty"`
	// Path declares an app discovery cannot guess: the directory (relative
	// to the watched path, slash-separated, no "..") is rendered as an app
	// named Name, with this rule's settings. Several rules may name one
	// directory (one chart rendered twice with different values); a
	// directory that a Path rule names is not discovered on its own.
	Path string `json:"path,omitempty"`
	// Name is the name of the app a Path rule declares (default: Path). It
	// is a slash path like a discovered app's name, unique among apps.
	// Only with Path.
	Name string `json:"name,omitempty"`

	AppSettings // inlined: namespace, createNamespace, helm
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
	// DependsOn names apps whose newest revision must be Healthy before a
	// new revision of this app is applied, as Flux's Kustomization
	// dependsOn: drift correction does not wait, a cycle is an error.
	DependsOn []string `json:"dependsOn,omitempty"`

	kinds []kindPattern
}

// AppSettings are how gitpace renders an app; the zero value renders it as
// discovery finds it.
type AppSettings struct {
	// Namespace is the namespace given to the app's namespaced objects that
	// name none (a DNS-1123 label). For a kustomize app it is set as the
	// kustomization's own namespace would be only where objects have none;
	// for a Helm app it is the release namespace (.Release.Namespace).
	// Empty: objects without a namespace go to the agent's default.
	Namespace string `json:"namespace,omitempty"`
	// CreateNamespace adds a Namespace object named Namespace to the app
	// (when the app does not declare it), owned and pruned like the app's
	// other objects. Requires Namespace.
	CreateNamespace bool `json:"createNamespace,omitempty"`
	// Helm are the settings of a Helm app (a directory holding Chart.yaml);
	// an error on an app of another kind.
	Helm *HelmSettings `json:"helm,omitempty"`
}

// HelmSettings are `helm template`'s release name, -f and --set-json for
// one app.
type HelmSettings struct {
	// ReleaseName is .Release.Name (default: the app's name with "/"
	// replaced by "-"); Helm's rule: at most 53 characters, a DNS-1123
	// subdomain.
	ReleaseName string `json:"releaseName,omitempty"`
	// ValuesFiles are values files, slash paths relative to the app's
	// directory ("values-prod.yaml", "../values/prod.yaml"), merged in
	// order over the chart's values.yaml as `helm template -f` merges them.
	// They must stay inside the watched path.
	ValuesFiles []string `json:"valuesFiles,omitempty"`
	// Values are merged last, over the values files.
	Values map[string]interface{} `json:"values,omitempty"`
}

// ConfigFromFiles parses ConfigFile from a revision's files (as in
// sources.Snapshot.Files, relative to the watched path), and returns the
// zero Config when there is none. dir is the watched path relative to the
// repository root (sources.Snapshot.Path, "" for the root): errors and
// Config.File name the file as the user finds it in the repository
// ("apps/gitpace.yaml: windows[1].schedule: ..."), as manifest errors
// name theirs.
func ConfigFromFiles(files map[string][]byte, dir string) (*Config, error) {
	data, ok := files[ConfigFile]
	if !ok {
		return &Config{}, nil
	}
	return ParseConfig(path.Join(dir, ConfigFile), data)
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
		return nil, fmt.Errorf("%s: %w", file, textenc.TypeError(err))
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
	declared := map[string]int{}
	for i := range c.Apps {
		errs = append(errs, c.Apps[i].compile(fmt.Sprintf("apps[%d]", i))...)
		if r := c.Apps[i]; r.Path != "" {
			if j, dup := declared[r.AppName()]; dup {
				errs = append(errs, fmt.Errorf("apps[%d].name: app %q is already declared by apps[%d]; give each path rule its own name", i, r.AppName(), j))
			}
			declared[r.AppName()] = i
		}
	}
	for i := range c.Waves {
		errs = append(errs, c.Waves[i].compile(fmt.Sprintf("waves[%d]", i))...)
	}
	return errs
}

func (r *AppRule) compile(field string) []error {
	var errs []error
	switch {
	case r.Match == "" && r.Path == "":
		errs = append(errs, fmt.Errorf("%s.match: required (or path, to declare an app)", field))
	case r.Match != "" && r.Path != "":
		errs = append(errs, fmt.Errorf("%s: match and path exclude each other (path declares one app, match selects discovered ones)", field))
	case r.Match != "":
		if err := checkPattern(r.Match); err != nil {
			errs = append(errs, fmt.Errorf("%s.match: %w", field, err))
		}
		if r.Name != "" {
			errs = append(errs, fmt.Errorf("%s.name: only with path (a match rule selects apps, it does not name one)", field))
		}
	default:
		if err := checkAppPath(r.Path); err != nil {
			errs = append(errs, fmt.Errorf("%s.path: %w", field, err))
		}
		if r.Name != "" {
			if err := checkAppPath(r.Name); err != nil {
				errs = append(errs, fmt.Errorf("%s.name: %w", field, err))
			}
		}
	}
	errs = append(errs, r.AppSettings.check(field)...)
	for i, d := range r.DependsOn {
		if err := checkAppPath(d); err != nil {
			errs = append(errs, fmt.Errorf("%s.dependsOn[%d]: an app name: %w", field, i, err))
		}
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

// AppName is the name of the app a Path rule declares: Name, or Path.
func (r *AppRule) AppName() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Path
}

// Settings returns the settings for app: those of the Path rule declaring
// it, or else of the first Match rule matching it; the zero AppSettings
// when none does. c may be nil.
func (c *Config) Settings(app string) AppSettings {
	if _, r := c.ruleFor(app); r != nil {
		return r.AppSettings
	}
	return AppSettings{}
}

// Rule returns the rule for app and its index in Apps: the Path rule
// declaring it, or else the first Match rule matching it; (-1, nil) when
// none does. c may be nil.
func (c *Config) Rule(app string) (int, *AppRule) { return c.ruleFor(app) }

// Declared returns the Path rules, in file order: the apps gitpace.yaml
// declares. c may be nil.
func (c *Config) Declared() []AppRule {
	if c == nil {
		return nil
	}
	var out []AppRule
	for _, r := range c.Apps {
		if r.Path != "" {
			out = append(out, r)
		}
	}
	return out
}

// checkAppPath accepts a clean relative slash path without "." or ".."
// elements or hidden parts: an app directory or name.
func checkAppPath(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	if strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return fmt.Errorf("%q: write a clean path relative to the watched path (no leading \"/\", \"./\" or trailing \"/\")", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, ".") {
			return fmt.Errorf("%q: no \".\", \"..\" or hidden elements", p)
		}
	}
	return nil
}

// check validates settings; field is the rule's path ("apps[0]").
// Namespace is a DNS-1123 label (the rule of Namespace names, k8s.io
// apimachinery validation.IsDNS1123Label); a Helm release name at most 53
// characters of a DNS-1123 subdomain (Helm's chartutil.ValidateReleaseName).
func (s *AppSettings) check(field string) []error {
	var errs []error
	if s.Namespace != "" {
		for _, m := range validation.IsDNS1123Label(s.Namespace) {
			errs = append(errs, fmt.Errorf("%s.namespace: %q: %s", field, s.Namespace, m))
		}
	}
	if s.CreateNamespace && s.Namespace == "" {
		errs = append(errs, fmt.Errorf("%s.createNamespace: needs namespace", field))
	}
	if h := s.Helm; h != nil {
		if n := h.ReleaseName; n != "" {
			if len(n) > 53 {
				errs = append(errs, fmt.Errorf("%s.helm.releaseName: %q: longer than 53 characters", field, n))
			}
			for _, m := range validation.IsDNS1123Subdomain(n) {
				errs = append(errs, fmt.Errorf("%s.helm.releaseName: %q: %s", field, n, m))
			}
		}
		for i, f := range h.ValuesFiles {
			if f == "" || strings.HasPrefix(f, "/") {
				errs = append(errs, fmt.Errorf("%s.helm.valuesFiles[%d]: %q: a path relative to the app's directory", field, i, f))
			}
		}
	}
	return errs
}
