// Package vocab is the vocabulary of a BCS v4 deployment in the cluster,
// which the parser (package sources/bcs, building the application template)
// and the rollout engine (package appliers/paced, creating and scaling the
// applications) must agree on: label and annotation keys, rolling orders,
// and how applications are named. It imports nothing, so the engine does not
// depend on the parser.
//
// A BCS deployment is rolled out as applications: ReplicaSets labelled
// LabelDeployment=<deployment> and LabelApplication=<application>, the two
// together being the ReplicaSet's selector. The first application is named
// like the deployment; each rollout creates one named ApplicationName.
package vocab

import (
	"regexp"
	"strconv"
)

// Labels and annotations on applications (ReplicaSets) and their pods. User
// labels may not use ReservedPrefix.
const (
	ReservedPrefix = "bcs.gitpace.dev/"
	// LabelDeployment holds the deployment name on ReplicaSets and pods; the
	// old and new applications of a rollout share it.
	LabelDeployment = ReservedPrefix + "deployment"
	// LabelApplication holds the application name (the ReplicaSet name) and
	// is the ReplicaSet's selector together with LabelDeployment.
	LabelApplication = ReservedPrefix + "application"
	// AnnotationTemplateHash holds the deployment's template hash
	// (bcs.Deployment.TemplateHash, paced.Spec.TemplateHash) on the
	// ReplicaSet: a rollout is due when it differs from git's.
	AnnotationTemplateHash = ReservedPrefix + "template-hash"
)

// Rolling orders: the values of BCS's spec.strategy.rollingupdate.rollingOrder
// (no default: empty is an error).
const (
	// OrderCreateFirst scales the new application up, waits until its new
	// pods are Ready, then scales the old application down.
	OrderCreateFirst = "CreateFirst"
	// OrderDeleteFirst scales the old application down, waits until its pods
	// are gone, then scales the new application up and waits until Ready.
	OrderDeleteFirst = "DeleteFirst"
)

// MaxDeploymentName is the longest deployment name (51) whose application
// names "<name>-v<10-digit unix seconds>" fit the 63 characters of a label
// value (DNS-1123 label).
const MaxDeploymentName = 63 - len("-v1562517103")

var versionSuffix = regexp.MustCompile(`-v[0-9]+$`)

// BaseName is deployment without a "-v<digits>" suffix, so that application
// suffixes never stack: "test-v1562517103" gives "test".
func BaseName(deployment string) string {
	return versionSuffix.ReplaceAllString(deployment, "")
}

// ApplicationName is the name of the application a rollout of deployment
// started at unix (seconds) creates: "<BaseName>-v<unix>", e.g.
// ApplicationName("test-v1562517103", 1700000000) = "test-v1700000000".
// (docs/rolling-update-semantics.md §1; appliers/paced applies the rule.)
func ApplicationName(deployment string, unix int64) string {
	return BaseName(deployment) + "-v" + strconv.FormatInt(unix, 10)
}
