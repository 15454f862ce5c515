#!/usr/bin/env bash
# Builds the Kubernetes and etcd binaries from upstream source through the Go module proxy and
# caches them outside the repo, keyed by version. Only a fresh machine pays the build (measured
# on these 2-core VMs: see the timing line this prints, also saved next to the binaries).
#
# Usage: build.sh            build what is missing, print nothing else on success
# Env:   TIDEPOOL_CACHE      cache root (default $HOME/.cache/tidepool)
#
# Cache layout ($TIDEPOOL_CACHE):
#   kubernetes/<version>/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kubectl}
#   kubernetes/<version>/src/      the outside module (go.mod with the staging replaces, go.sum)
#   kubernetes/<version>/build-time.txt
#   etcd/<version>/bin/etcd, etcd/<version>/src/, etcd/<version>/build-time.txt
#   gomod/                         GOMODCACHE (read-only files: remove with `go clean -modcache`)
# Go's build cache stays where `go env GOCACHE` says; it only speeds up a rebuild.
set -euo pipefail

# shellcheck source=SCRIPTDIR/versions.sh
. "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
K8S_DIR=${K8S_BIN%/bin}
ETCD_DIR=${ETCD_BIN%/bin}

log() { echo "cluster: $*" >&2; }

# The module download cache lives with the binaries so CI can keep one directory.
export GOMODCACHE=$CACHE/gomod
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export GOPROXY=${GOPROXY:-https://proxy.golang.org}

k8s_done() { local c; for c in "${K8S_CMDS[@]}"; do [[ -x $K8S_DIR/bin/$c ]] || return 1; done; }
etcd_done() { [[ -x $ETCD_DIR/bin/etcd ]]; }

# An outside module: upstream's go.mod lists its staging modules at v0.0.0 with replaces to
# ./staging, which only hold inside its repo; replace each with the published v0.N.P tag.
prepare_k8s_module() {
  local src=$K8S_DIR/src minor staging_ver m
  rm -rf "$src"; mkdir -p "$src"
  cd "$src"
  go mod init tidepool.local/kubernetes-build >/dev/null 2>&1
  go mod edit -go=1.24.0 -require="k8s.io/kubernetes@$K8S_VERSION"
  local upstream
  upstream=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f $upstream ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION go.mod"; return 1; }
  staging_ver=v0.${K8S_VERSION#v1.}
  local n=0
  while read -r m; do
    go mod edit -replace="$m=$m@$staging_ver"; n=$((n + 1))
  done < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$upstream" | sort -u)
  [[ $n -gt 0 ]] || { log "no v0.0.0 staging modules found in $upstream"; return 1; }
  {
    echo '//go:build tools'
    echo
    echo 'package tools'
    echo
    echo 'import ('
    for m in "${K8S_CMDS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$m\""; done
    echo ')'
  } >tools.go
  log "kubernetes $K8S_VERSION: $n staging modules replaced with $staging_ver; resolving modules"
  nice go mod tidy
}

build_k8s() {
  local t0=$SECONDS minor major ldflags c
  prepare_k8s_module
  major=${K8S_VERSION#v}; major=${major%%.*}
  minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=archive -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$K8S_DIR/bin.tmp"
  for c in "${K8S_CMDS[@]}"; do
    log "building $c $K8S_VERSION (cold builds take many minutes on 2 cores)"
    nice go build -p 2 -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" \
      -o "$K8S_DIR/bin.tmp/$c" "k8s.io/kubernetes/cmd/$c"
  done
  rm -rf "${K8S_DIR:?}/bin"; mv "$K8S_DIR/bin.tmp" "$K8S_DIR/bin"
  echo "kubernetes $K8S_VERSION built in $((SECONDS - t0)) s on $(nproc) cores, $(date -u +%FT%TZ)" \
    | tee "$K8S_DIR/build-time.txt" | sed 's/^/cluster: /' >&2
}

build_etcd() {
  local t0=$SECONDS src=$ETCD_DIR/src
  rm -rf "$src"; mkdir -p "$src" "$ETCD_DIR/bin.tmp"
  cd "$src"
  go mod init tidepool.local/etcd-build >/dev/null 2>&1
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
  log "building etcd $ETCD_VERSION"
  nice go mod tidy
  nice go build -p 2 -trimpath -ldflags "-s -w" -o "$ETCD_DIR/bin.tmp/etcd" go.etcd.io/etcd/server/v3
  rm -rf "${ETCD_DIR:?}/bin"; mv "$ETCD_DIR/bin.tmp" "$ETCD_DIR/bin"
  echo "etcd $ETCD_VERSION built in $((SECONDS - t0)) s on $(nproc) cores, $(date -u +%FT%TZ)" \
    | tee "$ETCD_DIR/build-time.txt" | sed 's/^/cluster: /' >&2
}

etcd_done && k8s_done && exit 0
command -v go >/dev/null || { log "go is required to build Kubernetes and etcd (none on PATH)"; exit 1; }
mkdir -p "$CACHE"
# One build at a time per cache (two `up`s racing would corrupt the half-built tree).
exec 9>"$CACHE/.build.lock"
flock -w 3600 9 || { log "timed out waiting for another build holding $CACHE/.build.lock"; exit 1; }
etcd_done || build_etcd
k8s_done || build_k8s
