# syntax=docker/dockerfile:1
# The modeldeploy operator image: `modeldeploy run`, as the non-root UID 65532.
#
#   docker build -t ghcr.io/modeldeploy/modeldeploy:0.1.0 .
#
# PYTHON_IMAGE is any Debian-based image with python, pip and venv: the local
# cluster builds this file from a Debian base of its own (mmdebstrap + Debian's
# python3), with no registry and no network (see devtools/modeldeploy_dev/images.py).
#
# Stage 1 builds the modeldeploy wheel and wheels of all its dependencies;
# stage 2 installs them into a virtualenv with no index (nothing is downloaded
# there) and carries no compiler, pip cache or source tree. Pin the base by
# digest too (python:3.11.14-slim-bookworm@sha256:...) when you publish.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the wheel is built from (see .dockerignore): editing tests or the
# chart does not invalidate this layer.
COPY pyproject.toml README.md ./
COPY operator ./operator
# A wheelhouse/ in the build context (wheels downloaded beforehand with pip, as
# the local cluster's image build does) makes this step offline: pip then takes
# every wheel from there. Without one, pip downloads from PyPI.
RUN --mount=type=bind,target=/context \
    if [ -d /context/wheelhouse ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/context/wheelhouse; fi \
 && pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/modeldeploy/bin:$PATH
# A passwd entry for UID 65532: kopf asks getpass.getuser() for its peer
# identity when POD_ID is not set, which fails for a UID with no entry.
RUN groupadd --system --gid 65532 modeldeploy \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin modeldeploy
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/modeldeploy \
 && /opt/modeldeploy/bin/pip install --no-index --find-links=/wheels modeldeploy \
 && /opt/modeldeploy/bin/modeldeploy --help >/dev/null
USER 65532:65532
WORKDIR /tmp
# 8080: Prometheus metrics (/metrics); 8081: liveness (/healthz).
EXPOSE 8080 8081
ENTRYPOINT ["modeldeploy", "run"]
