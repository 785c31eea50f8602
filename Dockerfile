# syntax=docker/dockerfile:1
# The DSR service: one image for the API (`dsr serve`, the default) and the worker (`dsr worker`).

# ---- builder: compilers and headers live here only; it turns every dependency into a wheel.
FROM python:3.11-slim AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libffi-dev libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# ---- final: the wheels, the source (alembic reads its migrations from it), no build tools.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/srv/dsr \
    DSR_DATABASE_URL=sqlite+aiosqlite:////data/dsr.db \
    DSR_EXPORT_DIR=/data/exports
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 dsr \
    && useradd --system --uid 10001 --gid dsr --home-dir /srv/dsr --shell /usr/sbin/nologin dsr \
    && mkdir -p /data/exports \
    && chown -R dsr:dsr /data
WORKDIR /srv/dsr
COPY alembic.ini ./
COPY alembic ./alembic
COPY app ./app
USER dsr
# SQLite (when used) in /data; export files (access requests' downloads) in /data/exports.
VOLUME ["/data", "/data/exports"]
EXPOSE 8000
# No curl in the image: the standard library asks /readyz (database reachable).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["dsr"]
CMD ["serve", "--host", "0.0.0.0"]
