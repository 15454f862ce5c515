#!/usr/bin/env bash
# Writes a docker-archive image tarball (what `docker save` produces) from a root filesystem
# directory, without a Docker engine: one uncompressed layer, a config, a manifest. Output is
# byte-for-byte reproducible (sorted names, zero mtimes and owners), so its digest is stable.
#
# Usage: mkimage.sh NAME:TAG ROOTFS_DIR OUT.tar ENTRYPOINT_JSON CMD_JSON
#   e.g. mkimage.sh registry.k8s.io/pause:3.10 /tmp/root pause.tar '["/pause"]' 'null'
set -euo pipefail
name=$1 rootfs=$2 out=$3 entrypoint=$4 cmd=$5
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$tmp/layer.tar" .
layer=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
mkdir "$tmp/$layer"; mv "$tmp/layer.tar" "$tmp/$layer/layer.tar"
printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":%s,"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"tidepool scripts/cluster.d/mkimage.sh"}]}' \
  "$entrypoint" "$cmd" "$layer" >"$tmp/config.json"
config=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
mv "$tmp/config.json" "$tmp/$config.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$config" "$name" "$layer" >"$tmp/manifest.json"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp" -cf "$out" manifest.json "$config.json" "$layer"
