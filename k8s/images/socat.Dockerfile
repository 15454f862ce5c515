# Sidecar image of connector pods: socat moves each named pipe over TCP to the runner; a shell
# and coreutils (mkfifo, sleep) make the pipes and run the heartbeat.
# busybox-static's wget crashes on the project's machines, so nothing here relies on busybox.
#
#   docker build --build-arg BASE_IMAGE=debian:bookworm-slim --build-arg VERSION=0.1.0 \
#     -t tidepool/socat:0.1.0 - < k8s/images/socat.Dockerfile
#
# The local base (scripts/images) already has socat, so the RUN below needs no network there;
# from debian:bookworm-slim it installs socat from Debian's packages.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE}
ARG VERSION=0.0.0-dev
RUN command -v socat >/dev/null || { \
      apt-get update && apt-get install -y --no-install-recommends socat && \
      rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; } \
 && socat -V >/dev/null
USER 10001:10001
LABEL org.opencontainers.image.title="tidepool-socat" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
CMD ["socat", "-V"]
