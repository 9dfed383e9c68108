package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/sources/helm"
	"github.com/gitpace/gitpace/sources/manifest"
)

func newRenderCommand() *cobra.Command {
	var src sourceFlags
	var kube kubeFlags
	var rev, output string
	var offline bool
	cmd := &cobra.Command{
		Use:   "render [APP] --repo URL [--rev REV] [-o yaml|json]",
		Short: "Print the objects gitpace would apply for a revision (kustomize build / helm template), Secret values masked",
		Long: `Render prints the objects of every app of revision REV (a branch, tag or
commit; default: the branch head), or of APP alone, as gitpace applies them:
plain manifests, 'kustomize build' of kustomize apps, 'helm template' of Helm
apps, with gitpace.yaml's app settings. Secret data and stringData values are
masked, as in 'gitpace diff'. gitpace's own labels and annotations, and the
default namespace for objects that name none, are added at apply time and
not shown. Helm's .Capabilities come from the cluster of --kubeconfig when it
answers (else Helm's defaults; --offline never asks). Helm hooks are listed on
standard error: gitpace renders them but does not apply them yet.
Exits 1 when an app does not render, printing the others, and when
gitpace.yaml is invalid (then every app is, as the agent rejects them),
printing nothing.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := src.source()
			if err != nil {
				return err
			}
			defer s.Close() // a temporary mirror goes with the process
			var snap *sources.Snapshot
			if rev == "" {
				snap, err = s.Fetch(cmd.Context(), "")
			} else {
				snap, err = s.SnapshotAt(cmd.Context(), rev)
			}
			if err != nil {
				return err
			}
			if _, err := policies.ConfigFromFiles(snap.Files, snap.Path); err != nil {
				// The app settings (namespace, Helm values...) are unknown:
				// the agent rejects every app of this revision, so nothing
				// of it would be applied.
				cmd.PrintErrf("revision %s: every app is invalid: %v\n", snap.Revision.Short(), err)
				return &exitError{code: 1}
			}
			var caps func() *helm.Capabilities
			if !offline {
				caps = clusterCaps(cmd, kube)
			}
			apps := manifest.NewLoader(caps).Load(snap)
			if len(args) == 1 {
				apps = pick(apps, args[0])
				if apps == nil {
					return usageErr(fmt.Sprintf("revision %s has no app %q", snap.Revision.Short(), args[0]))
				}
			}
			failed := false
			for _, a := range apps {
				if a.Err != nil {
					failed = true
					cmd.PrintErrf("app %s: %v\n", a.Name, a.Err)
				}
				for _, h := range a.Hooks {
					cmd.PrintErrf("app %s: hook %s %s/%s (%s, weight %d): applied by the agent %s the app's objects, not printed here\n", a.Name, h.Phase, h.Object.GetKind(), h.Object.GetName(), h.Origin.File, h.Weight, hookWhen(h.Phase))
				}
				for _, n := range a.Notes {
					cmd.PrintErrf("app %s: %s\n", a.Name, n)
				}
			}
			if err := manifest.Print(cmd.OutOrStdout(), output, apps, maskSecret); err != nil {
				return err
			}
			if failed {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	src.add(cmd.Flags())
	kube.add(cmd.Flags())
	cmd.Flags().StringVar(&rev, "rev", "", "branch, tag or commit to render (default: the branch head)")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	cmd.Flags().BoolVar(&offline, "offline", false, "do not ask a cluster for Helm's .Capabilities (use Helm's defaults)")
	return cmd
}

func pick(apps []manifest.App, name string) []manifest.App {
	for _, a := range apps {
		if a.Name == name {
			return []manifest.App{a}
		}
	}
	return nil
}

// maskSecret masks a Secret's values as `gitpace diff` does.
func maskSecret(o *unstructured.Unstructured) *unstructured.Unstructured {
	_, m := appliers.MaskSecrets(o, o) // every value "unchanged": "***"
	return m
}

// clusterCaps returns the cluster's capabilities when --kubeconfig names a
// cluster that answers within 10 s, else nil (Helm's defaults), saying so.
func clusterCaps(cmd *cobra.Command, kube kubeFlags) func() *helm.Capabilities {
	rc, err := kube.config()
	if err == nil {
		rc.Timeout = 10 * time.Second
		var cs *kubernetes.Clientset
		if cs, err = kubernetes.NewForConfig(rc); err == nil {
			var caps *helm.Capabilities
			if caps, err = helm.ClusterCapabilities(cs.Discovery()); err == nil {
				return func() *helm.Capabilities { return caps }
			}
		}
	}
	cmd.PrintErrf("note: Helm .Capabilities are Helm's defaults (no cluster: %v)\n", err)
	return nil
}

// hookWhen is when the agent runs a hook of phase, relative to the app's
// objects (agent/hooks.go).
func hookWhen(p helm.Phase) string {
	if p == helm.PreSync {
		return "before"
	}
	return "after"
}
