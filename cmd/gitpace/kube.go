package main

import (
	"os"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeFlags are the cluster connection flags shared by every command that
// reads or writes the cluster.
type kubeFlags struct {
	kubeconfig string
	context    string
	qps        float32
	burst      int
}

func (k *kubeFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "path to a kubeconfig (default: $KUBECONFIG, then in-cluster config, then ~/.kube/config)")
	fs.StringVar(&k.context, "context", "", "kubeconfig context to use")
	fs.Float32Var(&k.qps, "kube-qps", -1, "client-side limit of API requests per second; negative: none, relying on the API server's priority and fairness and on --concurrency (as Flux does when the server has APF, and controller-runtime by default)")
	fs.IntVar(&k.burst, "kube-burst", 300, "client-side burst of API requests, when --kube-qps is positive")
}

// config resolves the client configuration the way kubectl does, with
// in-cluster config when no kubeconfig is named and the pod has one.
func (k *kubeFlags) config() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if k.kubeconfig == "" && os.Getenv("KUBECONFIG") == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err = rest.InClusterConfig()
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = k.kubeconfig
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
			&clientcmd.ConfigOverrides{CurrentContext: k.context}).ClientConfig()
	}
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = k.qps, k.burst
	cfg.UserAgent = "gitpace/" + buildVersion()
	return cfg, nil
}
