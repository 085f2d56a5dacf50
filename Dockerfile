# AuthentiQ container images (docs/deployment.md). Two targets, each built in two stages so that
# no compiler, pip cache or source tree reaches the final image:
#   cpu (default): the embedded default on ONNX Runtime — also the API worker in front of a
#                  Triton cluster (AUTHENTIQ_BACKEND=triton)
#     docker build -t authentiq .
#     docker run -p 8000:8000 -v authentiq-data:/data authentiq
#   gpu: TensorRT on an NVIDIA GPU (NVIDIA's CUDA runtime image + the [tensorrt] extra's wheels)
#     docker build --target gpu -t authentiq:gpu .
#     docker run --gpus all -p 8000:8000 -v authentiq-data:/data authentiq:gpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvcr.io/nvidia/cuda:12.9.1-runtime-ubuntu24.04
ARG EXTRAS=postgres,heic,redis,s3,triton

# --- gpu -------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu-base
# The distribution's python3 as of the base image's release; pinning apt versions would break the
# build whenever Ubuntu's archive moves on, so the base image tag is what pins it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

FROM gpu-base AS gpu-build
ARG EXTRAS
WORKDIR /src
COPY pyproject.toml README.md ./
COPY authentiq ./authentiq
RUN python3 -m venv /opt/authentiq \
    && /opt/authentiq/bin/pip install --no-cache-dir ".[tensorrt,${EXTRAS}]"

FROM gpu-base AS gpu
ENV PATH=/opt/authentiq/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    AUTHENTIQ_BACKEND=tensorrt \
    AUTHENTIQ_MODEL_PATH=/app/engines/authentiq-default.int8-cpu.onnx \
    AUTHENTIQ_TENSORRT_MODEL_PATH=/app/engines/authentiq-default.int8-trt.onnx \
    AUTHENTIQ_ENGINE_DIR=/data/engines \
    AUTHENTIQ_DATA_DIR=/data \
    AUTHENTIQ_REFERENCE_SEED_DIR=/app/reference_data/items
COPY --from=gpu-build /opt/authentiq /opt/authentiq
COPY engines/*.onnx /app/engines/
COPY reference_data /app/reference_data
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin authentiq \
    && mkdir -p /data/engines && chown -R authentiq /data
USER 10001
VOLUME /data
EXPOSE 8000
HEALTHCHECK --start-period=120s CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["authentiq", "serve", "--host", "0.0.0.0", "--port", "8000"]

# --- cpu (the default target: last in the file) ----------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu-build
ARG EXTRAS
WORKDIR /src
COPY pyproject.toml README.md ./
COPY authentiq ./authentiq
RUN python -m venv /opt/authentiq \
    && /opt/authentiq/bin/pip install --no-cache-dir ".[${EXTRAS}]"

FROM ${PYTHON_IMAGE} AS cpu
ENV PATH=/opt/authentiq/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    AUTHENTIQ_MODEL_PATH=/app/engines/authentiq-default.int8-cpu.onnx \
    AUTHENTIQ_DATA_DIR=/data \
    AUTHENTIQ_REFERENCE_SEED_DIR=/app/reference_data/items
COPY --from=cpu-build /opt/authentiq /opt/authentiq
COPY engines/*.onnx /app/engines/
COPY reference_data /app/reference_data
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin authentiq \
    && mkdir /data && chown authentiq /data
USER 10001
VOLUME /data
EXPOSE 8000
HEALTHCHECK --start-period=60s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["authentiq", "serve", "--host", "0.0.0.0", "--port", "8000"]
