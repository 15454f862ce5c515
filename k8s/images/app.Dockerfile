# tidepool (scaler and runner) and its reference connectors: one target per image, all on one
# shared app layer, so the seven images cost the disk and the node pull of one.
#
#   docker build --build-arg BASE_IMAGE=node:20-bookworm-slim --build-arg VERSION=0.1.0 \
#     -f k8s/images/app.Dockerfile --target source-faker -t tidepool/source-faker:0.1.0 .
#
# Context: the repo root, after `npm run build` and after the production dependencies were
# staged in .tidepool/images/node_modules (scripts/images does both; k8s/images/README.md).
# The root .dockerignore sends only what is copied here. Nothing is downloaded during the build.
ARG BASE_IMAGE=node:20-bookworm-slim

FROM ${BASE_IMAGE} AS app
ARG VERSION=0.0.0-dev
ENV NODE_ENV=production
WORKDIR /app
# package.json carries "type": "module", without which node would not load dist/ as ESM.
COPY package.json ./
COPY .tidepool/images/node_modules ./node_modules
COPY dist ./dist
# Files stay root-owned and read-only to the process; a numeric user lets Kubernetes verify
# runAsNonRoot without an /etc/passwd entry.
USER 10001:10001
LABEL org.opencontainers.image.title="tidepool" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

FROM app AS tidepool
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]

# Connectors: Airbyte-Protocol programs (`docker run -i IMAGE spec`). AIRBYTE_ENTRYPOINT and the
# io.airbyte labels are what Airbyte itself reads from a connector image.
FROM app AS source-faker
ARG VERSION=0.0.0-dev
ENV AIRBYTE_ENTRYPOINT="node /app/dist/connectors/source-faker/main.js"
ENTRYPOINT ["node", "/app/dist/connectors/source-faker/main.js"]
LABEL io.airbyte.name="tidepool/source-faker" io.airbyte.version="${VERSION}"

FROM app AS source-postgres
ARG VERSION=0.0.0-dev
ENV AIRBYTE_ENTRYPOINT="node /app/dist/connectors/source-postgres/main.js"
ENTRYPOINT ["node", "/app/dist/connectors/source-postgres/main.js"]
LABEL io.airbyte.name="tidepool/source-postgres" io.airbyte.version="${VERSION}"

FROM app AS destination-jsonl
ARG VERSION=0.0.0-dev
ENV AIRBYTE_ENTRYPOINT="node /app/dist/connectors/destination-jsonl/main.js"
ENTRYPOINT ["node", "/app/dist/connectors/destination-jsonl/main.js"]
LABEL io.airbyte.name="tidepool/destination-jsonl" io.airbyte.version="${VERSION}"

FROM app AS destination-postgres
ARG VERSION=0.0.0-dev
ENV AIRBYTE_ENTRYPOINT="node /app/dist/connectors/destination-postgres/main.js"
ENTRYPOINT ["node", "/app/dist/connectors/destination-postgres/main.js"]
LABEL io.airbyte.name="tidepool/destination-postgres" io.airbyte.version="${VERSION}"

# Test connectors that misbehave on purpose (hang, OOM, garbage output, ...): see docs/connectors.md.
FROM app AS source-e2e-test
ARG VERSION=0.0.0-dev
ENV AIRBYTE_ENTRYPOINT="node /app/dist/connectors/source-e2e-test/main.js"
ENTRYPOINT ["node", "/app/dist/connectors/source-e2e-test/main.js"]
LABEL io.airbyte.name="tidepool/source-e2e-test" io.airbyte.version="${VERSION}"

FROM app AS destination-e2e-test
ARG VERSION=0.0.0-dev
ENV AIRBYTE_ENTRYPOINT="node /app/dist/connectors/destination-e2e-test/main.js"
ENTRYPOINT ["node", "/app/dist/connectors/destination-e2e-test/main.js"]
LABEL io.airbyte.name="tidepool/destination-e2e-test" io.airbyte.version="${VERSION}"
