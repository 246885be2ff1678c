#!/usr/bin/env bash
# Load benchmark of POST /v1/screenings on PostgreSQL.
#
#   bench/run.sh [seconds] [connections] [workers]      (defaults: 30 32 2)
#
# Makes a fresh PostgreSQL database (PGHOST/PGPORT/PGUSER, default 127.0.0.1:5432 postgres),
# migrates it, creates an API client, starts `lfd serve` with N uvicorn workers, warms up,
# runs wrk with the given connections, prints throughput and latency percentiles, and drops
# the database. Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

SECONDS_TO_RUN="${1:-30}"
CONNECTIONS="${2:-32}"
WORKERS="${3:-2}"
PORT="${LFD_BENCH_PORT:-8077}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
command -v wrk >/dev/null || { echo "bench needs wrk (apt-get install wrk)" >&2; exit 1; }

DB="lfd_bench_$$"
psql -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

export LFD_DATABASE_URL="postgresql+asyncpg://$PGUSER@$PGHOST:$PGPORT/$DB"
export LFD_LOG_LEVEL="${LFD_LOG_LEVEL:-INFO}"
lfd migrate >/dev/null 2>&1
LFD_BENCH_KEY=$(lfd clients create --name bench --scope screenings:write --json | python -c 'import json,sys; print(json.load(sys.stdin)["key"])')
export LFD_BENCH_KEY

lfd serve --no-migrate --port "$PORT" --workers "$WORKERS" > /tmp/lfd-bench-server.log 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

echo "== warm-up (5 s)"
wrk -t2 -c"$CONNECTIONS" -d5s -s bench/screenings.lua "http://127.0.0.1:$PORT" >/dev/null
echo "== POST /v1/screenings: ${SECONDS_TO_RUN}s, $CONNECTIONS connections, $WORKERS uvicorn workers"
wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_TO_RUN}s" --timeout 5s -s bench/screenings.lua "http://127.0.0.1:$PORT"
echo "== rows"
psql -q -At -d "$DB" -c "select 'deaths', count(*) from deaths union all select 'referrals', count(*) from referrals union all select 'outbox_events', count(*) from outbox_events union all select 'audit_events', count(*) from audit_events"
