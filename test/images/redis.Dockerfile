# Redis from Debian's package, for tests that need a store of their own to stop and restart
# (testcontainers). scripts/images builds it as tidepool/test-redis:bookworm from the local
# Debian base; with a registry, TIDEPOOL_TEST_REDIS_IMAGE=redis:7 works the same.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
# appendfsync always: a restart must not lose a write the store acknowledged (what the
# outage tests check), whatever it costs a benchmark.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes", "--appendfsync", "always"]
