package bcs

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func (d *Deployment) mapContainers(spec *corev1.PodSpec, errs *errList) {
	cs := d.Spec.Template.Spec.Containers
	if len(cs) == 0 {
		errs.add("spec.template.spec.containers", "at least one container is required")
		return
	}
	names := map[string]bool{}
	ports := map[string]bool{}
	vols := volumeSet{byName: map[string]volumeDef{}}
	for i, c := range cs {
		p := index("spec.template.spec.containers", i)
		out := corev1.Container{
			Name:       d.containerName(i, c, p, errs),
			Image:      c.Image,
			Args:       c.Args,
			WorkingDir: c.WorkingDir,
		}
		if names[out.Name] {
			errs.add(join(p, "name"), "container name %q is used twice", out.Name)
		}
		names[out.Name] = true
		if c.Image == "" {
			errs.add(join(p, "image"), "required")
		}
		if c.Command != "" {
			out.Command = []string{c.Command}
		}
		out.ImagePullPolicy = pullPolicy(c.ImagePullPolicy, join(p, "imagePullPolicy"), errs)
		if c.Privileged {
			out.SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
		}
		out.Env = mapEnv(c.Env, join(p, "env"), errs)
		out.Resources = mapResources(c.Resources, join(p, "resources"), errs)
		out.Ports = d.mapPorts(c.Ports, join(p, "ports"), ports, errs)
		out.ReadinessProbe, out.LivenessProbe = mapHealthChecks(c, join(p, "healthChecks"), errs)
		out.VolumeMounts = vols.add(c.Volumes, join(p, "volumes"), errs)
		rejectUnsupported(c, p, errs)
		spec.Containers = append(spec.Containers, out)
	}
	spec.Volumes = vols.list
}

// containerName is the container's own name, else the template's name when
// there is one container, else "c<i>".
func (d *Deployment) containerName(i int, c Container, p string, errs *errList) string {
	if c.Name != "" {
		if msgs := validation.IsDNS1123Label(c.Name); len(msgs) > 0 {
			errs.add(join(p, "name"), "%q is not a DNS-1123 label: %s", c.Name, strings.Join(msgs, "; "))
		}
		return c.Name
	}
	if n := strings.ToLower(d.Spec.Template.Metadata.Name); len(d.Spec.Template.Spec.Containers) == 1 && n != "" && len(validation.IsDNS1123Label(n)) == 0 {
		return n
	}
	return fmt.Sprintf("c%d", i)
}

// rejectUnsupported reports container fields that have no mapping.
func rejectUnsupported(c Container, p string, errs *errList) {
	switch strings.ToUpper(c.Type) {
	case "", "MESOS", "DOCKER":
	default:
		errs.add(join(p, "type"), `must be "MESOS" or "DOCKER", got %q`, c.Type)
	}
	if c.Hostname != "" {
		errs.add(join(p, "hostname"), "not supported: every pod already has its own hostname (its name)")
	}
	if len(c.Parameters) > 0 {
		errs.add(join(p, "parameters"), "not supported: docker run parameters have no Kubernetes mapping")
	}
	if c.ImagePullUser != "" || c.ImagePullPasswd != "" {
		errs.add(join(p, "imagePullUser"), "not supported: registry credentials belong in an image pull secret, not in the manifest")
	}
	if c.Cpuset {
		errs.add(join(p, "cpuset"), "not supported: CPU pinning is the kubelet's CPU manager policy, not a pod field")
	}
	if len(c.ConfigMaps) > 0 {
		errs.add(join(p, "configmaps"), "not supported: BCS configmap injection has no mapping; use a Kubernetes ConfigMap")
	}
	if len(c.Secrets) > 0 {
		errs.add(join(p, "secrets"), "not supported: BCS secrets (vault) have no mapping; use a Kubernetes Secret")
	}
}

func pullPolicy(s, p string, errs *errList) corev1.PullPolicy {
	for _, v := range []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever} {
		if strings.EqualFold(s, string(v)) {
			return v
		}
	}
	if s != "" {
		errs.add(p, `must be "Always", "IfNotPresent" or "Never", got %q`, s)
	}
	return corev1.PullIfNotPresent // BCS's default
}

func mapEnv(env []EnvVar, p string, errs *errList) []corev1.EnvVar {
	var out []corev1.EnvVar
	seen := map[string]bool{}
	for i, e := range env {
		ep := index(p, i)
		switch {
		case e.Name == "":
			errs.add(join(ep, "name"), "required")
		case seen[e.Name]:
			errs.add(join(ep, "name"), "%q is set twice", e.Name)
		}
		seen[e.Name] = true
		if strings.Contains(e.Value, "${bcs.") {
			errs.add(join(ep, "value"), "not supported: BCS template variables (${bcs.*}) are not substituted")
		}
		out = append(out, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	return out
}

// mapPorts maps container ports; names collects port names across the pod.
func (d *Deployment) mapPorts(ports []Port, p string, names map[string]bool, errs *errList) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	host := d.hostNetwork()
	for i, pt := range ports {
		pp := index(p, i)
		cp := corev1.ContainerPort{Name: pt.Name, ContainerPort: pt.ContainerPort, HostIP: pt.HostIP}
		if pt.Name != "" {
			if msgs := validation.IsValidPortName(pt.Name); len(msgs) > 0 {
				errs.add(join(pp, "name"), "%q is not a valid Kubernetes port name: %s", pt.Name, strings.Join(msgs, "; "))
			} else if names[pt.Name] {
				errs.add(join(pp, "name"), "port name %q is used twice", pt.Name)
			}
			names[pt.Name] = true
		}
		switch strings.ToUpper(pt.Protocol) {
		case "HTTP", "TCP":
			cp.Protocol = corev1.ProtocolTCP
		case "UDP":
			cp.Protocol = corev1.ProtocolUDP
		case "":
			errs.add(join(pp, "protocol"), "required")
		default:
			errs.add(join(pp, "protocol"), `must be "HTTP", "TCP" or "UDP", got %q`, pt.Protocol)
		}
		switch {
		case host && pt.ContainerPort == 0:
			errs.add(join(pp, "containerPort"), "not supported: a random host port (0) under HOST networking has no mapping")
		case pt.ContainerPort < 1 || pt.ContainerPort > 65535:
			errs.add(join(pp, "containerPort"), "must be between 1 and 65535, got %d", pt.ContainerPort)
		}
		switch {
		case pt.HostPort > 65535:
			errs.add(join(pp, "hostPort"), "must be at most 65535, got %d", pt.HostPort)
		case host && pt.HostPort > 0 && pt.HostPort != pt.ContainerPort:
			errs.add(join(pp, "hostPort"), "under HOST networking the container listens on containerPort %d of the host; hostPort must be 0 or equal to it, got %d", pt.ContainerPort, pt.HostPort)
		case host:
			cp.HostPort = pt.ContainerPort
		case pt.HostPort > 0:
			cp.HostPort = pt.HostPort
		}
		out = append(out, cp)
	}
	return out
}

// mapResources maps cpu cores and memory MB; requests default to limits.
func mapResources(r Resources, p string, errs *errList) corev1.ResourceRequirements {
	limits := corev1.ResourceList{}
	if q, ok := cpuQuantity(r.Limits.CPU, join(p, "limits.cpu"), errs); ok {
		limits[corev1.ResourceCPU] = q
	}
	if q, ok := memoryQuantity(r.Limits.Memory, join(p, "limits.memory"), errs); ok {
		limits[corev1.ResourceMemory] = q
	}
	requests := limits.DeepCopy()
	if r.Requests.CPU != "" {
		if q, ok := cpuQuantity(r.Requests.CPU, join(p, "requests.cpu"), errs); ok {
			if l, has := limits[corev1.ResourceCPU]; has && q.Cmp(l) > 0 {
				errs.add(join(p, "requests.cpu"), "%s is above limits.cpu %s", r.Requests.CPU, r.Limits.CPU)
			}
			requests[corev1.ResourceCPU] = q
		}
	}
	if r.Requests.Memory != "" {
		if q, ok := memoryQuantity(r.Requests.Memory, join(p, "requests.memory"), errs); ok {
			if l, has := limits[corev1.ResourceMemory]; has && q.Cmp(l) > 0 {
				errs.add(join(p, "requests.memory"), "%s is above limits.memory %s", r.Requests.Memory, r.Limits.Memory)
			}
			requests[corev1.ResourceMemory] = q
		}
	}
	if r.Limits.Storage != "" || r.Requests.Storage != "" {
		errs.add(join(p, "limits.storage"), "not supported: Mesos disk quotas have no faithful mapping")
	}
	if !isEmpty(r.Externals) {
		errs.add(join(p, "externals"), "not supported: BCS extended resources have no mapping")
	}
	return corev1.ResourceRequirements{Limits: limits, Requests: requests}
}

// volumeSet gathers the pod's volumes from the containers' host volumes.
type volumeSet struct {
	list   []corev1.Volume
	byName map[string]volumeDef
}

type volumeDef struct {
	hostPath string
	path     string
}

func (s *volumeSet) add(units []VolumeUnit, p string, errs *errList) []corev1.VolumeMount {
	var mounts []corev1.VolumeMount
	for i, u := range units {
		vp := index(p, i)
		v := u.Volume
		if msgs := validation.IsDNS1123Label(u.Name); len(msgs) > 0 {
			errs.add(join(vp, "name"), "%q is not a DNS-1123 label: %s", u.Name, strings.Join(msgs, "; "))
		}
		if !path.IsAbs(v.MountPath) {
			errs.add(join(vp, "volume.mountPath"), "must be an absolute path, got %q", v.MountPath)
		}
		switch {
		case strings.Contains(v.HostPath, "$"):
			errs.add(join(vp, "volume.hostPath"), "not supported: variables in host paths are not substituted")
		case v.HostPath != "" && !path.IsAbs(v.HostPath):
			errs.add(join(vp, "volume.hostPath"), "must be an absolute path, got %q", v.HostPath)
		}
		if prev, ok := s.byName[u.Name]; ok {
			if prev.hostPath != v.HostPath {
				errs.add(join(vp, "name"), "volume %q is defined differently at %s", u.Name, prev.path)
			}
		} else {
			s.byName[u.Name] = volumeDef{hostPath: v.HostPath, path: vp}
			vol := corev1.Volume{Name: u.Name}
			if v.HostPath == "" {
				vol.EmptyDir = &corev1.EmptyDirVolumeSource{} // BCS: a fresh directory per pod
			} else {
				vol.HostPath = &corev1.HostPathVolumeSource{Path: v.HostPath}
			}
			s.list = append(s.list, vol)
		}
		mounts = append(mounts, corev1.VolumeMount{Name: u.Name, MountPath: v.MountPath, SubPath: v.SubPath, ReadOnly: v.ReadOnly})
	}
	return mounts
}

// isEmpty reports a JSON value that says nothing: absent, null, {} or [].
func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}
