# syntax=docker/dockerfile:1
# Triton for GPU nodes: NVIDIA's NGC image (native onnxruntime and pytorch backends, TensorRT)
# plus the packages the python-backend models import. With --model-config-name=gpu
# (k8s/base/triton/deployment.yaml) sentiment-tokenizer (tokenizers) and portfolio-optimizer
# (numpy) still run on the python backend; the full requirements/serving.lock is installed so the
# CPU configs (onnxruntime, TorchScript through torch) also load in this image.
# numpy must stay < 2: numpy 2 makes the python-backend stub return empty tensors.
#
# Pick the NGC release whose CUDA the GPU nodes' driver supports (NGC release notes); the model
# repository is not baked in, it comes from a volume or an s3:// URI at run time.
#   docker build -f docker/triton.Dockerfile --build-arg TRITON_VERSION=25.10 \
#     -t trademaster/triton:0.1.0 .
# Never built on the development machines: no Docker engine, no NGC access (docker/README.md).
ARG TRITON_VERSION=25.10
FROM nvcr.io/nvidia/tritonserver:${TRITON_VERSION}-py3

COPY requirements/serving.lock /tmp/serving.lock
# Into the image's own python3: the python-backend stub embeds that interpreter. Recent NGC
# images are Ubuntu 24.04, whose python3 is "externally managed": hence the override. The lock
# pins torch==2.13.0+cpu, from PyTorch's CPU index (GPU models use Triton's pytorch backend).
RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir \
      --extra-index-url https://download.pytorch.org/whl/cpu -r /tmp/serving.lock \
    && rm /tmp/serving.lock \
    && python3 -c "import numpy; assert numpy.__version__.startswith('1.'), numpy.__version__"

# The Deployment runs as uid/gid 10001 (runAsNonRoot, no uid a host account could share), like
# the project's other images; HOME is /tmp, the only writable path besides the volumes.
RUN groupadd --gid 10001 trademaster \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin trademaster
USER 10001
EXPOSE 8000 8001 8002
CMD ["tritonserver", "--model-repository=/models", "--model-config-name=gpu"]
