"""The read replica (docs/replica.md): what a report and a change feed page cost from the standby
against the primary, what read-your-writes costs a write, how soon a write can be read on the
standby, and the standby's lag under write load.

    .venv/bin/python bench/replica.py [--deaths 100000] [--events 1000000] [--runs 7]
        [--pages 50] [--writes 50] [--load-seconds 20]
        [--parts reports,feed,token,window,lag] [--json results.json]

It makes its own primary and streaming hot standby (tests/kit/replica.py: `initdb`,
`pg_basebackup -R`, from the PostgreSQL installation of the server at LFD_BENCH_SERVER_URL,
default postgresql://postgres@127.0.0.1:5432/postgres; both with fsync on, as a deployment
runs), migrates the service's database on the primary, loads it with bench/reports.py's deaths
and bench/feed.py's outbox events, waits for the standby, and removes both at the end.

The app runs in this process under httpx's ASGI transport (as bench/reports.py does), twice:
without LFD_READ_DATABASE_URL (every read on the primary) and with it (the reports and the
feed on the standby; each response's X-LFD-Read-From is checked). Requests alternate between
the two so that the machine's load falls on both alike.

- **Reports**: the LfD dashboard for the current and the last financial year, a warm-up then
  `--runs` requests each, the median; and the CPU the primary's and the standby's server
  processes spent per report (from /proc: the postmaster and its children, in clock ticks).
- **Feed pages**: `--pages` pages of 1,000 events from random positions, median and p95, and
  the CPU per page on each server.
- **Write token**: the primary's WAL position read after a write (`Reads.write_position`,
  straight through the driver), median of 500, against the same through SQLAlchemy's
  `exec_driver_sql` (alternating); and POST /v1/screenings by a client that reads the feed
  (gets a token) and one that does not, alternating, `--writes` each, medians.
- **Read-your-writes window**: after each of `--writes` screenings, how long until the standby
  has replayed the write's X-LFD-Read-After position (polled every 0.5 ms), idle and while 8
  other writers post screenings.
- **Lag under write load**: `--load-seconds` of (a) 8 concurrent writers posting screenings
  through the app and (b) 4 connections inserting 1,000 outbox rows per transaction as fast as
  they can, sampling the replica monitor's lag every 100 ms: WAL written per second, the
  lag's median, p95 and maximum, in seconds and bytes, and how long the standby takes to catch
  up once the load stops.

The machine's load average is printed before and after each part: on a shared machine a figure
means little without it.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import json
import random
import signal
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.kit.time import local_date, now
from app.main import create_app
from app.replica.lsn import parse_lsn
from app.replica.monitor import PRIMARY_POSITION
from app.replica.reads import Reads
from app.reports.model import financial_year_of
from bench.feed import GROW, TYPES
from bench.kit import ensure_database, load_average
from bench.reports import load_to
from tests.factories import screening_body
from tests.kit.replica import StreamingPair, server_bindir, server_major, streaming_pair

SERVER = os.environ.get("LFD_BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "lfd_bench_replica"
ROLE = "lfd_bench_service"
# A write must be on the standby within this, and the standby caught up after a load within
# that: a standby that cannot keep up ends the run with a message rather than running forever.
WINDOW_DEADLINE = 30.0
CATCH_UP_DEADLINE = 600.0
# A deployment's durability, and room for the load.
CLUSTER_SETTINGS = """
fsync = on
full_page_writes = on
synchronous_commit = on
shared_buffers = 128MB
max_connections = 100
"""


# Every organisation_id column the generated rows leave out gets the default organisation.
OWNED_BY_DEFAULT = """
DO $$
DECLARE
    column_row record;
    owner uuid := (SELECT id FROM organisations WHERE is_default);
BEGIN
    FOR column_row IN
        SELECT table_name FROM information_schema.columns
        WHERE table_schema = 'public' AND column_name = 'organisation_id'
          AND is_nullable = 'NO' AND column_default IS NULL
    LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN organisation_id SET DEFAULT %L',
                       column_row.table_name, owner);
    END LOOP;
END $$;
"""


def cluster_cpu(data_directory: Path) -> float:
    """CPU seconds (user + system) the cluster's postmaster and its children have used."""
    postmaster = int((data_directory / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster or ppid == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Bench:
    def __init__(self, pair: StreamingPair, args: argparse.Namespace) -> None:
        self.pair = pair
        self.args = args
        self.results: dict[str, Any] = {}
        base = Settings(
            database_url=pair.primary_url(DATABASE, ROLE),
            run_worker_in_serve=False,
            log_json=True,
            log_level="WARNING",
            rate_limit_per_second=0,
        )
        self.on_primary = create_app(base)
        self.on_replica = create_app(
            base.model_copy(update={"read_database_url": pair.standby_url(DATABASE, ROLE)})
        )
        self.reads: Reads = self.on_replica.state.reads

    def cpu(self) -> tuple[float, float]:
        return cluster_cpu(self.pair.root / "primary"), cluster_cpu(self.pair.root / "standby")

    async def client(self, *scopes: Scope) -> dict[str, str]:
        database: Database = self.on_primary.state.database
        async with database.transaction() as session:
            made = await create_client(session, f"bench {uuid.uuid4().hex[:6]}", list(scopes))
        return {"Authorization": f"Bearer {made.key}"}

    async def alternate(
        self,
        label: str,
        runs: int,
        request: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
        expect_from: str | None = "replica",
    ) -> None:
        """``runs`` requests on each app, alternating; medians, p95s and CPU per request."""
        figures: dict[str, dict[str, float]] = {}
        timings: dict[str, list[float]] = {"primary": [], "replica": []}
        cpu: dict[str, list[float]] = {"primary": [0.0, 0.0], "replica": [0.0, 0.0]}
        transports = {
            "primary": httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.on_primary), base_url="http://b", timeout=300
            ),
            "replica": httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.on_replica), base_url="http://b", timeout=300
            ),
        }
        try:
            for http in transports.values():  # warm-up
                answer = await request(http, -1)
                assert answer.status_code == 200, answer.text
            for run in range(runs):
                for name, http in transports.items():
                    before = self.cpu()
                    started = time.perf_counter()
                    answer = await request(http, run)
                    timings[name].append(time.perf_counter() - started)
                    after = self.cpu()
                    cpu[name][0] += after[0] - before[0]
                    cpu[name][1] += after[1] - before[1]
                    assert answer.status_code == 200, answer.text
                    if name == "replica" and expect_from:
                        assert answer.headers["x-lfd-read-from"] == expect_from
        finally:
            for http in transports.values():
                await http.aclose()
        for name in transports:
            figures[name] = {
                "median_ms": round(statistics.median(timings[name]) * 1000, 2),
                "p95_ms": round(quantile(timings[name], 0.95) * 1000, 2),
                "primary_cpu_ms": round(cpu[name][0] / runs * 1000, 2),
                "standby_cpu_ms": round(cpu[name][1] / runs * 1000, 2),
            }
            print(f"  {label}, read from the {name}: {figures[name]}", flush=True)
        self.results[label] = figures

    async def reports(self) -> None:
        headers = await self.client(Scope.reports_read)
        current = financial_year_of(local_date(now()))
        for year in (current, current - 1):
            period = f"{year}-{str(year + 1)[2:]}"

            async def dashboard(http: httpx.AsyncClient, _: int, period: str = period) -> Any:
                return await http.get(
                    "/v1/reports/lfd-dashboard", params={"period": period}, headers=headers
                )

            await self.alternate(f"lfd-dashboard {period}", self.args.runs, dashboard)

    async def feed_pages(self) -> None:
        headers = await self.client(Scope.events_read)
        connection = await asyncpg.connect(self.pair.primary_url(DATABASE).replace("+asyncpg", ""))
        try:
            total = await connection.fetchval("SELECT max(seq) FROM outbox_events")
            rng = random.Random(7)
            seqs = [rng.randrange(1, total - 1000) for _ in range(self.args.pages + 1)]
            rows = await connection.fetch(
                "SELECT seq, txid FROM outbox_events WHERE seq = ANY($1::bigint[])", seqs
            )
        finally:
            await connection.close()
        from app.events.feed import encode_place

        places = {row["seq"]: encode_place(row["txid"], row["seq"]) for row in rows}
        cursors = [places[seq] for seq in seqs]

        async def page(http: httpx.AsyncClient, run: int) -> Any:
            answer = await http.get(
                "/v1/events", params={"cursor": cursors[run], "limit": 1000}, headers=headers
            )
            assert len(answer.json()["items"]) == 1000
            return answer

        await self.alternate("feed page of 1,000 events", self.args.pages, page)

    async def write_token(self) -> None:
        engine = self.on_replica.state.database.engine

        async def through_sqlalchemy() -> None:  # how it was first written, for comparison
            async with engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                (await autocommit.exec_driver_sql(PRIMARY_POSITION)).one()

        ways = {"driver": self.reads.write_position, "sqlalchemy": through_sqlalchemy}
        positions: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(500):
            for name, way in ways.items():
                started = time.perf_counter()
                await way()
                positions[name].append(time.perf_counter() - started)
        token_ms = {name: round(statistics.median(t) * 1000, 3) for name, t in positions.items()}
        print(f"  reading the write position, median ms: {token_ms}", flush=True)
        eligible = await self.client(Scope.screenings_write, Scope.events_read)
        intake = await self.client(Scope.screenings_write)
        timings: dict[str, list[float]] = {"with token": [], "without": []}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.on_replica), base_url="http://b", timeout=60
        ) as http:
            for _ in range(self.args.writes):
                for name, headers in (("with token", eligible), ("without", intake)):
                    started = time.perf_counter()
                    answer = await http.post(
                        "/v1/screenings",
                        json=screening_body(),
                        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    )
                    timings[name].append(time.perf_counter() - started)
                    assert answer.status_code == 201, answer.text
                    assert ("x-lfd-read-after" in answer.headers) == (name == "with token")
        posts = {name: round(statistics.median(t) * 1000, 2) for name, t in timings.items()}
        print(f"  POST /v1/screenings median ms: {posts}", flush=True)
        self.results["write token"] = {"write_position_median_ms": token_ms, "post_ms": posts}

    async def window(self, label: str) -> None:
        """How long after a write's response the standby has replayed its position."""
        writer = await self.client(Scope.screenings_write, Scope.events_read)
        standby = await asyncpg.connect(self.pair.standby_url("postgres").replace("+asyncpg", ""))
        delays = []
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.on_replica), base_url="http://b", timeout=60
            ) as http:
                for _ in range(self.args.writes):
                    answer = await http.post(
                        "/v1/screenings",
                        json=screening_body(),
                        headers={**writer, "Idempotency-Key": uuid.uuid4().hex},
                    )
                    assert answer.status_code == 201, answer.text
                    written = time.perf_counter()
                    target = parse_lsn(answer.headers["x-lfd-read-after"])
                    while True:
                        replayed = await standby.fetchval("SELECT pg_last_wal_replay_lsn()::text")
                        if parse_lsn(replayed) >= target:
                            break
                        if time.perf_counter() - written > WINDOW_DEADLINE:
                            raise SystemExit(f"the standby has not replayed a write in "
                                             f"{WINDOW_DEADLINE} s: {label}")  # fmt: skip
                        await asyncio.sleep(0.0005)
                    delays.append(time.perf_counter() - written)
        finally:
            await standby.close()
        figures = {
            "median_ms": round(statistics.median(delays) * 1000, 2),
            "p95_ms": round(quantile(delays, 0.95) * 1000, 2),
            "max_ms": round(max(delays) * 1000, 2),
        }
        print(f"  write to replayed on the standby, {label}: {figures}", flush=True)
        self.results[f"read-your-writes window, {label}"] = figures

    async def windows(self) -> None:
        await self.window("idle")
        # The window while 8 writers post screenings.
        stop = asyncio.Event()
        busy = asyncio.create_task(self.screening_load(stop))
        try:
            await self.window("under 8 screening writers")
        finally:
            stop.set()
            await busy

    async def lags(self) -> None:
        await self.lag_under("8 screening writers", self.screening_load)
        await self.lag_under("4 bulk inserters", self.bulk_load)

    async def lag_under(self, label: str, load: Callable[[asyncio.Event], Awaitable[int]]) -> None:
        stop = asyncio.Event()
        primary = await asyncpg.connect(self.pair.primary_url("postgres").replace("+asyncpg", ""))
        try:
            start_lsn = parse_lsn(await primary.fetchval("SELECT pg_current_wal_lsn()::text"))
            started = time.perf_counter()
            worker = asyncio.create_task(load(stop))
            seconds, bytes_ = [], []
            while time.perf_counter() - started < self.args.load_seconds:
                status = await self.reads.monitor.check()
                if status.lag_seconds is not None:
                    seconds.append(status.lag_seconds)
                if status.lag_bytes is not None:
                    bytes_.append(float(status.lag_bytes))
                await asyncio.sleep(0.1)
            stop.set()
            done = await worker
            elapsed = time.perf_counter() - started
            end_lsn = parse_lsn(await primary.fetchval("SELECT pg_current_wal_lsn()::text"))
            # How long the standby then takes to replay what the load left it behind by.
            stopped = time.perf_counter()
            await self.pair.caught_up(deadline=CATCH_UP_DEADLINE)
            catch_up = time.perf_counter() - stopped
        finally:
            await primary.close()
        figures = {
            "transactions_per_second": round(done / elapsed, 1),
            "wal_mib_per_second": round((end_lsn - start_lsn) / elapsed / 2**20, 2),
            "lag_seconds_median": round(statistics.median(seconds), 4),
            "lag_seconds_p95": round(quantile(seconds, 0.95), 4),
            "lag_seconds_max": round(max(seconds), 4),
            "lag_kib_median": round(statistics.median(bytes_) / 1024, 1),
            "lag_kib_p95": round(quantile(bytes_, 0.95) / 1024, 1),
            "lag_kib_max": round(max(bytes_) / 1024, 1),
            "samples": len(seconds),
            "catch_up_after_load_s": round(catch_up, 2),
        }
        print(f"  lag under {label}: {figures}", flush=True)
        self.results[f"lag under {label}"] = figures

    async def screening_load(self, stop: asyncio.Event) -> int:
        headers = await self.client(Scope.screenings_write)
        count = 0

        async def writer(http: httpx.AsyncClient) -> None:
            nonlocal count
            while not stop.is_set():
                answer = await http.post(
                    "/v1/screenings",
                    json=screening_body(),
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                assert answer.status_code == 201, answer.text
                count += 1

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.on_primary), base_url="http://b", timeout=60
        ) as http:
            await asyncio.gather(*(writer(http) for _ in range(8)))
        return count

    async def bulk_load(self, stop: asyncio.Event) -> int:
        url = self.pair.primary_url(DATABASE).replace("+asyncpg", "")
        count = 0

        async def inserter() -> None:
            nonlocal count
            connection = await asyncpg.connect(url)
            try:
                while not stop.is_set():
                    await connection.execute(
                        "INSERT INTO outbox_events (id, type, resource_type, resource_id,"
                        " changed, occurred_at) SELECT gen_random_uuid(), 'theme.updated',"
                        " 'theme', gen_random_uuid(), '[\"name\"]'::jsonb, now()"
                        " FROM generate_series(1, 1000)"
                    )
                    count += 1
            finally:
                await connection.close()

        await asyncio.gather(*(inserter() for _ in range(4)))
        return count

    async def close(self) -> None:
        for app in (self.on_primary, self.on_replica):
            await app.state.reads.close()
            await app.state.database.dispose()


async def prepare(pair: StreamingPair, args: argparse.Namespace) -> None:
    owner = pair.primary_url(DATABASE)
    await ensure_database(owner, reset=False, service_role=ROLE)
    connection = await asyncpg.connect(owner.replace("+asyncpg", ""))
    try:
        started = time.perf_counter()
        # bench/reports.py's INSERTs name no organisation: the default one's, for this load.
        await connection.execute(OWNED_BY_DEFAULT)
        await load_to(connection, args.deaths, 548)
        horizon = int(await connection.fetchval("SELECT pg_current_xact_id()::text::bigint")) - 1
        current = 0
        while current < args.events:
            upto = min(args.events, current + 500_000)
            await connection.execute(GROW, current + 1, upto, TYPES, horizon, args.events)
            current = upto
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('outbox_events', 'seq'), $1)", args.events
        )
        await connection.execute("VACUUM ANALYZE")
        print(f"loaded {args.deaths:,} deaths and {args.events:,} events in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    finally:
        await connection.close()
    await pair.caught_up(deadline=600)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    major = await server_major(SERVER)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    with streaming_pair(server_bindir(major), CLUSTER_SETTINGS) as pair:
        await prepare(pair, args)
        bench = Bench(pair, args)
        try:
            parts: dict[str, Callable[[], Awaitable[None]]] = {
                "reports": bench.reports,
                "feed": bench.feed_pages,
                "token": bench.write_token,
                "window": bench.windows,
                "lag": bench.lags,
            }
            for name in args.parts.split(","):
                print(f"{name} (load average {load_average()})", flush=True)
                await parts[name]()
                results.setdefault("load average after", {})[name] = load_average()
        finally:
            await bench.close()
        results.update(bench.results)
    return results


def main() -> None:
    # Stopped with SIGTERM (or SIGINT, which a background job ignores): leave through the
    # finally blocks, so that both clusters are stopped and their directory removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deaths", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument(
        "--parts", default="reports,feed,token,window,lag", help="which parts, in this order"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.events < 2000:
        parser.error("--events must be at least 2,000 (the feed part reads 1,000-event pages)")
    print(f"started {date.today()} load average {load_average()}", flush=True)
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
