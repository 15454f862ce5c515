# RabbitMQ from Debian's package, for tests that need a broker of their own to stop and restart
# (testcontainers). scripts/images builds it as tidepool/test-rabbitmq:bookworm from the local
# Debian base; with a registry, TIDEPOOL_TEST_RABBITMQ_IMAGE=rabbitmq:3.13 works the same.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null \
 && rm -rf /var/lib/apt/lists/*
# Clients reach it through a published port, so not from loopback: guest must be allowed from
# anywhere — inside a throw-away test container only. Logs to stdout, so the test can wait for
# "Server startup complete".
RUN printf '%s\n' 'loopback_users = none' 'listeners.tcp.default = 5672' 'log.console = true' 'log.console.level = info' 'log.file = false' \
      > /etc/rabbitmq/rabbitmq.conf
USER rabbitmq
ENV HOME=/var/lib/rabbitmq
EXPOSE 5672
CMD ["rabbitmq-server"]
