// Command etcd is etcd's own server entry point, built from the go.etcd.io/etcd/server/v3 module
// that kube-apiserver already depends on (go install of etcd itself fails on its replace lines).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
