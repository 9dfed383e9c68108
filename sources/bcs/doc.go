// Package bcs reads BlueKing Container Service (BCS) v4 `deployment`
// manifests (the Mesos scheme: JSON, apiVersion "v4", kind "deployment") and
// maps each BCS application of a deployment to a Kubernetes ReplicaSet. It is
// pure code: it talks to no cluster. The rollout semantics that drive those
// ReplicaSets (cycles of maxSurge/maxUnavailable, upgradeDuration,
// rollingOrder, pause, resume, cancel) live in the rollout engine; this
// package gives it Strategy, Instance, Namespace, TemplateHash and ReplicaSet.
//
// # Reading
//
// Parse is strict. A JSON syntax error names the file, line and column.
// Keys match BCS's JSON names exactly or, like Go's encoding/json that BCS
// uses, case-insensitively ("IntersectionItem" in the BCS guide is BCS's
// "intersectionItem"). A key BCS does not define is an error naming its path,
// as is a key given twice. Fields that BCS defines but gitpace cannot honour
// are decoded so that the error says why ("not supported: ...") instead of
// "unknown field". Accepted but ignored, because they change nothing in
// Kubernetes: containers[].type ("MESOS"/"DOCKER"), spec.template.spec.networktype
// ("cni"/"cnm"), metadata.creationTimestamp, empty parameters, volumes,
// secrets and configmaps, the http/tcp/command blocks of a health check whose
// type does not use them, and REMOTE_HTTP/REMOTE_TCP checks.
//
// Validation follows BCS: maxSurge and maxUnavailable ≤ 0 mean 1 (defaults,
// not errors); maxUnavailable may be spelled "maxUnavilable" (BCS's own tag)
// and if both spellings are present they must agree; rollingOrder must be
// "CreateFirst" or "DeleteFirst" (empty is an error); strategy.type must be
// "RollingUpdate"; instance ≥ 0; metadata.name is a DNS-1123 label of at most
// 51 characters (so "<name>-v<unix seconds>" is a valid label value);
// the namespace (default "defaultGroup") lower-cased is a DNS-1123 label.
//
// # Mapping (Deployment.ReplicaSet)
//
//	BCS                                   Kubernetes
//	metadata.namespace                    namespace, lower-cased ("defaultGroup" → "defaultgroup")
//	metadata.labels                       ReplicaSet and pod labels (EXCLUDE matches them, as BCS matched application labels)
//	metadata.annotations                  ReplicaSet annotations
//	spec.template.metadata.labels         pod labels (a value conflicting with metadata.labels is an error)
//	spec.template.metadata.annotations    pod annotations
//	(gitpace)                             labels bcs.gitpace.dev/deployment and bcs.gitpace.dev/application (the selector),
//	                                      annotation bcs.gitpace.dev/template-hash
//	spec.instance                         not mapped: replicas is 0, the rollout engine scales
//	spec.selector                         not mapped: kept for the engine (an update changing it is refused)
//	containers[].name                     container name; else spec.template.metadata.name for a lone container; else "c<i>"
//	command + args                        command: [command], args
//	image, workingDir, env                image, workingDir, env (BCS ${bcs.*} variables are an error: not substituted)
//	imagePullPolicy                       same; empty → IfNotPresent (BCS's default)
//	privileged                            securityContext.privileged
//	resources.limits.cpu "0.5"            limits.cpu 500m (positive decimal, multiple of 0.001)
//	resources.limits.memory "4096" (MB)   limits.memory 4096Mi (shown as 4Gi); below 4 MB BCS sets no limit: error
//	resources.requests                    requests; each defaults to the limit (BCS's rule); above the limit: error
//	ports[].protocol HTTP/TCP/UDP         TCP/TCP/UDP (any case); empty or other: error
//	ports[].containerPort, name, hostIP   same; a name must be a valid Kubernetes port name
//	ports[].hostPort > 0                  hostPort
//	ports[].hostPort ≤ 0 (non-HOST)       none: BCS picked a random host port; the pod is reached on its own IP
//	networkMode HOST                      hostNetwork: true; hostPort = containerPort; containerPort 0 (random): error
//	networkMode BRIDGE/NONE/USER/custom   pod network (NONE gets a network interface it had not under Docker)
//	volumes[] hostPath                    hostPath volume + mount (subPath, readOnly); empty hostPath → emptyDir
//	healthChecks HTTP/TCP/COMMAND         readinessProbe (failureThreshold 1, initialDelay = delaySeconds,
//	                                      period = intervalSeconds, timeout = timeoutSeconds; 0 = Kubernetes default);
//	                                      plus livenessProbe when consecutiveFailures > 0 (failureThreshold =
//	                                      consecutiveFailures, initialDelay = max(delaySeconds, gracePeriodSeconds));
//	                                      port > 0 or the container port named portName; COMMAND → /bin/sh -c value
//	healthChecks REMOTE_HTTP/REMOTE_TCP   nothing: the scheduler ran them; they neither gated nor killed
//	restartPolicy.policy                  pods restartPolicy Always; "", OnFailure, Always accepted (a ReplicaSet
//	                                      also replaces pods lost with their node, which OnFailure did not);
//	                                      Never: error (a ReplicaSet always replaces its pods)
//	killPolicy.gracePeriod > 0            terminationGracePeriodSeconds (0: Kubernetes default)
//
// Constraints: IntersectionItem entries are ANDed, the unionData of an entry
// ORed. Node requirements are multiplied out into node-affinity terms (at most
// 32); the operators that become pod anti-affinity, topology spread or
// tolerations cannot be ORed and must be alone in their entry. Attribute
// "hostname" and "InnerIP" map to the node label kubernetes.io/hostname (for
// value operators on InnerIP, nodes must be named by their IP, as in BCS
// clusters); any other attribute to the node label of the same name.
//
//	UNIQUE            required pod anti-affinity on the attribute, matching bcs.gitpace.dev/deployment:
//	                  old and new applications together (BCS counted each application apart);
//	                  plus node affinity Exists for attributes other than the hostname (BCS skipped
//	                  nodes without the attribute)
//	MAXPER 1          as UNIQUE. MAXPER N > 1: error (Kubernetes cannot cap pods per domain above 1;
//	                  maxSkew bounds a difference, not a count)
//	CLUSTER           node affinity In (text: one value; set: the values)
//	LIKE / UNLIKE     BCS matches fnmatch(pattern) or an unanchored regexp, which has no node-label
//	                  equivalent; only a pattern anchored "^...$" with a finite language of at most
//	                  64 values is expanded to In / (Exists + NotIn); anything else is an error
//	GROUPBY set       node affinity In set + topologySpreadConstraint maxSkew 1, DoNotSchedule, over
//	                  the pods of the same application (as BCS counted)
//	EXCLUDE set k:v   required pod anti-affinity per item on kubernetes.io/hostname against pods
//	                  labelled k=v in every namespace, except this deployment's own. Kubernetes
//	                  enforces required anti-affinity both ways, so k=v pods will not be placed next
//	                  to these either; BCS only checked one way
//	GREATER scalar    node affinity Gt (whole numbers only: Kubernetes compares integers)
//	TOLERATION        toleration key=value, effect NoSchedule (BCS taints are NoSchedule)
//	anything else     error naming constraint...unionData[j].operate
//
// Rejected with an error naming the path, because nothing in Kubernetes does
// the same: docker parameters, container hostname, imagePullUser/Passwd,
// cpuset, storage and external resources, BCS configmaps and secrets, volume
// paths with variables, netLimit, processes, nodeSelector (ignored by the
// Mesos scheduler), io.tencent.bcs.netsvc.requestip.* (fixed IPs),
// restartPolicy interval/backoff/maxtimes/hostRetainTime, updatePolicy,
// pauseDeployment, clusterName, HTTP check headers (BCS sent them only for
// REMOTE_HTTP), more than one HTTP/TCP/COMMAND check per container, and
// kind "application" (only deployments are read).
package bcs
