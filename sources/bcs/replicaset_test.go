package bcs

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/gitpace/gitpace/sources/bcs/vocab"
)

func TestReplicaSetBasics(t *testing.T) {
	d := mustParse(t, seed(t))
	rs, err := d.ReplicaSet("test-v1562517103")
	if err != nil {
		t.Fatal(err)
	}
	// Replicas must be an explicit 0: left nil, the API server would default it to 1.
	if rs.Spec.Replicas == nil || *rs.Spec.Replicas != 0 {
		t.Errorf("Replicas = %v, want a pointer to 0", rs.Spec.Replicas)
	}
	c := rs.Spec.Template.Spec.Containers[0]
	for name, tc := range map[string]struct {
		got  resource.Quantity
		want string
	}{
		"limits.cpu":      {c.Resources.Limits[corev1.ResourceCPU], "500m"},
		"limits.memory":   {c.Resources.Limits[corev1.ResourceMemory], "4096Mi"},
		"requests.cpu":    {c.Resources.Requests[corev1.ResourceCPU], "500m"},
		"requests.memory": {c.Resources.Requests[corev1.ResourceMemory], "4096Mi"},
	} {
		if tc.got.Cmp(resource.MustParse(tc.want)) != 0 {
			t.Errorf("%s = %s, want %s", name, tc.got.String(), tc.want)
		}
	}
	if got := rs.Spec.Template.Labels[vocab.LabelDeployment]; got != "test" {
		t.Errorf("pod label %s = %q, want the deployment name", vocab.LabelDeployment, got)
	}
	anti := rs.Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if len(anti) != 1 || anti[0].LabelSelector.MatchLabels[vocab.LabelDeployment] != "test" || len(anti[0].LabelSelector.MatchLabels) != 1 {
		t.Errorf("UNIQUE InnerIP must select the whole deployment (old and new applications), got %+v", anti)
	}
	if _, err := d.ReplicaSet("Bad_Name"); err == nil || !strings.Contains(err.Error(), `application name "Bad_Name" is not a DNS-1123 label`) {
		t.Errorf("ReplicaSet(Bad_Name) error = %v", err)
	}
}

func TestFieldError(t *testing.T) {
	e := &FieldError{File: "a.json", Path: "spec.instance", Msg: "must be >= 0, got -1"}
	if got, want := e.Error(), "a.json: spec.instance: must be >= 0, got -1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = &FieldError{File: "a.json", Msg: "invalid JSON: x", Line: 3, Col: 7}
	if got, want := e.Error(), "a.json:3:7: invalid JSON: x"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err := Parse("a.json", []byte(edited(t, seed(t), edit{`"instance": 2,`, `"instance": -1,`})))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "spec.instance" || fe.File != "a.json" {
		t.Errorf("errors.As(%v) = %+v, want the spec.instance FieldError", err, fe)
	}
}
