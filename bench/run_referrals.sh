#!/usr/bin/env bash
# Benchmark of the referral queues and claims on PostgreSQL (issue 3).
#
#   bench/run_referrals.sh [large] [seconds] [levels]     (defaults: 1000000 10 1,4,16)
#
# Makes a fresh PostgreSQL database (PGHOST/PGPORT/PGUSER, default 127.0.0.1:5432 postgres),
# migrates it, loads 10,000 synthetic deaths (bench/load_referrals.py), creates an API client,
# starts the service with LFD_BENCH_WORKERS uvicorn workers (default 2), then:
#   1. bench/queue.py: EXPLAIN (ANALYZE, BUFFERS) of the service's queue queries, then queue
#      pages at each concurrency level in `levels`, `seconds` per scenario and level;
#   2. bench/claims.py: 32 concurrent claimers, count 1 and count 5, 80% of claims released at
#      once (at the larger size also count 1 and 5 with every claim kept);
# then empties the database, loads `large` deaths and runs both again. It prints a summary
# against the targets (queue page p99 under 50 ms at both sizes and no more than 2x slower at
# the larger; at least 300 claims/s with zero double claims) and drops the database.
# Results (JSON) and the server log are kept in LFD_BENCH_OUT (default /tmp/lfd-bench-referrals).
# LFD_BENCH_WAIT, if set, is a command run before each measurement (on a shared machine, one
# that waits until the CPU is idle).
#
# The service and the scripts run from this script's own checkout (python -m app.cli, not the
# installed `lfd`), so a copy of the repository (git archive) can be measured while the working
# tree changes; LFD_PYTHON names the interpreter (default: this checkout's .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${LFD_PYTHON:-}" ]; then
  PY="$LFD_PYTHON"
else
  source scripts/_venv.sh
  PY=python
fi

LARGE="${1:-1000000}"
SECONDS_PER="${2:-10}"
LEVELS="${3:-1,4,16}"
WORKERS="${LFD_BENCH_WORKERS:-2}"
PORT="${LFD_BENCH_PORT:-8078}"
OUT="${LFD_BENCH_OUT:-/tmp/lfd-bench-referrals}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
mkdir -p "$OUT"

DB="lfd_bench_ref_$$"
psql -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() {
  stop_server
  psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

export LFD_DATABASE_URL="postgresql+asyncpg://$PGUSER@$PGHOST:$PGPORT/$DB"
export LFD_LOG_LEVEL="${LFD_LOG_LEVEL:-INFO}"
lfd() { "$PY" -m app.cli "$@"; }

echo "== $(date -u +%FT%TZ) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
lfd migrate >/dev/null 2>&1
echo "== load 10,000 deaths"
"$PY" -m bench.load_referrals --deaths 10000
LFD_BENCH_KEY=$(lfd clients create --name bench --scope referrals:read --scope referrals:claim --json \
  | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["key"])')
export LFD_BENCH_KEY
export LFD_BENCH_URL="http://127.0.0.1:$PORT"

"$PY" -m app.cli serve --no-migrate --port "$PORT" --workers "$WORKERS" > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "$LFD_BENCH_URL/healthz" >/dev/null && break; sleep 0.2; done
curl -sf "$LFD_BENCH_URL/healthz" >/dev/null || { echo "the server did not start" >&2; cat "$OUT/server.log" >&2; exit 1; }

wait_turn() { if [ -n "${LFD_BENCH_WAIT:-}" ]; then $LFD_BENCH_WAIT; fi; echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }

run_size() {
  local label="$1"
  wait_turn
  echo "== queue pages at $label deaths (EXPLAIN first)"
  "$PY" -m bench.queue --explain --server-pid "$SERVER_PID" --seconds "$SECONDS_PER" \
    --concurrency "$LEVELS" --json "$OUT/queue-$label.json" | tee "$OUT/queue-$label.txt" \
    || echo "!! bench/queue.py reported errors or a sequential scan (above)"
  for count in 1 5; do
    wait_turn
    echo "== claims at $label deaths: 32 claimers, count $count, 80% released at once"
    "$PY" -m bench.claims --claimers 32 --count "$count" --seconds "$SECONDS_PER" \
      --server-pid "$SERVER_PID" --json "$OUT/claims-$label-count$count.json" \
      | tee "$OUT/claims-$label-count$count.txt" \
      || echo "!! bench/claims.py reported a double claim or errors (above)"
  done
  if [ "$label" != 10k ]; then
    # Every claim kept (as reviewers do): this drains the queue, so only where it is deep.
    # (Each run releases what it kept when it ends, so the next starts from the same queue.)
    for count in 1 5; do
      wait_turn
      echo "== claims at $label deaths: 32 claimers, count $count, all kept"
      "$PY" -m bench.claims --claimers 32 --count "$count" --release 0 --seconds 5 \
        --server-pid "$SERVER_PID" --json "$OUT/claims-$label-count$count-kept.json" \
        | tee "$OUT/claims-$label-count$count-kept.txt" \
        || echo "!! bench/claims.py reported a double claim or errors (above)"
    done
  fi
}

run_size 10k
echo "== load $LARGE deaths (replacing the 10,000)"
"$PY" -m bench.load_referrals --deaths "$LARGE" --reset
run_size large

echo "== summary"
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
small = json.loads((out / "queue-10k.json").read_text())["results"]
large = json.loads((out / "queue-large.json").read_text())["results"]
print("| scenario | clients | p99 10k ms | p99 large ms | ratio | p50 10k | p50 large |")
print("|---|---|---|---|---|---|---|")
worst = 0.0
for a in small:
    b = next((r for r in large if r["scenario"].split(" (")[0] == a["scenario"].split(" (")[0]
              and r["concurrency"] == a["concurrency"]), None)
    if b is None:
        continue
    ratio = b["p99"] / a["p99"] if a["p99"] else float("nan")
    worst = max(worst, ratio)
    print(f"| {a['scenario'].split(' (')[0]} | {a['concurrency']} | {a['p99']} | {b['p99']} "
          f"| {ratio:.2f} | {a['p50']} | {b['p50']} |")
for name in ("10k-count1", "10k-count5", "large-count1", "large-count5", "large-count1-kept",
             "large-count5-kept"):
    path = out / f"claims-{name}.json"
    if not path.exists():
        continue
    c = json.loads(path.read_text())
    print(f"claims {name} (release {c['release_probability']}): {c['claims_per_second']}/s, "
          f"double claims {c['double_claims']}, duplicate leases {c['duplicate_lease_ids']}, "
          f"release conflicts {c['release_conflicts']}, kept not held {c['kept_not_held']}, "
          f"errors {c['errors'] or 0}")
print(f"largest p99 ratio large/10k: {worst:.2f}")
EOF
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
