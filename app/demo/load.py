"""``lfd demo``: the synthetic history written as a bundle and brought in by the history
importer (the job that ``lfd history import`` runs: validation, bulk rows, one summary event a
batch, one audit row), then the action plan through its service.

Run again, it changes nothing: the deaths are the same records (the importer finds each by its
source reference, unchanged) and the plan is found by its title. The demo of a seed is as of
the moment it was first loaded (named in its bundle's file name, which the import keeps): a
second run, on any later day, rebuilds the records as of that moment, not today, so that
nothing drifts. A fresh database or another ``--seed`` gives a demo as of today."""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import ColumnElement, func, select

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.demo.draw import demo_window, financial_year
from app.demo.plan import load_plan, plan_title
from app.demo.records import synthetic_records, write_bundle
from app.demo.vocabulary import CLIENT_NAME, MAX_DEATHS, SOURCE_SYSTEM
from app.history.runner import RUNNING, run_import
from app.history.service import create_import, spool_dir
from app.kit.time import local_date, now
from app.models import (
    ApiClient,
    Death,
    HistoryImport,
    HistoryImportProblem,
    HistoryRecord,
    Referral,
    Review,
)

BUNDLE_NAME = re.compile(r"^lfd-demo-(?P<seed>\d+)-(?P<at>\d{8}T\d{6}Z)\.jsonl$")
SHOWN_PROBLEMS = 10


async def _demo_principal(database: Database) -> Principal:
    """The demo loader's own API client (made once, reused after): the import's audit row and
    events, and the plan's, say that the demo wrote these rows."""
    async with database.transaction() as session:
        client = await session.scalar(
            select(ApiClient)
            .where(ApiClient.name == CLIENT_NAME, ApiClient.revoked_at.is_(None))
            .order_by(ApiClient.created_at)
            .limit(1)
        )
        if client is None:
            client = (await create_client(session, CLIENT_NAME, [Scope.admin])).client
    return Principal.of_client(client)


def bundle_name(seed: int, moment: datetime) -> str:
    return f"lfd-demo-{seed}-{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}.jsonl"


async def _loaded_as_of(database: Database, principal: Principal, seed: int) -> datetime | None:
    """The moment an earlier run loaded this seed as of, from its import's bundle name."""
    async with database.transaction() as session:
        paths = await session.scalars(
            select(HistoryImport.spool_path)
            .where(HistoryImport.client_id == principal.client_id)
            .order_by(HistoryImport.created_at)
        )
        for path in paths.all():
            found = BUNDLE_NAME.match(Path(path).name)
            if found and int(found["seed"]) == seed:
                return datetime.strptime(found["at"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return None


async def _live_deaths(database: Database, seed: int) -> int:
    """Deaths of this seed that the demo of before this one posted as live screenings: the
    importer refuses to overwrite a death live intake recorded."""
    async with database.transaction() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Death)
            .outerjoin(HistoryRecord, HistoryRecord.death_id == Death.id)
            .where(*_of_seed(seed), HistoryRecord.death_id.is_(None))
        )
    return int(count or 0)


def _of_seed(seed: int) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return Death.source_system == SOURCE_SYSTEM, Death.source_reference.like(f"DEMO-{seed}-%")


def _progress(job: HistoryImport) -> None:
    if job.status != "running":
        return  # the end: reported by run_demo
    print(
        f"  {job.records_done:,}/{job.records_total or 0:,} records: {job.created:,} created, "
        f"{job.updated:,} updated, {job.unchanged:,} unchanged, {job.refused:,} refused",
        flush=True,
    )


async def _import(
    database: Database, principal: Principal, path: Path, facts: tuple[str, int, int]
) -> HistoryImport | None:
    """The bundle through the history importer: an interrupted run of the same bundle is
    resumed from its checkpoint (as ``lfd history import`` does), else a new import."""
    sha256, size, lines = facts
    async with database.transaction() as session:
        job = await session.scalar(
            select(HistoryImport).where(
                HistoryImport.client_id == principal.client_id,
                HistoryImport.spool_path == str(path),
                HistoryImport.bundle_sha256 == sha256,
                HistoryImport.status.in_(RUNNING),
            )
        )
        if job is None:
            job = await create_import(
                session,
                principal,
                path=path,
                sha256=sha256,
                size=size,
                lines=lines,
                origin="cli",
                all_or_nothing=False,
            )
    return await run_import(database, job.id, _progress)


async def _problems(database: Database, job: HistoryImport) -> None:
    async with database.transaction() as session:
        problems = await session.scalars(
            select(HistoryImportProblem)
            .where(HistoryImportProblem.import_id == job.id)
            .order_by(HistoryImportProblem.line)
            .limit(SHOWN_PROBLEMS)
        )
        for problem in problems.all():
            for error in problem.errors:
                print(
                    f"  line {problem.line}: {error['pointer']}: {error['detail']}", file=sys.stderr
                )


async def _totals(database: Database, seed: int) -> str:
    """What the database holds of this seed's demo, in a sentence."""
    mine = _of_seed(seed)
    async with database.transaction() as session:
        deaths = await session.scalar(select(func.count()).select_from(Death).where(*mine))
        routes = (
            await session.execute(
                select(Referral.route, Referral.stage, func.count())
                .join(Death, Death.id == Referral.death_id)
                .where(*mine)
                .group_by(Referral.route, Referral.stage)
                .order_by(func.count().desc(), Referral.route, Referral.stage)
            )
        ).all()
        reviews = await session.scalar(
            select(func.count())
            .select_from(Review)
            .join(Death, Death.id == Review.death_id)
            .where(*mine, Review.status == "submitted")
        )
        overdue = await session.scalar(
            select(func.count())
            .select_from(Referral)
            .join(Death, Death.id == Referral.death_id)
            .where(
                *mine,
                Referral.status.in_(("ready", "in_progress", "on_hold")),
                Referral.due_at < now(),
            )
        )
    by_route = ", ".join(
        f"{route}{f' stage {stage}' if stage else ''} {count}" for route, stage, count in routes
    )
    return (
        f"In the database from {SOURCE_SYSTEM} (seed {seed}): {deaths or 0:,} deaths; referrals "
        f"{by_route or 'none'}; {reviews or 0:,} reviews submitted; {overdue or 0:,} open "
        "referrals past their due dates."
    )


async def run_demo(
    settings: Settings, *, deaths: int = 3000, seed: int = 2026, at: datetime | None = None
) -> int:
    """Load ``deaths`` synthetic deaths with their history into an already migrated database,
    and the action plan; the exit code. ``at`` stands for "now" (tests pin it); a seed loaded
    before keeps the moment it was loaded as of."""
    if not 1 <= deaths <= MAX_DEATHS:
        print(f"--deaths must be between 1 and {MAX_DEATHS}", file=sys.stderr)
        return 2
    moment = (at or now()).astimezone(UTC).replace(microsecond=0)
    if moment > now():
        print("lfd demo: the demo's today cannot be in the future", file=sys.stderr)
        return 2
    started = time.monotonic()
    database = Database(settings)
    path: Path | None = None
    try:
        principal = await _demo_principal(database)
        earlier = await _loaded_as_of(database, principal, seed)
        if earlier is not None and earlier != moment:
            print(
                f"Seed {seed} was loaded before, as of {earlier:%Y-%m-%d %H:%M:%S} UTC: rebuilt as "
                "of then, it changes nothing (another --seed, or an empty database, gives a demo "
                "as of today).",
                flush=True,
            )
            moment = earlier
        live = await _live_deaths(database, seed)
        if live:
            print(
                f"lfd demo: this database has {live:,} deaths of seed {seed} from an earlier "
                "version of the demo (posted as live screenings), which the history import "
                "cannot replace; use another --seed, or an empty database.",
                file=sys.stderr,
            )
            return 1
        window = demo_window(moment)
        first = financial_year(window[0])
        years = ", ".join(f"{y}/{(y + 1) % 100:02d}" for y in range(first, first + 3))
        print(
            f"Loading {deaths:,} synthetic deaths (seed {seed}) from {local_date(window[0])} to "
            f"{local_date(window[1])}: financial years {years}.",
            flush=True,
        )
        path = spool_dir(settings) / bundle_name(seed, moment)
        facts = write_bundle(path, synthetic_records(settings, seed, deaths, moment))
        job = await _import(database, principal, path, facts)
        if job is None:
            print(
                "lfd demo: another run is importing this demo; run again once it has finished.",
                file=sys.stderr,
            )
            return 1
        print(
            f"History import {job.id} {job.status}: {job.created:,} created, "
            f"{job.updated:,} updated, {job.unchanged:,} unchanged, {job.refused:,} refused."
        )
        if job.status != "completed" or job.refused:
            await _problems(database, job)
            return 1
        plan = await load_plan(database, principal, seed, first, local_date(moment))
        print(
            f'Action plan "{plan_title(seed)}" {"created" if plan.created else "already there"}'
            f": {plan.actions} actions, {plan.complete} complete, {plan.overdue} overdue on "
            f"{local_date(moment)}."
        )
        print(await _totals(database, seed))
    finally:
        await database.dispose()
        if path is not None:
            path.unlink(missing_ok=True)
    print(f"Done in {time.monotonic() - started:.1f}s.")
    return 0
