"""Change feed benchmark on PostgreSQL: the page query at 10 thousand, 1 million and 10 million
events, and a consumer catching up from the start of a 1-million-event feed over HTTP.

    .venv/bin/python bench/feed.py [--server postgresql://postgres@127.0.0.1:5432]
        [--database lfd_bench_feed] [--sizes 10000,1000000,10000000] [--catch-up-at 1000000]
        [--reuse] [--port 8097] [--workers 2] [--json results.json]

The script drops and re-creates its own database (never `test`), migrates it, and grows the
outbox to each size in turn with INSERT ... SELECT generate_series (transaction ids rising with
seq, all below the horizon, as a deployment's history would be; with `--reuse`, above the
earlier run's events).

- **Page query**: the service's own `read_feed` (horizon + page in one REPEATABLE READ
  snapshot), 1,000 events after a random position, in process: median and p95 over 50 reads,
  and the plan of one (it must be an index range scan on (txid, seq) at every size).
- **Catch-up** (at `--catch-up-at`): `lfd serve` with `--workers` uvicorn processes; one
  consumer reads `GET /v1/events?limit=1000` from the beginning, following `next_cursor`, until
  an empty page; events per second over the whole walk.

The machine's load average is printed (and kept in --json) before and after each timing: on a
shared machine a figure means little without it.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

# bench/queue.py would shadow the standard library's queue module: take this directory off the
# path (as bench/queue.py explains) and put the project root on it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import json
import random
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.events.feed import Position, read_feed
from bench.kit import ensure_database, load_average, sqlalchemy_url

ROOT = Path(__file__).resolve().parent.parent

TYPES = ["referral.created", "referral.claimed", "referral.released", "review.submitted"]

GROW = """
INSERT INTO outbox_events
    (id, type, resource_type, resource_id, death_id, changed, occurred_at, txid, seq)
SELECT gen_random_uuid(),
       ($3::text[])[1 + g % 4],
       'referral', gen_random_uuid(), gen_random_uuid(), '["status"]'::jsonb,
       now() - make_interval(secs => ($2 - g) / 50.0),
       $4::bigint + (g - $6::bigint) * $5::bigint / $7::bigint, g
FROM generate_series($1::bigint, $2::bigint) AS g
"""


async def grow(connection: asyncpg.Connection, target: int, largest: int) -> None:
    """Grow the outbox to ``target`` events, of a run that grows it to ``largest``. Their
    transaction ids rise with seq, spread evenly from the last event's up to the horizon (so
    every event is below it, as history is) over the events still to come, up to ``largest``:
    the feed's order, (txid, seq), stays seq's, so that 1,000 events follow every position more
    than 1,000 from the end. An earlier run's events (``--reuse``) keep their transaction ids
    and the new ones go above them: spread below the horizon from 0, as if this run's events
    were the only ones, the events of a small growth (a few thousand) fell among the last of
    the earlier run's, and a page from near the end of those held fewer than 1,000."""
    # The oldest transaction still running (what the feed reads below, app.events.feed),
    # not this one's: another session's open transaction would hide the last events.
    horizon = int(
        await connection.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    )
    base, floor = await connection.fetchrow(
        "SELECT coalesce(max(seq), 0), coalesce(max(txid), 0) FROM outbox_events"
    )
    span = max(horizon - 1 - floor, 0)
    current = base
    step = 1_000_000
    while current < target:
        upto = min(target, current + step)
        await connection.execute(GROW, current + 1, upto, TYPES, floor, span, base, largest - base)
        current = upto
        print(f"  outbox_events: {current:,}", flush=True)
    await connection.execute(
        "SELECT setval(pg_get_serial_sequence('outbox_events', 'seq'), $1)", target
    )
    await connection.execute("VACUUM ANALYZE outbox_events")


def index_range_scan(plan: str) -> bool:
    """Whether the page query's plan reads the outbox by its (txid, seq) index alone, nothing
    sorted: one Index Scan of ix_outbox_events_position, or, the outbox being partitioned by
    month (migration 0025), a Merge Append of each partition's (named ..._txid_seq_idx)."""
    scans = [line.split("->")[-1].split() for line in plan.splitlines() if " Scan " in line]
    return (
        bool(scans)
        and "Sort  (" not in plan
        and all(
            scan[:3] == ["Index", "Scan", "using"]
            and (scan[3] == "ix_outbox_events_position" or scan[3].endswith("_txid_seq_idx"))
            for scan in scans
        )
    )


async def time_pages(database: Database, size: int) -> dict[str, Any]:
    rng = random.Random(size)
    durations = []
    for _ in range(50):
        seq = rng.randrange(1, max(2, size - 1000))
        async with database.snapshot() as session:
            txid = await session.scalar(
                text("SELECT txid FROM outbox_events WHERE seq = :s"), {"s": seq}
            )
        after = Position(int(txid), seq)
        started = time.perf_counter()
        async with database.snapshot() as session:
            page = await read_feed(session, after, 1000)
        durations.append((time.perf_counter() - started) * 1000)
        assert len(page.events) == 1000, len(page.events)
    async with database.snapshot() as session:
        plan = (
            await session.execute(
                text(
                    "EXPLAIN SELECT * FROM outbox_events WHERE (txid, seq) > (:t, :s) "
                    "AND txid <= pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
                    "ORDER BY txid, seq LIMIT 1000"
                ),
                {"t": 1, "s": 1},
            )
        ).scalars()
        plan_text = "\n".join(plan)
    durations.sort()
    return {
        "events": size,
        "page_median_ms": round(statistics.median(durations), 2),
        "page_p95_ms": round(durations[int(len(durations) * 0.95) - 1], 2),
        "index_scan": index_range_scan(plan_text),
        "plan": plan_text,
    }


async def catch_up(url: str, key: str, expected: int) -> dict[str, Any]:
    """Read the feed from the beginning, 1,000 at a time, until ``expected`` events (or the
    end): from the start of a larger feed, the first million are read exactly as a feed of a
    million would be (an index range scan from the first position)."""
    seen = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/v1/events", params=params)
            response.raise_for_status()
            body = response.json()
            seen += len(body["items"])
            cursor = body["next_cursor"]
            if not body["items"] or seen >= expected:
                break
    elapsed = time.perf_counter() - started
    assert seen >= expected, (seen, expected)
    return {
        "events": seen,
        "seconds": round(elapsed, 1),
        "events_per_second": round(seen / elapsed),
    }


def start_server(database_url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LFD_DATABASE_URL": database_url,
        "LFD_RUN_WORKER_IN_SERVE": "false",
        "LFD_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/lfd"), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(200):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="lfd_bench_feed")
    parser.add_argument("--sizes", default="10000,1000000,10000000")
    parser.add_argument("--catch-up-at", type=int, default=1_000_000)
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database of an earlier run (and its events) instead of re-creating it",
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.database in {"test", "postgres"}:
        raise SystemExit("use a database of the benchmark's own")

    await ensure_database(f"{args.server}/{args.database}", reset=not args.reuse)
    database_url = sqlalchemy_url(f"{args.server}/{args.database}")
    connection = await asyncpg.connect(f"{args.server}/{args.database}")
    database = Database(Settings(database_url=database_url))
    async with database.transaction() as session:
        key = (await create_client(session, "bench feed", [Scope.events_read])).key

    results: dict[str, Any] = {"pages": [], "catch_up": None}
    sizes = sorted(int(s) for s in args.sizes.split(","))
    for size in sizes:
        print(f"growing to {size:,} events", flush=True)
        await grow(connection, size, max(sizes))
        before = load_average()
        pages = await time_pages(database, size)
        pages["load_average"] = [before, load_average()]
        print(
            f"  page of 1,000 at {size:,}: median {pages['page_median_ms']} ms, "
            f"p95 {pages['page_p95_ms']} ms, index range scan: {pages['index_scan']} "
            f"(load average {before} before, {pages['load_average'][1]} after)",
            flush=True,
        )
        results["pages"].append(pages)
        if size >= args.catch_up_at and results["catch_up"] is None:
            url = f"http://127.0.0.1:{args.port}"
            server = start_server(database_url, args.port, args.workers)
            try:
                await wait_ready(url)
                before = load_average()
                results["catch_up"] = await catch_up(url, key, args.catch_up_at)
                results["catch_up"]["load_average"] = [before, load_average()]
                print(f"  catch-up from the start: {results['catch_up']}", flush=True)
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
    await connection.close()
    await database.dispose()
    return results


if __name__ == "__main__":
    outcome = asyncio.run(main())
    if "--json" in sys.argv:
        Path(sys.argv[sys.argv.index("--json") + 1]).write_text(json.dumps(outcome, indent=2))
