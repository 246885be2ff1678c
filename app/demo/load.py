"""Loading the drawn deaths through the same service code as ``POST /v1/screenings``."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.demo.draw import demo_window, financial_year, synthetic_screening
from app.demo.vocabulary import CHUNK_SIZE, CLIENT_NAME, MAX_DEATHS, SOURCE_SYSTEM
from app.errors import Conflict
from app.kit.time import local_date, now
from app.models import ApiClient, Death, Referral, RouteOverride
from app.referrals.service import rule_config
from app.screenings.intake import ScreeningCreate
from app.screenings.service import record_screening


@dataclass
class Summary:
    created: int = 0
    existing: int = 0
    referrals: Counter[str] = field(default_factory=Counter)
    overrides: int = 0


async def _demo_principal(database: Database) -> Principal:
    """The demo loader's own API client (made once, reused after): the audit and the events
    say that the demo wrote these rows."""
    async with database.transaction() as session:
        client = await session.scalar(
            select(ApiClient)
            .where(ApiClient.name == CLIENT_NAME, ApiClient.revoked_at.is_(None))
            .order_by(ApiClient.created_at)
            .limit(1)
        )
        if client is None:
            client = (await create_client(session, CLIENT_NAME, [Scope.screenings_write])).client
    return Principal.of_client(client)


async def _existing(session: AsyncSession, references: list[str]) -> set[str]:
    rows = await session.scalars(
        select(Death.source_reference).where(
            Death.source_system == SOURCE_SYSTEM, Death.source_reference.in_(references)
        )
    )
    return set(rows.all())


async def _load_chunk(
    database: Database,
    principal: Principal,
    bodies: list[dict[str, Any]],
    summary: Summary,
) -> None:
    """One transaction for a chunk: every death through the API's own service function."""
    async with database.transaction() as session:
        there = await _existing(session, [b["death"]["source_reference"] for b in bodies])
        for body in bodies:
            if body["death"]["source_reference"] in there:
                summary.existing += 1
                continue
            try:
                recorded = await record_screening(
                    session, principal, database.settings, ScreeningCreate.model_validate(body)
                )
            except Conflict:  # created meanwhile by another run with the same seed
                summary.existing += 1
                continue
            summary.created += 1
            summary.referrals.update(referral.route.value for referral in recorded.referrals)
            summary.overrides += sum(r.outcome == "overridden" for r in recorded.required_routes)


async def _totals(database: Database) -> tuple[int, list[tuple[str, int]], int]:
    async with database.transaction() as session:
        deaths = await session.scalar(
            select(func.count()).select_from(Death).where(Death.source_system == SOURCE_SYSTEM)
        )
        by_route = (
            await session.execute(
                select(Referral.route, func.count())
                .join(Death, Death.id == Referral.death_id)
                .where(Death.source_system == SOURCE_SYSTEM)
                .group_by(Referral.route)
                .order_by(func.count().desc(), Referral.route)
            )
        ).all()
        overrides = await session.scalar(
            select(func.count())
            .select_from(RouteOverride)
            .join(Death, Death.id == RouteOverride.death_id)
            .where(Death.source_system == SOURCE_SYSTEM)
        )
    return int(deaths or 0), [(str(r), int(n)) for r, n in by_route], int(overrides or 0)


async def run_demo(
    settings: Settings, *, deaths: int = 3000, seed: int = 2026, at: datetime | None = None
) -> int:
    """Load ``deaths`` synthetic deaths into an already migrated database; the exit code.

    ``at`` stands for "now" when choosing the two financial years (tests pin it)."""
    if not 1 <= deaths <= MAX_DEATHS:
        print(f"--deaths must be between 1 and {MAX_DEATHS}", file=sys.stderr)
        return 2
    moment = at or now()
    window = demo_window(moment)
    config = rule_config(settings)
    first_year = financial_year(window[0])
    print(
        f"Loading {deaths} synthetic deaths (seed {seed}) from {local_date(window[0])} to "
        f"{local_date(window[1])}: financial years {first_year}/{(first_year + 1) % 100:02d} "
        f"and {first_year + 1}/{(first_year + 2) % 100:02d}.",
        flush=True,
    )
    started = time.monotonic()
    database = Database(settings)
    summary = Summary()
    try:
        principal = await _demo_principal(database)
        for chunk_start in range(0, deaths, CHUNK_SIZE):
            indices = range(chunk_start, min(chunk_start + CHUNK_SIZE, deaths))
            bodies = [synthetic_screening(seed, index, window, config) for index in indices]
            await _load_chunk(database, principal, bodies, summary)
            print(
                f"  {indices[-1] + 1}/{deaths}: {summary.created} created, "
                f"{summary.existing} already there",
                flush=True,
            )
        total, by_route, overrides = await _totals(database)
    finally:
        await database.dispose()
    elapsed = time.monotonic() - started
    print(f"Created {summary.created} deaths ({summary.existing} already there) in {elapsed:.1f}s.")
    if summary.created:
        routes = ", ".join(f"{r} {n}" for r, n in sorted(summary.referrals.items()))
        print(
            f"Referrals raised: {routes or 'none'}; required routes overridden: "
            f"{summary.overrides}."
        )
    print(
        f"In the database from {SOURCE_SYSTEM}: {total} deaths, referrals by route: "
        + (", ".join(f"{r} {n}" for r, n in by_route) or "none")
        + f"; overrides: {overrides}."
    )
    return 0
