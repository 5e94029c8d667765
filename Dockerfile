# syntax=docker/dockerfile:1
# Netra Analytics service image: `netra-analytics serve` on :8090 as a non-root user.
# Stage 1 builds wheels of the package and of every dependency at the versions pinned in
# constraints.txt; stage 2 installs only those wheels (no compiler, no index) on the same slim
# Python. Python 3.11 is the version the constraints are resolved and tested with.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY src ./src
RUN python -m pip wheel --wheel-dir /wheels -c constraints.txt .

FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    ANALYTICS_SERVICE_HOST=0.0.0.0 ANALYTICS_SERVICE_PORT=8090 \
    ANALYTICS_DATA_DIR=/var/lib/netra/data
RUN groupadd --system --gid 10001 netra \
    && useradd --system --uid 10001 --gid netra --home-dir /var/lib/netra \
       --shell /usr/sbin/nologin netra
COPY --from=build /wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN python -m pip install --no-index --find-links /wheels -c /tmp/constraints.txt netra-analytics \
    && rm -rf /wheels /tmp/constraints.txt \
    && mkdir -p /var/lib/netra/data && chown -R netra:netra /var/lib/netra
USER netra
WORKDIR /var/lib/netra
# The spool, the generated secrets and (embedded mode) chDB's files: keep them across restarts.
VOLUME ["/var/lib/netra/data"]
EXPOSE 8090
# Liveness (`/health` answers while the process runs); readiness is `/health/ready`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('ANALYTICS_SERVICE_PORT', '8090'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status == 200 else 1)"]
# SIGTERM: open requests finish, the spool is flushed (ANALYTICS_SHUTDOWN_SECONDS, 20 s).
STOPSIGNAL SIGTERM
CMD ["netra-analytics", "serve"]
