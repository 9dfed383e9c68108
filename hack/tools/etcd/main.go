// Command etcd is etcd's own server, built from the Go module proxy for the
// local test control plane. It is not part of gitpace.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
