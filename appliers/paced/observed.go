package paced

import "time"

// Observed is what the cluster holds of one deployment: its applications
// (ReplicaSets labelled with the deployment) and their pods.
type Observed struct {
	Apps []App
}

// App is one observed application.
type App struct {
	// Name is the ReplicaSet's name.
	Name string
	// Replicas is spec.replicas.
	Replicas int32
	// Pods counts the application's pods that exist, terminating ones
	// included; Ready counts those Ready and not terminating.
	Pods, Ready int32
	// TemplateHash is the ReplicaSet's AnnotationTemplateHash.
	TemplateHash string
	// Created is the ReplicaSet's creation time.
	Created time.Time
	// Deleting is set once the ReplicaSet has a deletion timestamp; such an
	// application counts as gone, but its name stays taken.
	Deleting bool
}

// live returns the application named name if it exists and is not being
// deleted.
func (o Observed) live(name string) (App, bool) {
	if name == "" {
		return App{}, false
	}
	for _, a := range o.Apps {
		if a.Name == name && !a.Deleting {
			return a, true
		}
	}
	return App{}, false
}

// taken reports whether any ReplicaSet, even one being deleted, has name.
func (o Observed) taken(name string) bool {
	for _, a := range o.Apps {
		if a.Name == name {
			return true
		}
	}
	return false
}
