package bcs

// The types below mirror bcs-common/common/types of TencentBlueKing/bk-bcs
// (BcsDeployment, ReplicaControllerSpec, PodTemplateSpec, Container,
// HealthCheck, Constraint, ...) with BCS's own JSON names. Fields that BCS
// has but gitpace cannot honour are kept so that a manifest using them gets
// an error naming the field rather than "unknown field"; see doc.go.

// Deployment is a BCS v4 `deployment` (Mesos scheme) as read from one file.
// Build it with Parse: values are validated and defaulted there.
type Deployment struct {
	APIVersion    string         `json:"apiVersion"`
	Kind          string         `json:"kind"`
	Metadata      ObjectMeta     `json:"metadata"`
	Spec          DeploymentSpec `json:"spec"`
	RestartPolicy *RestartPolicy `json:"restartPolicy,omitempty"`
	KillPolicy    *KillPolicy    `json:"killPolicy,omitempty"`
	Constraint    *Constraint    `json:"constraint,omitempty"`
	// UpdatePolicy is BCS's application update policy; gitpace rejects it
	// when set (its rolling update is driven by Spec.Strategy).
	UpdatePolicy *UpdatePolicy `json:"updatePolicy,omitempty"`

	file string
}

// ObjectMeta is BCS's metadata block.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// CreationTimestamp is written by BCS on export; it is ignored.
	CreationTimestamp string `json:"creationTimestamp,omitempty"`
	// ClusterName pins the object to a BCS cluster; rejected when set.
	ClusterName string `json:"clusterName,omitempty"`
}

// DeploymentSpec is spec of a BCS deployment.
type DeploymentSpec struct {
	// Instance is the number of taskgroups (pods) wanted.
	Instance int32 `json:"instance"`
	// Selector binds the deployment to an existing application. It is
	// validated and kept for the rollout engine (an update that changes it
	// is refused); it does not take part in the ReplicaSet mapping.
	Selector map[string]string `json:"selector,omitempty"`
	Template *PodTemplate      `json:"template"`
	Strategy UpgradeStrategy   `json:"strategy"`
	// PauseDeployment is BCS's pause flag; rejected when true (pausing is
	// gitpace's own marker, not part of the manifest).
	PauseDeployment bool `json:"pauseDeployment,omitempty"`
}

// UpgradeStrategy is spec.strategy.
type UpgradeStrategy struct {
	Type          string         `json:"type"`
	RollingUpdate *RollingUpdate `json:"rollingupdate"`
}

// RollingUpdate is spec.strategy.rollingupdate. BCS's own JSON tag for the
// delete batch is the misspelled "maxUnavilable"; both spellings are read.
type RollingUpdate struct {
	MaxUnavailable  *int32 `json:"maxUnavailable,omitempty"`
	MaxUnavilable   *int32 `json:"maxUnavilable,omitempty"`
	MaxSurge        int32  `json:"maxSurge"`
	UpgradeDuration uint32 `json:"upgradeDuration"`
	RollingOrder    string `json:"rollingOrder"`
	RollingManually bool   `json:"rollingManually"`
}

// PodTemplate is spec.template.
type PodTemplate struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     PodSpec    `json:"spec"`
}

// PodSpec is spec.template.spec.
type PodSpec struct {
	Containers  []Container `json:"containers"`
	NetworkMode string      `json:"networkMode,omitempty"`
	// NetworkType is "cni" or "cnm" (how BCS built the network); the
	// cluster's CNI decides in Kubernetes, so it is accepted and ignored.
	NetworkType string `json:"networktype,omitempty"`
	// Unsupported when set: see doc.go.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	Processes    []any             `json:"processes,omitempty"`
	NetLimit     *NetLimit         `json:"netLimit,omitempty"`
}

// NetLimit is BCS's egress bandwidth limit (Mbps).
type NetLimit struct {
	EgressLimit int32 `json:"egressLimit"`
}

// Container is one container of the template.
type Container struct {
	Name     string   `json:"name,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	Command  string   `json:"command,omitempty"`
	Args     []string `json:"args,omitempty"`
	// Parameters are docker run parameters; accepted only when empty.
	Parameters []KeyValue `json:"parameters,omitempty"`
	// Type is the containerizer, "MESOS" or "DOCKER"; accepted and ignored.
	Type            string        `json:"type,omitempty"`
	Image           string        `json:"image"`
	ImagePullUser   string        `json:"imagePullUser,omitempty"`
	ImagePullPasswd string        `json:"imagePullPasswd,omitempty"`
	ImagePullPolicy string        `json:"imagePullPolicy,omitempty"`
	Privileged      bool          `json:"privileged"`
	Env             []EnvVar      `json:"env,omitempty"`
	WorkingDir      string        `json:"workingDir,omitempty"`
	Ports           []Port        `json:"ports,omitempty"`
	HealthChecks    []HealthCheck `json:"healthChecks,omitempty"`
	Resources       Resources     `json:"resources"`
	Cpuset          bool          `json:"cpuset,omitempty"`
	Volumes         []VolumeUnit  `json:"volumes,omitempty"`
	// ConfigMaps and Secrets refer to BCS configmap/secret objects; accepted
	// only when empty.
	ConfigMaps []any `json:"configmaps,omitempty"`
	Secrets    []any `json:"secrets,omitempty"`
}

// KeyValue is a docker parameter.
type KeyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// EnvVar is an environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// Port is a container port.
type Port struct {
	Name          string `json:"name"`
	HostPort      int32  `json:"hostPort,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	HostIP        string `json:"hostIP,omitempty"`
	Protocol      string `json:"protocol"`
}

// HealthCheck is one entry of healthChecks.
type HealthCheck struct {
	Type                string        `json:"type,omitempty"`
	DelaySeconds        int32         `json:"delaySeconds,omitempty"`
	GracePeriodSeconds  int32         `json:"gracePeriodSeconds,omitempty"`
	IntervalSeconds     int32         `json:"intervalSeconds,omitempty"`
	TimeoutSeconds      int32         `json:"timeoutSeconds,omitempty"`
	ConsecutiveFailures uint32        `json:"consecutiveFailures,omitempty"`
	Command             *CommandCheck `json:"command,omitempty"`
	HTTP                *HTTPCheck    `json:"http,omitempty"`
	TCP                 *TCPCheck     `json:"tcp,omitempty"`
}

// CommandCheck is healthChecks[].command; Mesos runs Value with /bin/sh -c.
type CommandCheck struct {
	Value string `json:"value,omitempty"`
}

// HTTPCheck is healthChecks[].http.
type HTTPCheck struct {
	Port     int32             `json:"port"`
	PortName string            `json:"portName"`
	Scheme   string            `json:"scheme"`
	Path     string            `json:"path"`
	Headers  map[string]string `json:"headers,omitempty"`
}

// TCPCheck is healthChecks[].tcp.
type TCPCheck struct {
	Port     int32  `json:"port"`
	PortName string `json:"portName"`
}

// Resources holds limits and requests.
type Resources struct {
	Limits    ResourceList `json:"limits"`
	Requests  ResourceList `json:"requests"`
	Externals any          `json:"externals,omitempty"`
}

// ResourceList is cpu (cores, decimal string), memory (MB, decimal string)
// and storage (MB; unsupported).
type ResourceList struct {
	CPU     string `json:"cpu,omitempty"`
	Memory  string `json:"memory,omitempty"`
	Storage string `json:"storage,omitempty"`
}

// VolumeUnit is a named host volume.
type VolumeUnit struct {
	Name   string `json:"name"`
	Volume Volume `json:"volume"`
}

// Volume is a host directory mounted into the container.
type Volume struct {
	HostPath  string `json:"hostPath,omitempty"`
	MountPath string `json:"mountPath,omitempty"`
	SubPath   string `json:"subPath,omitempty"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// RestartPolicy is BCS's taskgroup rescheduling policy.
type RestartPolicy struct {
	Policy         string `json:"policy"`
	Interval       int32  `json:"interval,omitempty"`
	Backoff        int32  `json:"backoff,omitempty"`
	MaxTimes       int32  `json:"maxtimes,omitempty"`
	HostRetainTime int64  `json:"hostRetainTime,omitempty"`
}

// KillPolicy holds the grace period, in seconds, before a container is killed.
type KillPolicy struct {
	GracePeriod int64 `json:"gracePeriod"`
}

// UpdatePolicy is BCS's application update policy.
type UpdatePolicy struct {
	UpdateDelay  int32  `json:"updateDelay,omitempty"`
	MaxRetries   int32  `json:"maxRetries,omitempty"`
	MaxFailovers int32  `json:"maxFailovers,omitempty"`
	Action       string `json:"action,omitempty"`
}

// Constraint is the placement constraint: IntersectionItem entries are
// ANDed, the unionData of each entry ORed.
type Constraint struct {
	IntersectionItem []*ConstraintItem `json:"intersectionItem,omitempty"`
	// NodeSelector is not used by the Mesos scheduler; rejected when set.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// ConstraintItem is one IntersectionItem entry.
type ConstraintItem struct {
	UnionData []*ConstraintData `json:"unionData"`
}

// Constraint value types, as BCS numbers them.
const (
	ValueScalar = 1
	ValueRange  = 2
	ValueText   = 3
	ValueSet    = 4
)

// ConstraintData is one unionData entry: an operator on a node attribute.
type ConstraintData struct {
	Name    string        `json:"name"`
	Operate string        `json:"operate"`
	Type    int32         `json:"type,omitempty"`
	Scalar  *ScalarValue  `json:"scalar,omitempty"`
	Ranges  []*RangeValue `json:"ranges,omitempty"`
	Text    *TextValue    `json:"text,omitempty"`
	Set     *SetValue     `json:"set,omitempty"`
}

// ScalarValue is a type-1 constraint value.
type ScalarValue struct {
	Value float64 `json:"value"`
}

// RangeValue is a type-2 constraint value.
type RangeValue struct {
	Begin uint64 `json:"begin"`
	End   uint64 `json:"end"`
}

// TextValue is a type-3 constraint value.
type TextValue struct {
	Value string `json:"value"`
}

// SetValue is a type-4 constraint value.
type SetValue struct {
	Item []string `json:"item"`
}
