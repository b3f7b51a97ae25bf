# syntax=docker/dockerfile:1
# The training pipeline image. Two uses:
#   - alone: `trademaster pipeline run` (the default command) runs the DAG once with dag.test();
#   - as the Airflow image (k8s/airflow/values.yaml): the chart runs its components with their
#     own commands, and KubernetesExecutor runs every task of dags/trademaster_training.py in a
#     pod of this image. Hence a CMD and no ENTRYPOINT. It also runs the MLflow server.
# Build from the repository root:
#   docker build -f docker/pipeline.Dockerfile -t trademaster/pipeline:0.1.0 .
# Never built on the development machines: they have no Docker engine (docker/README.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
# The pipeline group of pyproject.toml (Airflow, MLflow, Feast, torch, ONNX, transformers);
# the project itself comes below with --no-deps.
COPY requirements/pipeline.lock /tmp/pipeline.lock
# The lock pins torch==2.13.0+cpu (CPU build, as on the development machines): PyTorch's index.
RUN /opt/venv/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu \
      -r /tmp/pipeline.lock

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FEAST_USAGE=False \
    HF_HUB_OFFLINE=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/trademaster/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
# Java for PySpark (spark_master: the user features on a Spark cluster, or local mode).
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 trademaster \
    && useradd --uid 10001 --gid 10001 --home-dir /home/trademaster --create-home \
       --shell /bin/bash trademaster \
    && install -d -o 10001 -g 10001 /opt/airflow /var/lib/trademaster
COPY --from=venv /opt/venv /opt/venv
WORKDIR /opt/trademaster
COPY pyproject.toml README.md ./
COPY trademaster/ trademaster/
COPY gateway/ gateway/
COPY exporters/ exporters/
COPY feature_repo/ feature_repo/
COPY dags/ dags/
# Editable, as scripts/bootstrap.sh installs it: PROJECT_ROOT is this source tree (feature_repo/,
# the default model_repository/). The pipeline writes feature_repo/data and model_repository
# only where TRADEMASTER_* points them (volumes in Kubernetes).
RUN pip install --no-deps -e . \
    && python -m compileall -q trademaster gateway exporters dags \
    && install -d -o 10001 -g 10001 feature_repo/data model_repository
USER 10001:10001
CMD ["trademaster", "pipeline", "run"]
