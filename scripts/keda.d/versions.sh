# shellcheck shell=bash disable=SC2034
# Sourced by scripts/keda and keda.d/build.sh: which KEDA, and where it is cached (the cache root
# scripts/cluster uses). The operator binary and CRDs are keyed by version; never commit them.
# v2.21.0: v2.21.1 needs a newer Go than these machines have.
KEDA_VERSION=v2.21.0
KEDA_MODULE=github.com/kedacore/keda/v2
CACHE=${TIDEPOOL_CACHE:-$HOME/.cache/tidepool}
KEDA_DIR=$CACHE/keda/$KEDA_VERSION
KEDA_BIN=$KEDA_DIR/bin
