# Test-only stand-in for node:20-bookworm-slim, built without a registry: the debootstrapped
# Debian base plus the host's Node 20 binary (Debian bookworm's own nodejs is 18, too old).
# Context: a directory holding `node` (scripts/images stages it). Same path as the official image.
ARG BASE_IMAGE=tidepool/debian:bookworm
FROM ${BASE_IMAGE}
COPY node /usr/local/bin/node
RUN node -e 'if (+process.versions.node.split(".")[0] < 20) process.exit(1)'
CMD ["node"]
