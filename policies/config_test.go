package policies

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestParseConfigExample keeps the documented example (used in the README)
// valid.
func TestParseConfigExample(t *testing.T) {
	data, err := os.ReadFile("../testdata/policies/gitpace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseConfig("gitpace.yaml", data)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	want := &Config{
		File: "gitpace.yaml",
		Windows: []Window{
			{Kind: WindowDeny, Schedule: "0 22 * * *", Duration: "8h", TimeZone: "Asia/Shanghai", Apps: []string{"payments/*"}},
			{Kind: WindowAllow, Schedule: "0 9 * * 1-5", Duration: "8h", Apps: []string{"web/*"}},
		},
		OnFailure: FailureHold,
		Apps: []AppRule{{
			Match:      "payments/*",
			Namespaces: []string{"payments", "payments-*"},
			Kinds:      []string{"Service", "ConfigMap", "apps/Deployment", "core/Secret", "*.example.com/*"},
		}},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Window{}, AppRule{})); diff != "" {
		t.Errorf("ParseConfig (-want +got):\n%s", diff)
	}
}

// TestConfigFromFiles: no file is the zero Config; the file and its
// errors are named by their path in the repository, the watched path
// joined with gitpace.yaml (fresh-user report 6, fault 12b), as manifest
// errors name theirs.
func TestConfigFromFiles(t *testing.T) {
	got, err := ConfigFromFiles(map[string][]byte{"app/deploy.yaml": []byte("kind: x")}, "apps")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Config{}, got, cmpopts.IgnoreUnexported(Window{}, AppRule{})); diff != "" {
		t.Errorf("missing file (-want +got):\n%s", diff)
	}
	for dir, want := range map[string]string{"": "gitpace.yaml", "apps": "apps/gitpace.yaml", "deploy/prod": "deploy/prod/gitpace.yaml"} {
		got, err = ConfigFromFiles(map[string][]byte{ConfigFile: []byte("onFailure: revert\n")}, dir)
		if err != nil {
			t.Fatal(err)
		}
		if got.OnFailure != FailureRevert || got.File != want {
			t.Errorf("--path %q: got %+v, want onFailure revert from %s", dir, got, want)
		}
		_, err = ConfigFromFiles(map[string][]byte{ConfigFile: []byte("onFailure: later\nwindows: [{foo: 1}]\n")}, dir)
		for _, line := range strings.Split(fmt.Sprint(err), "\n") {
			if !strings.HasPrefix(line, want+": ") {
				t.Errorf("--path %q: error line %q does not start with %s: ", dir, line, want)
			}
		}
	}
}

func TestParseConfigEmpty(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n", "{}"} {
		got, err := ParseConfig("gitpace.yaml", []byte(data))
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", data, err)
			continue
		}
		if got.OnFailure != FailureHold || len(got.Windows)+len(got.Apps) != 0 {
			t.Errorf("ParseConfig(%q) = %+v, want empty with onFailure hold", data, got)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{
			name: "unknown top-level field",
			yaml: "onFailure: hold\nwindow: []\n",
			want: []string{`policy/gitpace.yaml: unknown field "window"`},
		},
		{
			name: "unknown nested field names its path",
			yaml: "windows:\n- kind: deny\n  schedule: '0 22 * * *'\n  duration: 1h\n- kind: allow\n  schedule: '0 9 * * *'\n  duration: 1h\n  timezone: UTC\n",
			want: []string{`policy/gitpace.yaml: unknown field "windows[1].timezone"`},
		},
		{
			name: "field names are case-sensitive",
			yaml: "apps:\n- Match: 'a/*'\n",
			want: []string{`unknown field "apps[0].Match"`},
		},
		{
			name: "duplicate key",
			yaml: "onFailure: hold\nonFailure: revert\n",
			want: []string{`policy/gitpace.yaml:`, `"onFailure" already set`},
		},
		{
			name: "wrong type",
			yaml: "windows: {}\n",
			want: []string{`policy/gitpace.yaml:`, `windows: want a list, got a mapping`},
		},
		{
			name: "bad schedule",
			yaml: "windows:\n- kind: deny\n  schedule: '0 22 * * *'\n  duration: 1h\n- kind: deny\n  schedule: '0 0 22 * * *'\n  duration: 1h\n",
			want: []string{`policy/gitpace.yaml: windows[1].schedule: "0 0 22 * * *": expected exactly 5 fields`},
		},
		{
			name: "descriptor refused",
			yaml: "windows:\n- kind: deny\n  schedule: '@daily'\n  duration: 1h\n",
			want: []string{`windows[0].schedule: "@daily"`},
		},
		{
			name: "TZ prefix refused",
			yaml: "windows:\n- kind: deny\n  schedule: 'CRON_TZ=UTC 0 22 * * *'\n  duration: 1h\n",
			want: []string{`windows[0].schedule: "CRON_TZ=UTC 0 22 * * *": set the zone with timeZone`},
		},
		{
			name: "every problem reported",
			yaml: "windows:\n- kind: sometimes\n  schedule: '0 22 * * *'\n  duration: 8 hours\n  timeZone: Mars/Olympus\n  apps: ['[']\n",
			want: []string{
				`windows[0].kind: must be allow or deny, got "sometimes"`,
				`windows[0].duration: time: unknown unit`,
				`windows[0].timeZone: "Mars/Olympus"`,
				`windows[0].apps[0]: bad pattern "["`,
			},
		},
		{
			name: "required window fields",
			yaml: "windows:\n- apps: []\n",
			want: []string{`windows[0].kind: required`, `windows[0].schedule: required`, `windows[0].duration: required`},
		},
		{
			name: "zero duration",
			yaml: "windows:\n- kind: deny\n  schedule: '0 22 * * *'\n  duration: 0s\n",
			want: []string{`windows[0].duration: must be positive, got "0s"`},
		},
		{
			name: "host zone refused",
			yaml: "windows:\n- kind: deny\n  schedule: '0 22 * * *'\n  duration: 1h\n  timeZone: Local\n",
			want: []string{`windows[0].timeZone: "Local": the host's zone is not allowed`},
		},
		{
			name: "bad onFailure",
			yaml: "onFailure: retry\n",
			want: []string{`policy/gitpace.yaml: onFailure: must be "hold" or "revert", got "retry"`},
		},
		{
			name: "app rule without match",
			yaml: "apps:\n- namespaces: [a]\n",
			want: []string{`apps[0].match: required`},
		},
		{
			name: "kind with version",
			yaml: "apps:\n- match: 'a/*'\n  kinds: [Service, apps/v1/Deployment]\n",
			want: []string{`apps[0].kinds[1]: "apps/v1/Deployment": versions are not part of a kind rule; write "apps/Deployment"`},
		},
		{
			name: "apiVersion instead of group",
			yaml: "apps:\n- match: 'a/*'\n  kinds: [v1/ConfigMap]\n",
			want: []string{`apps[0].kinds[0]: "v1/ConfigMap": "v1" is a version, not an API group; write "ConfigMap" or "core/ConfigMap"`},
		},
		{
			name: "bad namespace pattern",
			yaml: "apps:\n- match: 'a/*'\n  namespaces: [ok, 'a[']\n",
			want: []string{`apps[0].namespaces[1]: bad pattern "a["`},
		},
		{
			name: "match and path together",
			yaml: "apps:\n- match: 'a/*'\n  path: a/b\n",
			want: []string{`apps[0]: match and path exclude each other`},
		},
		{
			name: "name without path",
			yaml: "apps:\n- match: 'a/*'\n  name: x\n",
			want: []string{`apps[0].name: only with path`},
		},
		{
			name: "path leaving the watched path",
			yaml: "apps:\n- path: ../other\n",
			want: []string{`apps[0].path: "../other"`},
		},
		{
			name: "two path rules, one name",
			yaml: "apps:\n- path: charts/web\n  name: web\n- path: charts/web\n  name: web\n",
			want: []string{`apps[1].name: app "web" is already declared by apps[0]`},
		},
		{
			name: "bad app settings",
			yaml: "apps:\n- match: web\n  namespace: Web_NS\n  createNamespace: true\n- match: api\n  createNamespace: true\n  helm:\n    releaseName: Bad_Name\n    valuesFiles: [/etc/values.yaml]\n",
			want: []string{`apps[0].namespace: "Web_NS"`, `apps[1].createNamespace: needs namespace`,
				`apps[1].helm.releaseName: "Bad_Name"`, `apps[1].helm.valuesFiles[0]: "/etc/values.yaml"`},
		},
		{
			name: "unknown helm field",
			yaml: "apps:\n- match: web\n  helm:\n    valueFiles: [v.yaml]\n",
			want: []string{`unknown field "apps[0].helm.valueFiles"`},
		},
		{
			name: "empty kind part",
			yaml: "apps:\n- match: 'a/*'\n  kinds: [apps/]\n",
			want: []string{`apps[0].kinds[0]: "apps/": empty pattern`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig("policy/gitpace.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseConfig = %+v, want error", cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseConfigAppSettings: the per-app settings and path rules parse,
// and Settings finds a path rule's app by its name before match rules.
func TestParseConfigAppSettings(t *testing.T) {
	cfg, err := ParseConfig(ConfigFile, []byte(`apps:
  - match: "*"
    namespaces: ["*"]
    namespace: fallback
  - path: charts/web
    name: web-prod
    namespace: prod
    createNamespace: true
    helm:
      releaseName: web
      valuesFiles: [values-prod.yaml, ../values/common.yaml]
      values:
        replicaCount: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Settings("web-prod")
	if s.Namespace != "prod" || !s.CreateNamespace || s.Helm == nil || s.Helm.ReleaseName != "web" ||
		len(s.Helm.ValuesFiles) != 2 || s.Helm.Values["replicaCount"] != int64(3) {
		t.Errorf("Settings(web-prod) = %+v", s)
	}
	if s := cfg.Settings("shop"); s.Namespace != "fallback" {
		t.Errorf("Settings(shop) = %+v, want the match rule's", s)
	}
	if d := cfg.Declared(); len(d) != 1 || d[0].AppName() != "web-prod" || d[0].Path != "charts/web" {
		t.Errorf("Declared = %+v", d)
	}
}
