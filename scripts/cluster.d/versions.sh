# shellcheck shell=bash disable=SC2034
# Sourced by scripts/cluster and cluster.d/build.sh: what is built, and where it is cached.
# Binaries are keyed by version under the cache, outside the repo; never commit them.
K8S_VERSION=v1.34.4 # latest 1.34 on the module proxy; 1.35 makes cgroup v1 fatal by default
# Latest 3.6 patch on the proxy. Kubernetes 1.34 documents etcd >= 3.5 and pins 3.6.4 as a
# library; Debian's 3.4 is below both.
ETCD_VERSION=v3.6.16
CACHE=${TIDEPOOL_CACHE:-$HOME/.cache/tidepool}
K8S_BIN=$CACHE/kubernetes/$K8S_VERSION/bin
ETCD_BIN=$CACHE/etcd/$ETCD_VERSION/bin
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
