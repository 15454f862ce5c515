#!/usr/bin/env bash
# Builds the KEDA operator from upstream source through the Go module proxy and caches it
# outside the repo, keyed by version, with the CRDs from the same module. Only a fresh machine
# pays the build (the timing line it prints is saved next to the binary).
#
# Usage: build.sh            build what is missing, print nothing else on success
# Env:   TIDEPOOL_CACHE      cache root (default $HOME/.cache/tidepool)
#
# Cache layout ($TIDEPOOL_CACHE):
#   keda/<version>/bin/keda-operator
#   keda/<version>/crds/*.yaml     config/crd/bases of the same module version
#   keda/<version>/src/            the outside module (go.mod with KEDA's replaces, go.sum)
#   keda/<version>/build-time.txt
#   gomod/                         GOMODCACHE, shared with scripts/cluster's build
set -euo pipefail

# shellcheck source=SCRIPTDIR/versions.sh
. "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

log() { echo "keda: $*" >&2; }

export GOMODCACHE=$CACHE/gomod
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export GOPROXY=${GOPROXY:-https://proxy.golang.org}

built() { [[ -x $KEDA_BIN/keda-operator && -n $(ls "$KEDA_DIR/crds/"*.yaml 2>/dev/null) ]]; }

# An outside module requiring KEDA: replace directives only hold in the main module, so KEDA's
# own (read from its go.mod, not typed here) are copied into ours.
prepare_module() {
  local src=$KEDA_DIR/src upstream n=0 line
  rm -rf "$src"; mkdir -p "$src"
  cd "$src"
  go mod init tidepool.local/keda-build >/dev/null 2>&1
  go mod edit -require="$KEDA_MODULE@$KEDA_VERSION"
  upstream=$(go mod download -json "$KEDA_MODULE@$KEDA_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f $upstream ]] || { log "could not download $KEDA_MODULE@$KEDA_VERSION go.mod"; return 1; }
  go mod edit -go="$(awk '$1 == "go" {print $2; exit}' "$upstream")"
  # Single-line `replace a v => b v` and the lines of a `replace ( ... )` block.
  while read -r line; do
    go mod edit -replace="$line"; n=$((n + 1))
  done < <(awk '
    /^replace \(/ {blk=1; next}
    blk && /^\)/ {blk=0; next}
    blk && NF >= 4 && $0 !~ /^[ \t]*\/\// {print $1 "@" $2 "=" $4 "@" $5; next}
    /^replace [^(]/ {print $2 "@" $3 "=" $5 "@" $6}
  ' "$upstream" | sed 's/@=/=/; s/@$//')
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/operator"\n' "$KEDA_MODULE" >tools.go
  log "keda $KEDA_VERSION: $n replace(s) copied from its go.mod; resolving modules"
  nice go mod tidy
}

build() {
  local t0=$SECONDS mod
  prepare_module
  mkdir -p "$KEDA_DIR/bin.tmp"
  log "building keda-operator $KEDA_VERSION (a cold build takes minutes on 2 cores)"
  nice go build -p 2 -trimpath -ldflags "-s -w -X $KEDA_MODULE/version.Version=${KEDA_VERSION#v}" \
    -o "$KEDA_DIR/bin.tmp/keda-operator" "$KEDA_MODULE/cmd/operator"
  mod=$(go list -m -f '{{.Dir}}' "$KEDA_MODULE")
  rm -rf "$KEDA_DIR/crds.tmp"; mkdir -p "$KEDA_DIR/crds.tmp"
  cp "$mod"/config/crd/bases/*.yaml "$KEDA_DIR/crds.tmp/"
  chmod u+w "$KEDA_DIR/crds.tmp/"*.yaml
  rm -rf "$KEDA_DIR/crds" "$KEDA_BIN"
  mv "$KEDA_DIR/crds.tmp" "$KEDA_DIR/crds"; mv "$KEDA_DIR/bin.tmp" "$KEDA_BIN"
  echo "keda $KEDA_VERSION built in $((SECONDS - t0)) s on $(nproc) cores, $(date -u +%FT%TZ)" \
    | tee "$KEDA_DIR/build-time.txt" | sed 's/^/keda: /' >&2
}

built && exit 0
command -v go >/dev/null || { log "go is required to build KEDA (none on PATH)"; exit 1; }
mkdir -p "$CACHE"
# One build at a time per cache, shared with scripts/cluster's build (both fill gomod/).
exec 9>"$CACHE/.build.lock"
flock -w 3600 9 || { log "timed out waiting for another build holding $CACHE/.build.lock"; exit 1; }
built || build
