# A real Airbyte connector in a connector image: airbyte-source-faker, the Python package Airbyte
# publishes on PyPI (the code of Airbyte's own airbyte/source-faker image), installed with pip
# into a venv on Debian's Python. Tests run it in connector pods to see what the Airbyte CDK
# really sends (per-stream STATE, STREAM_STATUS and ESTIMATE traces, LOG lines) through pods,
# pipes and sidecars, not only on the host (test/k8s/airbyte-source-faker.k8s.test.ts).
#
#   docker build --build-arg BASE_IMAGE=debian:bookworm-slim --build-arg VERSION=7.2.1 \
#     -f k8s/images/airbyte-source-faker.Dockerfile -t tidepool/airbyte-source-faker:7.2.1 CONTEXT
#
# Named tidepool/airbyte-source-faker (our build of the PyPI package, not Airbyte's image) and
# tagged with the connector's version, not tidepool's: the image holds nothing of tidepool.
# CONTEXT is a directory holding
#   source-faker.constraints.txt   scripts/airbyte-connectors.d/'s: every dependency pinned, the
#                                  one list the host venv (scripts/airbyte-connectors) uses too;
#                                  VERSION must be the airbyte-source-faker pin in it
#   ca-bundle.crt                  CA certificates pip trusts for the download (scripts/images
#                                  copies the host's: a machine whose egress re-signs TLS has its
#                                  CA there; empty: pip's own bundle); only the build stage
#                                  sees it, the image has none
# The build downloads from Debian's mirror (apt-get: python3, python3-venv) and from PyPI
# (pip, wheels only); nothing else. scripts/images builds it from the local Debian base and
# caches it by its inputs (base, this file, the constraints, VERSION).
ARG BASE_IMAGE=debian:bookworm-slim

# Debian's Python 3.11, shared by the build and the final image (the venv links to its
# interpreter, so both must have the same one at the same path).
FROM ${BASE_IMAGE} AS python
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log

FROM python AS venv
ARG VERSION
# A PyPI mirror, when the host's pip uses one (scripts/images passes the host's PIP_INDEX_URL).
ARG PIP_INDEX_URL=
COPY source-faker.constraints.txt ca-bundle.crt /build/
# --only-binary: nothing is compiled (the image has no compiler), as on the host. pip compiles
# every module to bytecode here: the pod's root filesystem is read-only, so a connector could
# not write its .pyc files and would compile everything in memory at each start (`spec` took
# 10 s that way, 3 to 5 s with the bytecode; a first sync starts the connector 4 times).
# Afterwards: pip itself (not needed to run; setuptools stays, airbyte-cdk requires it) and
# the test suites of pandas and numpy (60 MB, never imported) go.
RUN test -n "$VERSION" \
 && grep -qx "airbyte-source-faker==$VERSION" /build/source-faker.constraints.txt \
 && { [ -n "$PIP_INDEX_URL" ] || unset PIP_INDEX_URL; } \
 && { [ ! -s /build/ca-bundle.crt ] || export PIP_CERT=/build/ca-bundle.crt; } \
 && python3 -m venv /opt/airbyte-source-faker \
 && PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    PIP_PROGRESS_BAR=off PIP_DEFAULT_TIMEOUT=120 \
    /opt/airbyte-source-faker/bin/python -m pip install -q --only-binary=:all: \
      --constraint /build/source-faker.constraints.txt "airbyte-source-faker==$VERSION" \
 && /opt/airbyte-source-faker/bin/python -m pip check \
 && /opt/airbyte-source-faker/bin/python -m pip uninstall -q -y pip \
 && rm -rf /opt/airbyte-source-faker/lib/python3*/site-packages/pandas/tests \
 && find /opt/airbyte-source-faker/lib/python3*/site-packages/numpy -type d -name tests -prune -exec rm -rf {} + \
 && /opt/airbyte-source-faker/bin/source-faker spec </dev/null | grep -q '^{"type": *"SPEC"'

FROM python
ARG VERSION
COPY --from=venv /opt/airbyte-source-faker /opt/airbyte-source-faker
# In a pod the connector needs a writable /tmp: the CDK makes a temporary directory for every
# command and fails without one ("No usable temporary directory"); connector pods mount an
# emptyDir there.
# PYTHONDONTWRITEBYTECODE: the bytecode is already there and the filesystem read-only; don't try.
# PYTHONUNBUFFERED: stdout is a named pipe read by a sidecar. The CDK hands its output to
# sys.__stdout__ in batches every 0.1 s; without this each batch would wait in Python's 8 KiB
# buffer, so progress and the last STATE would arrive late.
# HOME: the user (uid 10001) has no passwd entry. source-faker writes nothing there (it ran with
# HOME unwritable), but libraries of the CDK (nltk, requests-cache) look under ~; /tmp is the
# one writable directory in a pod.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PATH=/opt/airbyte-source-faker/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    AIRBYTE_ENTRYPOINT=/opt/airbyte-source-faker/bin/source-faker
ENTRYPOINT ["/opt/airbyte-source-faker/bin/source-faker"]
CMD ["spec"]
# Files stay root-owned; a numeric user lets Kubernetes verify runAsNonRoot.
USER 10001:10001
LABEL io.airbyte.name="tidepool/airbyte-source-faker" \
      io.airbyte.version="${VERSION}" \
      org.opencontainers.image.title="airbyte-source-faker" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://pypi.org/project/airbyte-source-faker/${VERSION}/" \
      org.opencontainers.image.licenses="ELv2"
