"""History import and export (issue 14): deaths per second and peak memory.

    python bench/history_import.py --database-url postgresql+asyncpg://postgres@127.0.0.1/lfd_hb
        [--sizes 10000,1000000] [--batch-size 2000] [--workers 2] [--keep-files DIR]

For each size: writes a bundle of that many deaths (streamed to a file: three financial years
of deaths, each with its screening; about 60 % with an SJR referral and its submitted review,
phases and a problem in care; about 15 % with an M&M referral and its outcome; a few with an
open referral), then drops and re-creates the database's schema (``lfd migrate``), imports the
bundle as ``lfd history import`` does (run_import, one process, with the database on the same
host), and exports everything as ``lfd history export`` does (to a file). Reported: the wall
time of each, deaths per second, the rows written, the process's peak resident memory
(ru_maxrss, which only grows: the import is measured first, the export after it) and the load
average before and after. Run it on PostgreSQL for the figures in docs/benchmarks.md; it runs
on SQLite too (slower).
"""

from __future__ import annotations

# ruff: noqa: E402, ASYNC240  (the path fix runs first; a script blocks on its files)
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.history.export import export_records
from app.history.runner import run_import
from app.history.service import create_import
from app.kit.nhs_number import check_digit
from app.migrate import grant_service_role, upgrade
from app.models import Death, Referral, Review, ReviewPhaseRating, Screening
from app.reports.care_quality import build_care_quality
from app.reports.dashboard import build_lfd_dashboard
from app.reports.filters import ReportFilters
from app.reports.model import financial_year
from app.reports.router import report_session
from app.reports.themes import build_themes
from app.reports.timeliness import build_timeliness

SPECIALTIES = ["General Medicine", "Respiratory", "Care of the Elderly", "General Surgery"]
START = datetime(2021, 4, 1, tzinfo=UTC)
DAYS = 3 * 365


def nhs_number(rng: random.Random) -> str:
    while True:
        first = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        digit = check_digit(first)
        if digit is not None:
            return first + str(digit)


def record(rng: random.Random, index: int) -> dict[str, Any]:
    died = START + timedelta(minutes=rng.randrange(DAYS * 24 * 60))
    screened = died + timedelta(hours=rng.randrange(6, 96))
    specialty = rng.choice(SPECIALTIES)
    unexpected = rng.random() < 0.6
    referrals: list[dict[str, Any]] = []
    if unexpected:
        created = screened + timedelta(hours=rng.randrange(1, 72))
        open_one = rng.random() < 0.05
        overall = rng.choice([2, 3, 3, 4, 4, 5])
        referral: dict[str, Any] = {
            "reference": "SJR1",
            "route": "sjr",
            "stage": 1,
            "reasons": ["unexpected_death"],
            "created_at": created.isoformat(),
        }
        if open_one:
            referral |= {"status": "ready", "due_at": (created + timedelta(days=56)).isoformat()}
        else:
            submitted = created + timedelta(days=rng.randrange(5, 90))
            referral |= {
                "status": "completed",
                "closed_at": submitted.isoformat(),
                "reviewer": "Dr Reviewer",
                "review": {
                    "status": "submitted",
                    "submitted_at": submitted.isoformat(),
                    "form": {
                        "instrument": "sjr",
                        "reviewer": {"name": "Dr Reviewer"},
                        "phases": [
                            {"phase": "admission_initial", "rating": rng.randrange(2, 6)},
                            {"phase": "ongoing", "rating": rng.randrange(2, 6)},
                            {"phase": "overall", "rating": overall},
                        ],
                        "quality_of_records": rng.randrange(2, 6),
                        "avoidability": rng.randrange(3, 7),
                        "problems_in_care": [
                            {"type": "monitoring", "phase": "ongoing", "harm": "no"}
                        ],
                    },
                },
            }
        referrals.append(referral)
    if specialty == "General Surgery":
        meeting = screened + timedelta(days=rng.randrange(7, 40))
        referrals.append(
            {
                "reference": "MM1",
                "route": "mm",
                "reasons": ["specialty_mm"],
                "created_at": (screened + timedelta(hours=2)).isoformat(),
                "status": "completed",
                "closed_at": meeting.isoformat(),
                "review": {
                    "status": "submitted",
                    "submitted_at": meeting.isoformat(),
                    "form": {
                        "instrument": "mm",
                        "meeting_date": meeting.date().isoformat(),
                        "specialty": specialty,
                        "presenter": "Dr Presenter",
                        "outcome": "learning_identified",
                    },
                },
            }
        )
    return {
        "format": "lfd-history/1",
        "death": {
            "source_system": "bench-legacy",
            "source_reference": f"B{index:08d}",
            "nhs_number": nhs_number(rng),
            "date_of_birth": (died - timedelta(days=rng.randrange(40 * 365, 95 * 365)))
            .date()
            .isoformat(),
            "sex": rng.choice(["male", "female"]),
            "postcode": "LS1 4AP",
            "died_at": died.isoformat(),
            "place_of_death": "inpatient",
            "site": "Bench Infirmary",
            "admitting_specialty": specialty,
            "specialty_at_death": specialty,
            "admission_method": "emergency",
            "admitted_at": (died - timedelta(days=rng.randrange(1, 20))).isoformat(),
        },
        "screening": {
            "examiner": {"name": "Dr Examiner", "gmc_number": "7654321"},
            "screened_at": screened.isoformat(),
            "records_reviewed": True,
            "qap_discussed": True,
            "bereaved_contacted": True,
            "coroner_notified": False,
            "death_expected": not unexpected,
        },
        "referrals": referrals,
    }


def write_bundle(path: Path, size: int) -> int:
    rng = random.Random(size)
    with path.open("wb") as handle:
        for index in range(size):
            handle.write(orjson.dumps(record(rng, index)) + b"\n")
    return path.stat().st_size


def cpu_seconds() -> float:
    """User and system CPU of this process and its finished children (the workers): the
    importer's own cost, whatever else the machine runs (PostgreSQL's is not in it)."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(database: str | None) -> dict[int, float]:
    """CPU seconds (user + system) of each PostgreSQL backend serving ``database`` on this
    host, from /proc: the database's own work for the import (its COPYs, the policies' checks,
    the index entries), which the importer's CPU does not include. The server's background
    processes (WAL writer, checkpointer) are not in it."""
    found: dict[int, float] = {}
    if database is None:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if not (cmdline.startswith("postgres:") and f" {database} " in cmdline):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def backend_cpu_since(database: str | None, before: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in backend_cpu(database).items())


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def fresh_schema(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    if engine.dialect.name != "postgresql":
        Path(url.split("///", 1)[1]).unlink(missing_ok=True)
    await asyncio.to_thread(upgrade, url)


def service_url(owner_url: str, role: str | None) -> str:
    """The URL the import connects with: as a role that owns nothing and cannot bypass
    row-level security (as a deployment connects: docs/organisations.md), made here by
    app.migrate.grant_service_role; or the owner's own (``--role owner``)."""
    if role is None or not owner_url.startswith("postgresql"):
        return owner_url
    grant_service_role(owner_url, role)
    return make_url(owner_url).set(username=role).render_as_string(hide_password=False)


async def run_reports(database: Database) -> dict[str, Any]:
    """The board's reports over each imported financial year, as the API builds them (one
    snapshot each): that they still work over the imported history, and how long each takes.
    Seconds per report and year, and the deaths the LfD dashboard counted in each year."""
    timings: dict[str, Any] = {}
    builders = {
        "lfd-dashboard": build_lfd_dashboard,
        "care-quality": build_care_quality,
        "timeliness": build_timeliness,
        "themes": build_themes,
    }
    for year in (START.year, START.year + 1, START.year + 2):
        period = financial_year(year)
        for name, build in builders.items():
            started = time.perf_counter()
            async with report_session(database) as session:
                report = await build(session, period, ReportFilters(), database.settings)
            timings[f"{name} {year}"] = round(time.perf_counter() - started, 2)
            if name == "lfd-dashboard":
                year_row = report.tables[0].rows[-1]
                timings[f"deaths in scope {year}"] = year_row.get("deaths")
    return timings


async def bench(
    owner_url: str, size: int, batch_size: int, workers: int, folder: Path, role: str | None
) -> dict[str, Any]:
    bundle = folder / f"history-{size}.jsonl"
    started = time.perf_counter()
    size_bytes = write_bundle(bundle, size)
    generated = time.perf_counter() - started
    await fresh_schema(owner_url)
    url = await asyncio.to_thread(service_url, owner_url, role)
    settings = Settings(
        database_url=url,
        migration_database_url=owner_url,
        history_batch_size=batch_size,
        history_workers=workers,
        history_parallel_from=1,
        log_level="WARNING",
    )
    database = Database(settings)
    async with database.transaction() as session:
        client = (await create_client(session, "bench", [Scope.admin])).client
        principal = Principal.of_client(client)
        job = await create_import(
            session,
            principal,
            path=bundle,
            sha256="0" * 64,
            size=size_bytes,
            lines=size,
            origin="cli",
            all_or_nothing=False,
        )
    name = make_url(url).database if url.startswith("postgresql") else None
    load_before = os.getloadavg()
    cpu_before = cpu_seconds()
    postgres_before = backend_cpu(name)
    started = time.perf_counter()
    done = await run_import(database, job.id)
    imported = time.perf_counter() - started
    import_cpu = cpu_seconds() - cpu_before
    postgres_cpu = backend_cpu_since(name, postgres_before)
    assert done is not None and done.status == "completed", done and done.error
    import_rss = maxrss_mb()
    async with database.transaction() as session:
        counts = {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)))
            for model in (Death, Screening, Referral, Review, ReviewPhaseRating)
        }
    reports = await run_reports(database)
    out = folder / f"export-{size}.jsonl"
    started = time.perf_counter()
    exported = 0
    async with database.snapshot() as session:
        with out.open("wb") as handle:
            async for page in export_records(session):
                handle.write(b"".join(orjson.dumps(r) + b"\n" for r in page.records))
                exported += len(page.records)
    export_seconds = time.perf_counter() - started
    await database.dispose()
    return {
        "deaths": size,
        "role": role or "owner",
        "workers": workers,
        "batch_size": batch_size,
        "bundle_mb": round(size_bytes / 1e6, 1),
        "generate_s": round(generated, 1),
        "import_s": round(imported, 1),
        "import_deaths_per_s": round(size / imported),
        "rows": counts,
        "import_cpu_s": round(import_cpu, 1),
        "import_cpu_us_per_death": round(import_cpu / size * 1e6),
        "postgres_cpu_s": round(postgres_cpu, 1),
        "postgres_cpu_us_per_death": round(postgres_cpu / size * 1e6),
        "import_maxrss_mb": round(import_rss),
        "reports": reports,
        "export_s": round(export_seconds, 1),
        "export_deaths_per_s": round(exported / export_seconds),
        "maxrss_after_export_mb": round(maxrss_mb()),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--keep-files", metavar="DIR")
    parser.add_argument(
        "--role",
        default="lfd_bench_service",
        help="PostgreSQL: the service role the import connects as, under row-level security "
        "(made if missing); `owner` to connect as the URL's own user",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="processes checking and planning (0: none)"
    )
    args = parser.parse_args()
    folder = Path(args.keep_files or tempfile.mkdtemp(prefix="lfd-history-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        role = None if args.role == "owner" else args.role
        result = await bench(args.database_url, size, args.batch_size, args.workers, folder, role)
        print(orjson.dumps(result).decode(), flush=True)
        if not args.keep_files:
            for file in folder.glob(f"*-{size}.jsonl"):
                file.unlink()


if __name__ == "__main__":
    asyncio.run(main())
