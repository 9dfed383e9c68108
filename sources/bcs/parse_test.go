package bcs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

const testFile = "apps/test/test.json"

// seed returns the BCS guide's test1-1-0.json.
func seed(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "test1-1-0.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit replaces every occurrence of old, which must be present.
type edit struct{ old, new string }

func edited(t *testing.T, doc string, edits ...edit) string {
	t.Helper()
	for _, e := range edits {
		if !strings.Contains(doc, e.old) {
			t.Fatalf("edit: %q not found", e.old)
		}
		doc = strings.ReplaceAll(doc, e.old, e.new)
	}
	return doc
}

// errorStrings formats every FieldError of err.
func errorStrings(err error) []string {
	var out []string
	for _, fe := range FieldErrors(err) {
		out = append(out, fe.Error())
	}
	return out
}

// matches compares got with want; a want ending in "..." is a prefix.
func matches(want, got []string) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if p, ok := strings.CutSuffix(want[i], "..."); ok {
			if !strings.HasPrefix(got[i], p) {
				return false
			}
		} else if want[i] != got[i] {
			return false
		}
	}
	return true
}

func TestParseErrors(t *testing.T) {
	const f = testFile + ": "
	cases := []struct {
		name  string
		doc   string // when set, used instead of the edited seed
		edits []edit
		want  []string
	}{
		// Syntax errors: file, line and column.
		{name: "syntax error names line and column", doc: "{\n  \"apiVersion\": \"v4\",\n  \"kind\": deployment\n}",
			want: []string{testFile + `:3:11: invalid JSON: invalid character 'd' looking for beginning of value`}},
		{name: "missing comma in the seed", edits: []edit{{`"instance": 2,`, `"instance": 2`}},
			want: []string{testFile + `:25:9: invalid JSON: invalid character '"' after object key:value pair`}},
		{name: "truncated document", doc: "{\n  \"apiVersion\": \"v4\",",
			want: []string{testFile + `:2:22: invalid JSON: unexpected end of JSON input`}},
		{name: "empty document", doc: "",
			want: []string{testFile + `:1:1: invalid JSON: empty document`}},
		{name: "not an object", doc: "[]",
			want: []string{testFile + `:1:1: expected object, got array`}},

		// Decoding: type, unknown and duplicate fields, with positions.
		{name: "wrong type", edits: []edit{{`"instance": 2,`, `"instance": "2",`}},
			want: []string{testFile + `:24:21: spec.instance: expected integer, got string`}},
		{name: "unknown field", edits: []edit{{`"parameters": [],`, `"parameterz": [],`}},
			want: []string{testFile + `:51:25: spec.template.spec.containers[0].parameterz: unknown field "parameterz"`}},
		{name: "unknown top-level field", edits: []edit{{`"constraint": {`, `"constraints": {`}},
			want: []string{testFile + `:11:5: constraints: unknown field "constraints"`}},
		{name: "duplicate field", edits: []edit{{`"instance": 2,`, `"instance": 2, "instance": 3,`}},
			want: []string{testFile + `:24:24: spec.instance: duplicate field ("instance" is already set at 24:9)`}},
		{name: "negative upgradeDuration", edits: []edit{{`"upgradeDuration": 60`, `"upgradeDuration": -60`}},
			want: []string{testFile + `:30:36: spec.strategy.rollingupdate.upgradeDuration: must be a non-negative integer that fits in 32 bits, got -60`}},

		// Validation.
		{name: "bad rollingOrder", edits: []edit{{`"rollingOrder": "CreateFirst"`, `"rollingOrder": "Foo"`}},
			want: []string{f + `spec.strategy.rollingupdate.rollingOrder: must be "CreateFirst" or "DeleteFirst", got "Foo"`}},
		{name: "empty rollingOrder", edits: []edit{{`"rollingOrder": "CreateFirst"`, `"rollingOrder": ""`}},
			want: []string{f + `spec.strategy.rollingupdate.rollingOrder: must be "CreateFirst" or "DeleteFirst", got ""`}},
		{name: "missing rollingOrder", edits: []edit{{`"rollingOrder": "CreateFirst",`, ``}},
			want: []string{f + `spec.strategy.rollingupdate.rollingOrder: must be "CreateFirst" or "DeleteFirst", got ""`}},
		{name: "strategy type", edits: []edit{{`"type": "RollingUpdate"`, `"type": "Recreate"`}},
			want: []string{f + `spec.strategy.type: must be "RollingUpdate", got "Recreate"`}},
		{name: "conflicting spellings of maxUnavailable", edits: []edit{{`"maxUnavailable": 1,`, `"maxUnavailable": 1, "maxUnavilable": 2,`}},
			want: []string{f + `spec.strategy.rollingupdate.maxUnavilable: 2 conflicts with maxUnavailable 1 (the two spellings name the same field)`}},
		{name: "negative instance", edits: []edit{{`"instance": 2,`, `"instance": -1,`}},
			want: []string{f + `spec.instance: must be >= 0, got -1`}},
		{name: "cpu not a number", edits: []edit{{`"cpu": "0.5"`, `"cpu": "abc"`}},
			want: []string{f + `spec.template.spec.containers[0].resources.limits.cpu: must be a positive decimal number of cores, got "abc"`}},
		{name: "cpu zero", edits: []edit{{`"cpu": "0.5"`, `"cpu": "0"`}},
			want: []string{f + `spec.template.spec.containers[0].resources.limits.cpu: must be a positive decimal number of cores, got "0"`}},
		{name: "cpu below a millicore", edits: []edit{{`"cpu": "0.5"`, `"cpu": "0.0005"`}},
			want: []string{f + `spec.template.spec.containers[0].resources.limits.cpu: must be a multiple of 0.001 cores, got "0.0005"`}},
		{name: "memory with a unit", edits: []edit{{`"memory": "4096"`, `"memory": "4096MB"`}},
			want: []string{f + `spec.template.spec.containers[0].resources.limits.memory: must be a positive decimal number of MB, got "4096MB"`}},
		{name: "memory missing", edits: []edit{{`"memory": "4096"`, `"storage": "10"`}},
			want: []string{
				f + `spec.template.spec.containers[0].resources.limits.memory: must be a positive decimal number of MB, got ""`,
				f + `spec.template.spec.containers[0].resources.limits.storage: not supported: Mesos disk quotas have no faithful mapping`,
			}},
		{name: "memory below 4 MB", edits: []edit{{`"memory": "4096"`, `"memory": "2"`}},
			want: []string{f + `spec.template.spec.containers[0].resources.limits.memory: must be at least 4 (MB): BCS sets no memory limit below that, got "2"`}},
		{name: "unknown operator", edits: []edit{{`"operate": "UNIQUE"`, `"operate": "SPREAD"`}},
			want: []string{f + `constraint.IntersectionItem[0].unionData[0].operate: unknown operator "SPREAD" (want one of UNIQUE, MAXPER, CLUSTER, LIKE, UNLIKE, GROUPBY, EXCLUDE, GREATER, TOLERATION)`}},
		{name: "operators are case-sensitive", edits: []edit{{`"operate": "UNIQUE"`, `"operate": "unique"`}},
			want: []string{f + `constraint.IntersectionItem[0].unionData[0].operate: unknown operator "unique" (want one of UNIQUE, MAXPER, CLUSTER, LIKE, UNLIKE, GROUPBY, EXCLUDE, GREATER, TOLERATION)`}},
		{name: "path spelled as in the file", edits: []edit{{`"IntersectionItem"`, `"intersectionitem"`}, {`"operate": "UNIQUE"`, `"operate": "X"`}},
			want: []string{f + `constraint.intersectionitem[0].unionData[0].operate: unknown operator "X"...`}},
		{name: "unanchored LIKE", edits: []edit{{`"operate": "UNIQUE"`, `"operate": "LIKE", "type": 3, "text": {"value": "slave[1-2]"}`}},
			want: []string{f + `constraint.IntersectionItem[0].unionData[0].text.value: LIKE "slave[1-2]" has no node-affinity mapping: BCS matches it as an unanchored regexp (anywhere in the value); anchor it as "^...$" (or use CLUSTER with the exact values)`}},
		{name: "LIKE with an unbounded regexp", edits: []edit{{`"operate": "UNIQUE"`, `"operate": "UNLIKE", "type": 4, "set": {"item": ["^a$", "^slave-[0-9]+$"]}`}},
			want: []string{f + `constraint.IntersectionItem[0].unionData[0].set.item[1]: UNLIKE "^slave-[0-9]+$" has no node-affinity mapping: it has an unbounded repetition (or use CLUSTER with the exact values)`}},
		{name: "MAXPER above 1", edits: []edit{{`"operate": "UNIQUE"`, `"operate": "MAXPER", "type": 3, "text": {"value": "2"}`}},
			want: []string{f + `constraint.IntersectionItem[0].unionData[0].text.value: MAXPER 2 has no mapping: Kubernetes cannot cap pods per InnerIP value above 1 (MAXPER 1 = UNIQUE is supported)`}},
		{name: "MAXPER without text type", edits: []edit{{`"operate": "UNIQUE"`, `"operate": "MAXPER", "text": {"value": "1"}`}},
			want: []string{f + `constraint.IntersectionItem[0].unionData[0].type: must be 3 (text) for MAXPER, got 0`}},
		{name: "GREATER with a fraction", edits: []edit{{`"operate": "UNIQUE"`, `"operate": "GREATER", "type": 1, "scalar": {"value": 2.5}`}},
			want: []string{f + `constraint.IntersectionItem[0].unionData[0].scalar.value: must be a whole number (Kubernetes compares node labels as integers), got 2.5`}},
		{name: "UNIQUE cannot be ORed", edits: []edit{{`"operate": "UNIQUE"`, `"operate": "UNIQUE"}, {"name": "zone", "operate": "CLUSTER", "type": 3, "text": {"value": "a"}`}},
			want: []string{f + `constraint.IntersectionItem[0].unionData[0].operate: UNIQUE cannot be ORed with other unionData: Kubernetes can only OR node requirements; put it in an IntersectionItem of its own`}},
		{name: "EXCLUDE item without a colon", edits: []edit{{`"operate": "UNIQUE"`, `"operate": "EXCLUDE", "type": 4, "set": {"item": ["appname=db"]}`}},
			want: []string{f + `constraint.IntersectionItem[0].unionData[0].set.item[0]: must be "key:value", got "appname=db"`}},
		{name: "invalid name", edits: []edit{{`"name": "test",`, `"name": "Test_1",`}},
			want: []string{f + `metadata.name: "Test_1" is not a DNS-1123 label: ...`}},
		{name: "namespace not DNS after lower-casing", edits: []edit{{`"namespace": "defaultGroup"`, `"namespace": "default_Group"`}},
			want: []string{f + `metadata.namespace: "default_Group" lower-cased is not a DNS-1123 label: ...`}},
		{name: "template namespace differs", edits: []edit{{"\"name\": \"test\",\n                \"namespace\": \"defaultGroup\"", "\"name\": \"test\",\n                \"namespace\": \"other\""}},
			want: []string{f + `spec.template.metadata.namespace: "other" differs from metadata.namespace "defaultGroup"`}},
		{name: "invalid label value", edits: []edit{{`"appname": "test"`, `"appname": "a|b"`}},
			want: []string{
				f + `metadata.labels.appname: invalid label value "a|b": ...`,
				f + `spec.template.metadata.labels.appname: invalid label value "a|b": ...`,
			}},
		{name: "reserved label", edits: []edit{{`"appname": "test"`, `"bcs.gitpace.dev/application": "x"`}},
			want: []string{
				f + `metadata.labels["bcs.gitpace.dev/application"]: the bcs.gitpace.dev/ prefix is reserved for gitpace`,
				f + `spec.template.metadata.labels["bcs.gitpace.dev/application"]: the bcs.gitpace.dev/ prefix is reserved for gitpace`,
			}},
		{name: "apiVersion and kind", edits: []edit{{`"apiVersion": "v4"`, `"apiVersion": "v3"`}, {`"kind": "deployment"`, `"kind": "application"`}},
			want: []string{
				f + `apiVersion: must be "v4", got "v3"`,
				f + `kind: must be "deployment", got "application" (only BCS deployments are supported)`,
			}},
		{name: "restartPolicy Never", edits: []edit{{`"kind": "deployment",`, `"kind": "deployment", "restartPolicy": {"policy": "Never", "interval": 5},`}},
			want: []string{
				f + `restartPolicy.policy: "Never" has no mapping: a ReplicaSet always replaces its pods (use "Always" or "OnFailure")`,
				f + `restartPolicy.interval: not supported: the kubelet's restart back-off is not configurable per pod`,
			}},
		{name: "secrets", edits: []edit{{`"secrets": []`, `"secrets": [{"secretName": "s"}]`}},
			want: []string{f + `spec.template.spec.containers[0].secrets: not supported: BCS secrets (vault) have no mapping; use a Kubernetes Secret`}},
		{name: "docker parameters", edits: []edit{{`"parameters": []`, `"parameters": [{"key": "ulimit", "value": "nofile=65535"}]`}},
			want: []string{f + `spec.template.spec.containers[0].parameters: not supported: docker run parameters have no Kubernetes mapping`}},
		{name: "volume path with a variable", edits: []edit{{`"volumes": []`, `"volumes": [{"name": "data", "volume": {"hostPath": "/data/$BCS_POD_ID", "mountPath": "/data"}}]`}},
			want: []string{f + `spec.template.spec.containers[0].volumes[0].volume.hostPath: not supported: variables in host paths are not substituted`}},
		{name: "port protocol", edits: []edit{{`"protocol": "HTTP"`, `"protocol": "SCTP"`}},
			want: []string{f + `spec.template.spec.containers[0].ports[0].protocol: must be "HTTP", "TCP" or "UDP", got "SCTP"`}},
		{name: "random port under HOST", edits: []edit{{`"networkMode": "BRIDGE"`, `"networkMode": "HOST"`}, {`"containerPort": 8000`, `"containerPort": 0`}},
			want: []string{f + `spec.template.spec.containers[0].ports[0].containerPort: not supported: a random host port (0) under HOST networking has no mapping`}},
		{name: "BCS variables in env", edits: []edit{{`"env": []`, `"env": [{"name": "IP", "value": "${bcs.hostip}"}]`}},
			want: []string{f + `spec.template.spec.containers[0].env[0].value: not supported: BCS template variables (${bcs.*}) are not substituted`}},
		{name: "health check on an unknown port name", edits: []edit{{`"env": []`, `"env": [], "healthChecks": [{"type": "TCP", "tcp": {"portName": "nope"}}]`}},
			want: []string{f + `spec.template.spec.containers[0].healthChecks[0].tcp.portName: no port of this container is named "nope"`}},
		{name: "two executor health checks", edits: []edit{{`"env": []`, `"env": [], "healthChecks": [{"type": "TCP", "tcp": {"port": 8000}}, {"type": "HTTP", "http": {"port": 8000}}]`}},
			want: []string{f + `spec.template.spec.containers[0].healthChecks[1].type: only one HTTP, TCP or COMMAND check is allowed (BCS ignores all but spec.template.spec.containers[0].healthChecks[0])`}},
		{name: "all errors are returned, in order", edits: []edit{{`"rollingOrder": "CreateFirst"`, `"rollingOrder": "Foo"`}, {`"cpu": "0.5"`, `"cpu": "abc"`}},
			want: []string{
				f + `spec.strategy.rollingupdate.rollingOrder: must be "CreateFirst" or "DeleteFirst", got "Foo"`,
				f + `spec.template.spec.containers[0].resources.limits.cpu: must be a positive decimal number of cores, got "abc"`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc
			if doc == "" && tc.edits != nil {
				doc = edited(t, seed(t), tc.edits...)
			}
			d, err := Parse(testFile, []byte(doc))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want errors %q", d.Metadata, tc.want)
			}
			if d != nil {
				t.Errorf("Parse returned a deployment with its error")
			}
			if got := errorStrings(err); !matches(tc.want, got) {
				t.Errorf("errors mismatch\nwant: %q\ngot:  %q", tc.want, got)
			}
			if got, want := err.Error(), strings.Join(errorStrings(err), "\n"); got != want {
				t.Errorf("err.Error() = %q, want the errors joined: %q", got, want)
			}
		})
	}
}

func TestStrategy(t *testing.T) {
	cases := []struct {
		name  string
		edits []edit
		want  Strategy
	}{
		{name: "seed", want: Strategy{MaxSurge: 1, MaxUnavailable: 1, UpgradeDuration: 60 * time.Second, Order: vocab.OrderCreateFirst}},
		{name: "BCS's misspelled maxUnavilable is read",
			edits: []edit{{`"maxUnavailable": 1,`, `"maxUnavilable": 3,`}},
			want:  Strategy{MaxSurge: 1, MaxUnavailable: 3, UpgradeDuration: 60 * time.Second, Order: vocab.OrderCreateFirst}},
		{name: "both spellings agreeing",
			edits: []edit{{`"maxUnavailable": 1,`, `"maxUnavailable": 2, "maxUnavilable": 2,`}},
			want:  Strategy{MaxSurge: 1, MaxUnavailable: 2, UpgradeDuration: 60 * time.Second, Order: vocab.OrderCreateFirst}},
		{name: "zero and negative batches mean 1",
			edits: []edit{{`"maxUnavailable": 1,`, `"maxUnavailable": -2,`}, {`"maxSurge": 1,`, `"maxSurge": 0,`}},
			want:  Strategy{MaxSurge: 1, MaxUnavailable: 1, UpgradeDuration: 60 * time.Second, Order: vocab.OrderCreateFirst}},
		{name: "absent batches mean 1",
			edits: []edit{{`"maxUnavailable": 1,`, ``}, {`"maxSurge": 1,`, ``}},
			want:  Strategy{MaxSurge: 1, MaxUnavailable: 1, UpgradeDuration: 60 * time.Second, Order: vocab.OrderCreateFirst}},
		{name: "DeleteFirst, manual, no wait, bigger batches",
			edits: []edit{{`"rollingOrder": "CreateFirst"`, `"rollingOrder": "DeleteFirst"`}, {`"rollingManually": false`, `"rollingManually": true`},
				{`"upgradeDuration": 60`, `"upgradeDuration": 0`}, {`"maxSurge": 1,`, `"maxSurge": 3,`}, {`"maxUnavailable": 1,`, `"maxUnavailable": 2,`}},
			want: Strategy{MaxSurge: 3, MaxUnavailable: 2, Order: vocab.OrderDeleteFirst, Manually: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(testFile, []byte(edited(t, seed(t), tc.edits...)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, d.Strategy()); diff != "" {
				t.Errorf("Strategy() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	d, err := Parse(testFile, []byte(seed(t)))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Instance(); got != 2 {
		t.Errorf("Instance() = %d, want 2", got)
	}
	if got := d.Namespace(); got != "defaultgroup" {
		t.Errorf("Namespace() = %q, want defaultgroup", got)
	}
	if got := d.Name(); got != "test" {
		t.Errorf("Name() = %q, want test", got)
	}
	if got := d.File(); got != testFile {
		t.Errorf("File() = %q, want %q", got, testFile)
	}
	noNS, err := Parse(testFile, []byte(edited(t, seed(t), edit{`"namespace": "defaultGroup"`, `"namespace": ""`})))
	if err != nil {
		t.Fatal(err)
	}
	if got := noNS.Namespace(); got != "defaultgroup" {
		t.Errorf("Namespace() without metadata.namespace = %q, want BCS's default defaultgroup", got)
	}
}

func TestIsV4(t *testing.T) {
	cases := []struct {
		name string
		data string
		want bool
	}{
		{"seed", "", true},
		{"apiVersion first", `{"apiVersion": "v4", "kind": "deployment"}`, true},
		{"apiVersion after other keys", `{"kind": "deployment", "spec": {"apiVersion": "v1"}, "apiVersion": "v4"}`, true},
		{"syntax error after apiVersion", `{"apiVersion": "v4", "kind": }`, true},
		{"Kubernetes JSON", `{"apiVersion": "apps/v1", "kind": "Deployment"}`, false},
		{"nested apiVersion only", `{"spec": {"apiVersion": "v4"}}`, false},
		{"no apiVersion", `{"kind": "deployment"}`, false},
		{"YAML", "apiVersion: v4\nkind: deployment\n", false},
		{"array", `[{"apiVersion": "v4"}]`, false},
		{"empty", ``, false},
		{"number", `{"apiVersion": 4}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			if tc.name == "seed" {
				data = seed(t)
			}
			if got := IsV4([]byte(data)); got != tc.want {
				t.Errorf("IsV4(%q) = %v, want %v", data, got, tc.want)
			}
		})
	}
}
