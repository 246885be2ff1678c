"""What the benchmark scripts share: their databases, the SQL that draws synthetic data, the app
in this process, timing and the machine's state.

A script imports it as ``bench.kit``, after its path fix: the repository's root first on
sys.path, this directory off it (bench/queue.py would shadow the standard library's queue).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import httpx
from fastapi import FastAPI

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.main import create_app
from app.migrate import grant_service_role, upgrade

# -- drawing data in SQL ----------------------------------------------------------------------

# bench_u(g, salt): a uniform number in [0, 1) drawn from row g's number and a salt, so that a
# load is reproducible; bench_pick(u, cumulative): the 1-based bucket of u in the cumulative
# proportions given.
FUNCTIONS = """
CREATE OR REPLACE FUNCTION bench_u(g bigint, salt int) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$ SELECT (hashint8(g * 64 + salt) & 1048575)::float8 / 1048576 $$;
CREATE OR REPLACE FUNCTION bench_pick(u float8, cumulative float8[]) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(min(i), array_length(cumulative, 1))
  FROM generate_subscripts(cumulative, 1) AS i WHERE u < cumulative[i] $$;
"""

# A trust's 20 specialties (drawn as ARRAY[...][1 + floor(u * 20)]).
SPECIALTIES = (
    "General Medicine", "Cardiology", "Respiratory Medicine", "Gastroenterology", "Elderly Care",
    "Oncology", "Haematology", "Nephrology", "Neurology", "Stroke Medicine", "General Surgery",
    "Urology", "Trauma and Orthopaedics", "Vascular Surgery", "Critical Care",
    "Emergency Medicine", "Obstetrics", "Paediatrics", "Palliative Care", "Infectious Diseases",
)  # fmt: skip


def sql_array(values: Iterable[str]) -> str:
    """The strings as a PostgreSQL ARRAY[...] literal."""
    quoted = ",".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"ARRAY[{quoted}]"


def reviews_of(referrals: str) -> str:
    """An INSERT of a submitted review for each referral r that ``referrals`` (what follows
    ``FROM referrals r``: joins and WHERE) keeps, drawn from a hash of its id: SJR scores in the
    proportions trusts publish (about 4% avoidability 1-3, 13% care poor or very poor), M&M
    meetings, LeDeR and PSII references."""
    return f"""
INSERT INTO reviews (id, referral_id, death_id, organisation_id,
    died_on, route, stage, instrument, status,
    reviewer, submitted_at, detail, overall_rating, quality_of_records, avoidability,
    meeting_date, outcome, external_reference, external_status, notified_at, external_due_at,
    version, created_at, updated_at)
SELECT gen_random_uuid(), r.id, r.death_id, r.organisation_id, r.died_on, r.route, r.stage,
    CASE r.route WHEN 'sjr' THEN 'sjr' WHEN 'mm' THEN 'mm' WHEN 'leder' THEN 'leder'
        ELSE 'external' END,
    'submitted', 'Dr Bench ' || (1 + h % 40), r.completed_at, '{{}}'::jsonb,
    CASE WHEN r.route = 'sjr' THEN
        bench_pick(bench_u(h, 21), ARRAY[0.03, 0.13, 0.48, 0.90, 1.0]) END,
    CASE WHEN r.route = 'sjr' THEN 3 + (h % 2) END,
    CASE WHEN r.route = 'sjr' THEN
        bench_pick(bench_u(h, 22), ARRAY[0.005, 0.015, 0.04, 0.10, 0.30, 1.0]) END,
    CASE WHEN r.route = 'mm' THEN r.completed_at::date END,
    CASE WHEN r.route = 'mm' THEN 'learning_identified' END,
    CASE WHEN r.route IN ('leder', 'psii') THEN 'REF-' || (h % 100000) END,
    CASE WHEN r.route IN ('leder', 'psii') THEN
        CASE WHEN bench_u(h, 23) < 0.4 THEN 'completed' ELSE 'initial_review' END END,
    CASE WHEN r.route IN ('leder', 'psii') THEN r.created_at + interval '1 day' END,
    CASE WHEN r.route = 'leder' THEN r.created_at + interval '6 months' END,
    1, r.created_at, r.completed_at
FROM (SELECT r.*, abs(hashtext(r.id::text))::bigint AS h FROM referrals r
      {referrals}) r
"""


def bind(sql: str, **values: float | int) -> str:
    """``sql`` with each ``:name`` replaced by its value written inline (an integer as one,
    longer names first, so that ``:low`` does not eat into ``:lowest``)."""
    for key in sorted(values, key=len, reverse=True):
        value = values[key]
        text = str(int(value)) if float(value).is_integer() else repr(float(value))
        sql = sql.replace(f":{key}", text)
    return sql


async def scoped(connection: asyncpg.Connection) -> None:
    """The whole deployment in scope for the connection's statements (row-level security)."""
    await connection.execute("SELECT set_config('lfd.scope', 'all', false)")


async def step(
    connection: asyncpg.Connection, label: str, sql: str, *args: Any, indent: str = "  "
) -> None:
    """Run one statement of a load and print its status and how long it took."""
    started = time.perf_counter()
    status = await connection.execute(sql, *args)
    print(f"{indent}{label}: {status} ({time.perf_counter() - started:.1f} s)", flush=True)


async def grow(
    connection: asyncpg.Connection,
    source: str,
    size: int,
    steps: Sequence[tuple[str, str]],
    **values: float | int,
) -> float:
    """Grow the deaths of ``source`` (their source_system) to ``size``: FUNCTIONS, then each of
    the (label, SQL) ``steps``, bound (bind) to ``:low`` and ``:high``, the numbers of the
    deaths missing, and to ``values``, then VACUUM ANALYZE; the seconds it took (0 when there
    were enough)."""
    have = await connection.fetchval("SELECT count(*) FROM deaths WHERE source_system = $1", source)
    if have >= size:
        return 0.0
    started = time.perf_counter()
    await connection.execute(FUNCTIONS)
    for label, sql in steps:
        await step(connection, label, bind(sql, low=have + 1, high=size, **values))
    await connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


# -- databases ----------------------------------------------------------------------------------


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def sqlalchemy_url(url: str, role: str | None = None) -> str:
    """The URL as the app takes it; with ``role``, connecting as that role instead."""
    parts = urlsplit(asyncpg_url(url))
    if role:
        parts = parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}")
    return urlunsplit(parts).replace("postgresql://", "postgresql+asyncpg://")


@asynccontextmanager
async def server(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the server of ``url``, its database ``postgres``, as the URL's user."""
    parts = urlsplit(asyncpg_url(url))
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_database(url: str, reset: bool, service_role: str | None = None) -> None:
    """Make the benchmark's database when it is missing (remake it with ``reset``), migrate it
    and, given ``service_role``, make that role (app.migrate.grant_service_role)."""
    name = urlsplit(url).path.lstrip("/")
    if name in ("test", "postgres", ""):
        raise SystemExit(f"refusing to load benchmark data into the database '{name}'")
    async with server(url) as admin:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and reset:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    # Alembic's env.py runs its own event loop: give it a thread.
    await asyncio.to_thread(upgrade, sqlalchemy_url(url))
    if service_role:
        await asyncio.to_thread(grant_service_role, sqlalchemy_url(url), service_role)


async def drop_database(url: str) -> None:
    async with server(url) as admin:
        name = urlsplit(url).path.lstrip("/")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the app in this process --------------------------------------------------------------------


def in_process_app(url: str, role: str | None = None) -> FastAPI:
    """The service's app on the database of ``url`` (as ``role``, if given), its background
    runner off, logging warnings only, for httpx's ASGI transport (asgi_client)."""
    settings = Settings(
        database_url=sqlalchemy_url(url, role),
        run_worker_in_serve=False,
        log_json=True,
        log_level="WARNING",
    )
    return create_app(settings)


def asgi_client(app: FastAPI, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=timeout
    )


async def bearer(app: FastAPI, name: str, scopes: list[Scope], **options: Any) -> dict[str, str]:
    """The headers of a new API client of the app's database (create_client's ``options``)."""
    async with app.state.database.transaction() as session:
        created = await create_client(session, name, scopes, **options)
    return {"Authorization": f"Bearer {created.key}"}


async def durations(count: int, call: Callable[[], Awaitable[httpx.Response]]) -> list[float]:
    """Seconds each of ``count`` calls took, one after another; each must answer 2xx."""
    taken = []
    for _ in range(count):
        started = time.perf_counter()
        response = await call()
        taken.append(time.perf_counter() - started)
        assert response.status_code < 300, response.text
    return taken


async def timed(
    runs: int, call: Callable[[], Awaitable[httpx.Response]], warm_up: bool = True
) -> float:
    """Median milliseconds of ``runs`` calls, after one warm-up unless the caller made it; each
    must answer 2xx."""
    if warm_up:
        await durations(1, call)
    return statistics.median(await durations(runs, call)) * 1000


# -- a receiver in its own process --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Receiver:
    process: subprocess.Popen[bytes]
    base: str


def start_receiver(workdir: Path, module: str, source: str, probe: str, *options: str) -> Receiver:
    """``source`` (an ASGI ``app``) written to ``workdir``/``module``.py and served by uvicorn
    in its own process on a free port (uvicorn's ``options`` added), once GET ``probe``
    answers."""
    (workdir / f"{module}.py").write_text(source)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"{module}:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *options,
        ],
        cwd=workdir,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}{probe}", timeout=1)
            return Receiver(process, base)
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the receiver did not start")


# -- the machine --------------------------------------------------------------------------------


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, amount, _ = line.split()
                values[key] = int(amount) / 1024
    return values["VmRSS:"], values["VmHWM:"]
