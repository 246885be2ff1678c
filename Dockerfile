# syntax=docker/dockerfile:1
# The Learning from Deaths service: build a wheel and a virtualenv, then copy the virtualenv
# into a slim image that runs as a non-root user. See docs/docker.md.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# The dependencies first, at the lockfile's versions and hashes (the same as ./scripts/serve
# and CI install), then the service's own wheel without resolving anything again.
COPY requirements/serve.txt ./requirements/serve.txt
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements/serve.txt
# The source the wheel needs: the project file, the README it names, the app and migrations.
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
# Every dependency has a manylinux wheel, so no compiler is needed. The last step checks that
# the installed package (-I: not the source in /src) carries its migrations.
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-deps /wheels/*.whl \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -I -c "import app.migrate as m; assert (m.MIGRATIONS / 'env.py').is_file()"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="lfd-service" \
      org.opencontainers.image.description="Learning from Deaths service (API)" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LFD_WORKERS=2
RUN groupadd --system --gid 10001 lfd \
    && useradd --system --uid 10001 --gid lfd --home-dir /data --create-home \
       --shell /usr/sbin/nologin lfd
COPY --from=builder /opt/venv /opt/venv
# The working directory is the only writable place: a SQLite file (the default database when
# LFD_DATABASE_URL is not set) would live here. Production sets LFD_DATABASE_URL to PostgreSQL.
WORKDIR /data
# Numeric, so that an orchestrator can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
# No curl in the slim image: Python asks /healthz (the process is up; /readyz checks the database).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
# `lfd serve` runs the migrations, then starts the workers. exec: uvicorn gets the signals.
CMD ["sh", "-c", "exec lfd serve --host 0.0.0.0 --port 8000 --workers ${LFD_WORKERS:-2}"]
