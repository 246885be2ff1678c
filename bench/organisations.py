"""Organisation scoping and row-level security (issue 16), side by side on PostgreSQL: queue
pages, claims, screenings and two reports, with the app connected as the tables' owner, as a
service role with one organisation, and as a service role for one trust of a region.

    python bench/organisations.py [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/lfd_bench_organisations]
        [--deaths 20000] [--days 365] [--rounds 3] [--seconds 4] [--concurrency 4]
        [--role lfd_bench_service] [--explain] [--keep] [--reuse] [--json results.json]

``--database-url`` names the server, as a user that may create databases and roles (the
owner), and the databases' prefix: the script makes two fresh ones, ``<name>_one`` and
``<name>_region`` (dropped first if they exist, and at the end unless ``--keep``), migrates
them, and loads the same ``--deaths`` deaths into each with bench/load_referrals.py (same seed,
same dates, screenings, referrals, leases), then submitted reviews of the completed referrals
and their phase ratings as bench/reports.py makes them. In ``_one`` every death belongs to the
default organisation; in ``_region`` the registry holds an ICB and three trusts below it
(RR8, the default organisation renamed, RAE, RXF) and the deaths go to each trust in turn.
The service role (``--role``) is made with app.migrate.grant_service_role on both.

``--keep`` leaves the databases in place, and ``--reuse`` measures them again without
remaking them (new clients; the data as the earlier runs left it, with their screenings).

Three modes, each an instance of the app in this process (httpx over ASGI, no network, as
bench/hot_path_cpu.py), with one API client each:

- ``owner``: connects as the owner (a superuser: row-level security bypassed), database
  ``_one``; the client's reach is the whole deployment (no criteria): the closest to the
  service before issue 16 (what remains of issue 16 here: the guard's reach lookup and the
  transaction's settings, one statement each);
- ``single``: the service role, database ``_one``: the same client, the policies in force but
  passing at ``lfd_scope_all()``;
- ``region``: the service role, database ``_region``, a client of trust RR8 (a third of the
  deaths): the query criteria and the policies both confine every statement.

Measures, each for ``--seconds`` per mode and round, ``--concurrency`` clients at once (the
reports one at a time), after a warm-up of each:

- ``queue page``: GET /v1/referrals?route=sjr&status=ready&limit=50 (the first page);
- ``claim``: POST /v1/referrals/claim {route: sjr, count: 1}, then the referral's release, so
  the pool of claimable referrals stays as it was (the latency is the claim's; the CPU is the
  claim's and its release's);
- ``screening``: POST /v1/screenings, a new death each (bench/hot_path_cpu.py's body);
- ``care-quality`` and ``lfd-dashboard``: GET /v1/reports/... for the current financial year.

The rounds alternate the modes (each measure runs for every mode before the next measure; the
order of the modes turns by one each round), so that the machine's other load falls on every
mode alike. For each measure and mode the script prints requests per second, p50 and p99
latency, CPU milliseconds per request of this process (the app and its client) and of the
PostgreSQL backends of that mode's role and database (from /proc, bench/queue.py's meter),
then the ratios single/owner and region/owner, and the load average before and after.

With ``--explain`` it first prints EXPLAIN (ANALYZE, BUFFERS) of the queue page's and the
claim's statements as the region client's requests send them: captured from the service's own
code, in the region client's scope, on the service role's connection with the transaction's
settings set as the app sets them.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

# bench/queue.py shadows the standard library's queue module: take this directory off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import importlib.util
import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy import select

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.kit.time import local_date, now
from app.main import create_app
from app.migrate import grant_service_role
from app.models import Organisation
from app.reports.model import financial_year_of
from bench.kit import FUNCTIONS, asyncpg_url, drop_database, ensure_database, load_average


def _load_sibling(name: str) -> Any:
    """A script of this directory as a module, by path (bench/queue.py's name would find the
    standard library's queue module)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name[:-3]}", os.path.join(_HERE, name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench_queue = _load_sibling("queue.py")  # the CPU meter, percentiles, EXPLAIN of a queue page
bench_reports = _load_sibling("reports.py")  # the reviews' SQL
bench_hot_path = _load_sibling("hot_path_cpu.py")  # the screening body

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/lfd_bench_organisations"
MODES = ("owner", "single", "region")
TRUSTS = ("RR8", "RAE", "RXF")  # RR8 is the region client's
ICB = "QWO"
SCOPES = [Scope.referrals_read, Scope.referrals_claim, Scope.screenings_write, Scope.reports_read]
QUEUE = {"route": "sjr", "status": "ready", "limit": "50"}


@dataclass
class Mode:
    name: str
    database: str  # the database's name
    user: str  # the role the app connects as
    url: str  # the app's database URL
    owner_url: str
    key: str = ""
    app: Any = None
    http: httpx.AsyncClient | None = None


@dataclass
class Tally:
    """One measure of one mode, summed over the rounds."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    process_cpu: float = 0.0
    postgres_cpu: float = 0.0
    rows: int = 0  # rows per queue page, summed
    empty: int = 0  # claims that found nothing to claim


@dataclass
class Row:
    measure: str
    mode: str
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    process_cpu_ms: float
    postgres_cpu_ms: float
    errors: dict[str, int]
    note: str = ""


# -- the databases ------------------------------------------------------------------------------
def _with_database(url: str, name: str, user: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if user is not None:
        netloc = user + "@" + netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(path=f"/{name}", netloc=netloc))


def _user_of(url: str) -> str:
    return urlsplit(url).username or "postgres"


async def _region_registry(dsn: str) -> None:
    """An ICB and three trusts below it; the default organisation becomes the first trust."""
    connection = await asyncpg.connect(dsn)
    try:
        icb = uuid.uuid4()
        insert = (
            "INSERT INTO organisations (id, ods_code, name, kind, parent_id, aliases, is_default,"
            " settings, version, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, '[]', false, '{}', 1, now(), now())"
        )
        await connection.execute(insert, icb, ICB, "Bench Integrated Care Board", "icb", None)
        await connection.execute(
            "UPDATE organisations SET ods_code = $1, name = $2, parent_id = $3 WHERE is_default",
            TRUSTS[0],
            "Bench Trust A",
            icb,
        )
        for code, name in zip(TRUSTS[1:], ("Bench Trust B", "Bench Trust C"), strict=True):
            await connection.execute(insert, uuid.uuid4(), code, name, "trust", icb)
    finally:
        await connection.close()


def _load(dsn: str, deaths: int, days: float, organisations: str | None) -> None:
    command = [
        sys.executable,
        os.path.join(_HERE, "load_referrals.py"),
        "--deaths",
        str(deaths),
        "--days",
        str(days),
        "--database-url",
        dsn,
    ]
    if organisations:
        command += ["--organisations", organisations]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"loading failed:\n{done.stdout}\n{done.stderr}")
    print("  " + next(line for line in done.stdout.splitlines() if line.startswith("loaded")))


async def _reviews(dsn: str) -> None:
    """Submitted reviews of the completed referrals and their phase ratings (bench/reports.py),
    so that the reports have something to count."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(FUNCTIONS)
        for sql in (bench_reports.REVIEWS, bench_reports.PHASES, bench_reports.FIX_OVERALL_PHASE):
            await connection.execute(sql)
        await connection.execute("VACUUM ANALYZE")
        counts = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM deaths) AS deaths,"
            " (SELECT count(*) FROM referrals) AS referrals,"
            " (SELECT count(*) FROM reviews) AS reviews"
        )
        print(f"  {dict(counts)}")
    finally:
        await connection.close()


async def _client(owner_url: str, organisation: str | None) -> str:
    database = Database(Settings(database_url=owner_url, run_worker_in_serve=False))
    try:
        async with database.transaction() as session:
            organisation_id = None
            if organisation is not None:
                organisation_id = (
                    await session.scalars(
                        select(Organisation.id).where(Organisation.ods_code == organisation)
                    )
                ).one()
            made = await create_client(
                session, "bench organisations", SCOPES, organisation_id=organisation_id
            )
        return made.key
    finally:
        await database.dispose()


async def prepare(args: argparse.Namespace) -> list[Mode]:
    base = urlsplit(args.database_url).path.lstrip("/")
    owner = _user_of(args.database_url)
    one, region = f"{base}_one", f"{base}_region"
    for name, organisations in ((one, None), (region, ",".join(TRUSTS))):
        owner_url = _with_database(args.database_url, name)
        dsn = asyncpg_url(owner_url)
        if args.reuse:
            print(f"{name}: as left by an earlier run (--reuse)", flush=True)
            continue
        print(f"{name}: making, migrating, loading {args.deaths:,} deaths", flush=True)
        await ensure_database(dsn, reset=True)
        if organisations:
            await _region_registry(dsn)
        await asyncio.to_thread(_load, dsn, args.deaths, args.days, organisations)
        await _reviews(dsn)
        await asyncio.to_thread(grant_service_role, owner_url, args.role)
    one_owner = _with_database(args.database_url, one)
    region_owner = _with_database(args.database_url, region)
    modes = [
        Mode("owner", one, owner, one_owner, one_owner),
        Mode("single", one, args.role, _with_database(one_owner, one, args.role), one_owner),
        Mode(
            "region",
            region,
            args.role,
            _with_database(region_owner, region, args.role),
            region_owner,
        ),
    ]
    key_one = await _client(one_owner, None)
    key_region = await _client(region_owner, TRUSTS[0])
    for mode in modes:
        mode.key = key_region if mode.name == "region" else key_one
    return modes


async def drop(args: argparse.Namespace) -> None:
    base = urlsplit(args.database_url).path.lstrip("/")
    for name in (f"{base}_one", f"{base}_region"):
        await drop_database(_with_database(args.database_url, name))


# -- the apps -----------------------------------------------------------------------------------
def start(mode: Mode) -> None:
    settings = Settings(
        database_url=mode.url,
        migration_database_url=mode.owner_url,
        run_worker_in_serve=False,
        log_level="WARNING",
        rate_limit_per_second=0,  # the bench's one client asks far more often than a person
        rate_limit_routes={},
    )
    mode.app = create_app(settings)
    mode.http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=mode.app),
        base_url="http://bench",
        headers={"Authorization": f"Bearer {mode.key}"},
        timeout=120,
    )


async def stop(mode: Mode) -> None:
    if mode.http is not None:
        await mode.http.aclose()
    if mode.app is not None:
        await mode.app.state.database.dispose()


# -- the measures -------------------------------------------------------------------------------
# A call makes one request (or a claim and its release) and returns the latency to record, or
# raises Failed.
Call = Callable[[Mode, int, Tally], Awaitable[float]]


class Failed(Exception):
    pass


async def _timed(request: Awaitable[httpx.Response], expect: int) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await request
    elapsed = time.perf_counter() - started
    if response.status_code != expect:
        raise Failed(str(response.status_code))
    return response, elapsed


async def queue_page(mode: Mode, _n: int, tally: Tally) -> float:
    assert mode.http is not None
    response, elapsed = await _timed(mode.http.get("/v1/referrals", params=QUEUE), 200)
    tally.rows += len(response.json()["items"])
    return elapsed


async def claim(mode: Mode, n: int, tally: Tally) -> float:
    assert mode.http is not None
    headers = {"X-On-Behalf-Of": f"Bench Reviewer {n % 8:02d}"}
    response, elapsed = await _timed(
        mode.http.post("/v1/referrals/claim", json={"route": "sjr", "count": 1}, headers=headers),
        200,
    )
    items = response.json()["items"]
    if not items:
        tally.empty += 1
        return elapsed
    release = await mode.http.post(
        f"/v1/referrals/{items[0]['id']}/release",
        json={"lease_id": items[0]["lease_id"]},
        headers=headers,
    )
    if release.status_code != 200:
        raise Failed(f"release {release.status_code}")
    return elapsed


async def screening(mode: Mode, n: int, _tally: Tally) -> float:
    assert mode.http is not None
    _, elapsed = await _timed(
        mode.http.post(
            "/v1/screenings",
            json=bench_hot_path.screening(n),
            headers={"Idempotency-Key": uuid.uuid4().hex},
        ),
        201,
    )
    return elapsed


def report(name: str, period: str) -> Call:
    async def call(mode: Mode, _n: int, _tally: Tally) -> float:
        assert mode.http is not None
        _, elapsed = await _timed(
            mode.http.get(f"/v1/reports/{name}", params={"period": period}), 200
        )
        return elapsed

    return call


async def drive(
    mode: Mode, call: Call, concurrency: int, seconds: float, tally: Tally | None
) -> None:
    """``concurrency`` clients calling as fast as answered for ``seconds``; into ``tally``
    (None: a warm-up)."""
    record = tally if tally is not None else Tally()
    counter = 0
    meter = bench_queue.CpuMeter(None, f"{mode.user} {mode.database}")

    async def worker() -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            try:
                latency = await call(mode, counter, record)
            except Failed as error:
                record.errors[str(error)] += 1
                continue
            except httpx.HTTPError as error:
                record.errors[type(error).__name__] += 1
                continue
            record.latencies.append(latency)

    meter.start()
    cpu = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    used = meter.stop()
    if tally is not None:
        tally.seconds += elapsed
        tally.process_cpu += cpu
        tally.postgres_cpu += used.get("postgres", 0.0)
        tally.requests = len(tally.latencies)


def rows_of(measures: list[str], tallies: dict[tuple[str, str], Tally]) -> list[Row]:
    rows: list[Row] = []
    for measure in measures:
        for mode in MODES:
            tally = tallies[(measure, mode)]
            n = max(len(tally.latencies), 1)
            ordered = sorted(tally.latencies)
            note = ""
            if measure == "queue page":
                note = f"{tally.rows / n:.0f} rows/page"
            elif measure == "claim" and tally.empty:
                note = f"{tally.empty} found nothing"
            rows.append(
                Row(
                    measure=measure,
                    mode=mode,
                    requests=len(tally.latencies),
                    per_second=round(len(tally.latencies) / max(tally.seconds, 1e-9), 1),
                    p50_ms=round(bench_queue.percentile(ordered, 0.50) * 1000, 1),
                    p99_ms=round(bench_queue.percentile(ordered, 0.99) * 1000, 1),
                    process_cpu_ms=round(1000 * tally.process_cpu / n, 2),
                    postgres_cpu_ms=round(1000 * tally.postgres_cpu / n, 2),
                    errors=dict(tally.errors),
                    note=note,
                )
            )
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| measure | mode | requests/s | p50 ms | p99 ms | process CPU ms/req "
        "| PostgreSQL CPU ms/req | requests | errors | |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "0"
        lines.append(
            f"| {r.measure} | {r.mode} | {r.per_second} | {r.p50_ms} | {r.p99_ms} "
            f"| {r.process_cpu_ms} | {r.postgres_cpu_ms} | {r.requests} | {errors} | {r.note} |"
        )
    return "\n".join(lines)


def ratios(rows: list[Row]) -> str:
    lines = [
        "| measure | vs owner | requests/s | p50 | p99 | process CPU | PostgreSQL CPU "
        "| CPU, both |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(r.measure, r.mode): r for r in rows}
    for measure in dict.fromkeys(r.measure for r in rows):
        base = by[(measure, "owner")]
        base_cpu = base.process_cpu_ms + base.postgres_cpu_ms
        for mode in ("single", "region"):
            r = by[(measure, mode)]

            def ratio(a: float, b: float) -> str:
                return f"{a / b:.2f}" if b else "-"

            lines.append(
                f"| {measure} | {mode}/owner | {ratio(r.per_second, base.per_second)} "
                f"| {ratio(r.p50_ms, base.p50_ms)} | {ratio(r.p99_ms, base.p99_ms)} "
                f"| {ratio(r.process_cpu_ms, base.process_cpu_ms)} "
                f"| {ratio(r.postgres_cpu_ms, base.postgres_cpu_ms)} "
                f"| {ratio(r.process_cpu_ms + r.postgres_cpu_ms, base_cpu)} |"
            )
    return "\n".join(lines)


# -- EXPLAIN under the region client's scope ----------------------------------------------------
async def explain(mode: Mode) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the queue page's and the claim's statements as the region
    client's requests send them (bench/queue.py's capture for the page; the claim's SELECT ...
    FOR UPDATE SKIP LOCKED likewise), in the client's scope, on the service role's connection
    with the transaction's settings set as the app sets them."""
    from sqlalchemy import event

    from app.auth.principal import Principal
    from app.kit.enums import Route
    from app.models import ApiClient
    from app.reach import reach_of
    from app.referrals import workflow
    from app.scoping import UNSCOPED, scoped

    database = Database(Settings(database_url=mode.url, run_worker_in_serve=False))
    try:
        async with database.autocommit() as session:
            client = (
                await session.scalars(
                    select(ApiClient)
                    .where(ApiClient.name == "bench organisations")
                    .order_by(ApiClient.created_at.desc())
                    .limit(1),  # this run's (--reuse keeps the earlier runs')
                    execution_options={UNSCOPED: True},
                )
            ).one()
            scope = await reach_of(session, client.organisation_id, members=False)
    finally:
        await database.dispose()
    print(
        f"\n== EXPLAIN as the region client: {len(scope.organisations)} organisation(s), "
        f"{len(scope.shared_deaths)} shared death(s), everything={scope.everything}"
    )
    with scoped(scope):
        await bench_queue.explain(mode.url, [bench_queue.Scenario("sjr ready", [QUEUE])])

        database = Database(Settings(database_url=mode.url, run_worker_in_serve=False))
        captured: list[tuple[str, Any]] = []

        def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "FOR UPDATE" in statement and "FROM referrals" in statement:
                captured.append((statement, parameters))

        event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
        who = Principal(
            client_id=client.id,
            client_name=client.name,
            scopes=frozenset(scope.value for scope in SCOPES),
            pseudonymised=False,
            on_behalf_of="Bench Reviewer 00",
            request_id=None,
            organisation_id=client.organisation_id,
        )
        try:
            async with database.sessionmaker() as session, session.begin():
                for attempt in range(2):  # the second is shown: caches warm
                    captured.clear()
                    await workflow.claim(
                        session,
                        who,
                        database.settings,
                        Route.sjr,
                        count=1,
                        lease_seconds=None,
                        specialty=None,
                        stage=None,
                        reviewer="Bench Reviewer 00",
                    )
                    statement, parameters = captured[-1]
                    connection = await session.connection()
                    raw = await connection.get_raw_connection()
                    driver = raw.driver_connection
                    assert driver is not None
                    args = list(parameters) if isinstance(parameters, list | tuple) else []
                    await driver.execute(f"PREPARE bench_claim AS {statement}")
                    values = ", ".join(bench_queue._literal(value) for value in args)
                    rows = await driver.fetch(
                        f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_claim({values})"
                    )
                    await driver.execute("DEALLOCATE bench_claim")
                    if attempt == 1:
                        print("\n-- claim: route sjr, count 1")
                        print(statement.strip())
                        print("\n".join(row[0] for row in rows))
                await session.rollback()
        finally:
            await database.dispose()


# -- main ---------------------------------------------------------------------------------------
async def main_async(args: argparse.Namespace) -> int:
    modes = await prepare(args)
    by_name = {mode.name: mode for mode in modes}
    year = financial_year_of(local_date(now()))
    period = f"{year}-{str(year + 1)[2:]}"
    measures: list[tuple[str, Call, int]] = [
        ("queue page", queue_page, args.concurrency),
        ("claim", claim, args.concurrency),
        ("screening", screening, args.concurrency),
        (f"care-quality {period}", report("care-quality", period), 1),
        (f"lfd-dashboard {period}", report("lfd-dashboard", period), 1),
    ]
    tallies = {(name, mode): Tally() for name, _, _ in measures for mode in MODES}
    try:
        for mode in modes:
            start(mode)
        if args.explain:
            await explain(by_name["region"])
        print(
            f"\n{args.rounds} rounds of {args.seconds:g} s per measure and mode, "
            f"{args.concurrency} clients (reports: 1); load average {load_average()}",
            flush=True,
        )
        for mode in modes:  # warm-up: connections open, statements prepared, caches filled
            for _, call, concurrency in measures:
                await drive(mode, call, concurrency, 1.0, None)
        loads = [load_average()]
        for round_ in range(args.rounds):
            order = list(MODES[round_ % 3 :] + MODES[: round_ % 3])
            for name, call, concurrency in measures:
                for mode_name in order:
                    tally = tallies[(name, mode_name)]
                    before = len(tally.latencies)
                    await drive(by_name[mode_name], call, concurrency, args.seconds, tally)
                    print(
                        f"round {round_ + 1} {name:<26} {mode_name:<7} "
                        f"{len(tally.latencies) - before:>5} requests"
                        + (f" errors {dict(tally.errors)}" if tally.errors else ""),
                        flush=True,
                    )
            loads.append(load_average())
    finally:
        for mode in modes:
            await stop(mode)
        if not args.keep:
            await drop(args)
    rows = rows_of([name for name, _, _ in measures], tallies)
    print(f"\nload average (1, 5, 15 min) before and after each round: {'; '.join(loads)}\n")
    print(table(rows))
    print()
    print(ratios(rows))
    if args.json:
        await asyncio.to_thread(
            Path(args.json).write_text,
            json.dumps({"loads": loads, "rows": [asdict(r) for r in rows]}, indent=2),
        )
    return 1 if any(r.errors for r in rows) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("LFD_BENCH_ORG_URL", DEFAULT_URL))
    parser.add_argument("--deaths", type=int, default=20_000)
    parser.add_argument("--days", type=float, default=365.0, help="span of dates of death")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="per measure, mode and round")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--role", default="lfd_bench_service", help="the service role to make")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the two databases")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure again on the databases an earlier run kept (--keep), as they are now",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    name = urlsplit(args.database_url).path.lstrip("/")
    if name in ("", "postgres", "test"):
        raise SystemExit(
            "--database-url must name the benchmark's databases (e.g. .../lfd_bench_organisations)"
        )
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
