# syntax=docker/dockerfile:1
# The inference gateway image: `python -m gateway` (uvicorn, one worker per container;
# Kubernetes scales pods). Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t trademaster/gateway:0.1.0 .
# Written for BuildKit (docker/gateway.Dockerfile.dockerignore limits the context). Never built
# on the development machines: they have no Docker engine (docker/README.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
# Only the gateway group of pyproject.toml (no Airflow, MLflow, torch or transformers); the
# project itself comes below with --no-deps.
COPY requirements/gateway.lock /tmp/gateway.lock
RUN /opt/venv/bin/pip install -r /tmp/gateway.lock

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FEAST_USAGE=False \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_WORKERS=1
RUN groupadd --gid 10001 trademaster \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin trademaster
COPY --from=venv /opt/venv /opt/venv
WORKDIR /opt/trademaster
COPY pyproject.toml README.md ./
COPY trademaster/ trademaster/
COPY gateway/ gateway/
COPY feature_repo/ feature_repo/
# Editable, as scripts/bootstrap.sh installs it: trademaster.settings.PROJECT_ROOT is then this
# source tree, where the gateway reads feature_repo/feature_store.yaml. Byte-compiled now
# because the root filesystem is read-only at run time.
RUN pip install --no-deps -e . \
    && python -m compileall -q trademaster gateway
USER 10001:10001
EXPOSE 8080
# For `docker run`; Kubernetes ignores it and uses the Deployment's probes (/health, /ready).
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GATEWAY_PORT', '8080') + '/health', timeout=2)"]
CMD ["python", "-m", "gateway"]
