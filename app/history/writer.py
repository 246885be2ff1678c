"""One batch of checked records into the database, in the caller's transaction: new deaths in
bulk (one multi-row INSERT per table), corrected ones row by row with versions kept as live
amendments keep them, unchanged ones untouched. Refusals found here (a death live intake
recorded, a theme the service does not know, a record twice in one bundle, a correction that
drops a referral) are the record's, with a pointer; the rest of the batch goes in."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import JSON, Table, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.config import Settings
from app.errors import Conflict, field_error
from app.findings.schemas import ThemeCreate
from app.findings.themes import create_theme
from app.history.organisations import resolve_batch
from app.history.plan import Planned, plan_record
from app.history.update import apply_correction, removed_references
from app.history.validation import Checked, parse_line
from app.kit.sql import insert_for, insert_rows, table_of
from app.models import (
    Counter,
    Death,
    Finding,
    HistoryRecord,
    Referral,
    Review,
    ReviewPhaseRating,
    ReviewProblem,
    RouteOverride,
    Screening,
    Theme,
)
from app.organisations.service import recording_organisation
from app.referrals.service import rule_config

# The sender's key of a death: unique across the deployment.
KEY = ("source_system", "source_reference")


@dataclass
class BatchOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[Checked] = field(default_factory=list)
    case_numbers: list[int] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Existing:
    death_id: uuid.UUID
    import_id: uuid.UUID | None  # None: live intake recorded it
    sha256: str | None
    links: dict[str, dict[str, str]] | None


async def _existing(
    session: AsyncSession, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], Existing]:
    if not keys:
        return {}
    rows = await session.execute(
        select(
            Death.source_system,
            Death.source_reference,
            Death.id,
            HistoryRecord.import_id,
            HistoryRecord.content_sha256,
            HistoryRecord.links,
        )
        .outerjoin(HistoryRecord, HistoryRecord.death_id == Death.id)
        # Two = ANY lists on the unique index's columns, not a list of (system, reference)
        # pairs: PostgreSQL plans a pair list as one index probe per pair, OR-ed (1.6 s for a
        # batch of 2,000 against 11 ms). A key of another pairing is dropped below.
        .where(
            Death.source_system.in_({system for system, _ in keys}),
            Death.source_reference.in_({reference for _, reference in keys}),
        )
    )
    wanted = set(keys)
    return {
        (r[0], r[1]): Existing(r[2], r[3], r[4], r[5]) for r in rows.all() if (r[0], r[1]) in wanted
    }


async def _themes(
    session: AsyncSession, principal: Principal, items: list[Checked]
) -> dict[str, uuid.UUID]:
    """Theme ids by code; a code the service lacks is created from the name a record gives
    (theme.created, as for POST /v1/themes). A record naming an unknown code without a name, or
    a name another theme has, is refused."""
    wanted = {f["theme_code"] for c in items if c.planned for f in c.planned.findings}
    if not wanted:
        return {}
    found = dict(
        (await session.execute(select(Theme.code, Theme.id).where(Theme.code.in_(wanted)))).all()
    )
    for checked in items:
        assert checked.planned is not None
        for index, finding in enumerate(checked.planned.findings):
            code, name = finding["theme_code"], finding["theme_name"]
            if code in found or checked.errors:
                continue
            pointer = f"/findings/{index}/theme/name"
            if name is None:
                checked.errors.append(field_error(pointer, "no theme has this code: give its name"))
                continue
            try:
                async with session.begin_nested():
                    made = await create_theme(session, principal, ThemeCreate(code=code, name=name))
            except Conflict:
                checked.errors.append(
                    field_error(pointer, "another theme has this name", "conflict")
                )
                continue
            found[code] = made.id
    return found


async def _case_numbers(session: AsyncSession, count: int) -> list[int]:
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.scalars(
            select(func.nextval(text("'case_number_seq'"))).select_from(
                func.generate_series(1, count)
            )
        )
        return [int(value) for value in rows.all()]
    counters = table_of(Counter)
    last = await session.scalar(
        update(counters)
        .where(counters.c.name == "case_number")
        .values(value=counters.c.value + count)
        .returning(counters.c.value)
    )
    if last is None:
        raise RuntimeError("counter case_number is missing; run the migrations")
    return list(range(int(last) - count + 1, int(last) + 1))


def _history_row(
    planned: Planned, checked: Checked, import_id: uuid.UUID, moment: datetime
) -> dict[str, Any]:
    return {
        "death_id": planned.death_id,
        "import_id": import_id,
        "died_on": planned.death["died_on"],
        "content_sha256": checked.sha256,
        "links": planned.links,
        "required_routes": planned.required,
        "missed_routes": planned.missed,
        "missed": bool(planned.missed),
        "version": 1,
        "imported_at": moment,
        "updated_at": moment,
    }


def _with_theme(rows: list[dict[str, Any]], themes: dict[str, uuid.UUID]) -> list[dict[str, Any]]:
    return [
        {
            **{k: v for k, v in row.items() if k not in {"theme_code", "theme_name"}},
            "theme_id": themes[row["theme_code"]],
        }
        for row in rows
    ]


async def write_batch(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    import_id: uuid.UUID,
    items: list[Checked],
    moment: datetime,
) -> BatchOutcome:
    """Write the valid records of ``items`` (refused ones are counted, with their problems)."""
    outcome = BatchOutcome()
    config = rule_config(settings)
    valid = [c for c in items if c.planned is not None and not c.errors]
    existing = await _existing(session, list({c.key for c in valid}))
    seen: dict[tuple[str, str], int] = {}
    new: list[Checked] = []
    corrections: list[tuple[Checked, Existing]] = []
    for checked in valid:
        key = checked.key
        found = existing.get(key)
        if key in seen or (found is not None and found.import_id == import_id):
            checked.errors.append(
                field_error(
                    "/death/source_reference", "this death is in the bundle twice", "duplicate"
                )
            )
        elif found is None:
            new.append(checked)
        elif found.import_id is None:
            checked.errors.append(
                field_error(
                    "/death/source_reference",
                    "live intake recorded this death; correct it through the API",
                    "conflict",
                )
            )
        elif found.sha256 == checked.sha256:
            outcome.unchanged += 1
        else:
            corrections.append((checked, found))
        seen[key] = checked.line
    themes = await _themes(session, principal, [c for c in new] + [c for c, _ in corrections])
    await resolve_batch(session, [(c, c.planned) for c in new if c.planned is not None])
    plans = [(c, c.planned) for c in new if c.planned is not None and not c.errors]
    if plans:
        numbers = await _case_numbers(session, len(plans))
        for (_, planned), number in zip(plans, numbers, strict=True):
            planned.death["case_number"] = number
        plans = await _insert_new(session, principal, plans, themes, import_id, moment, outcome)
        outcome.case_numbers.extend(planned.death["case_number"] for _, planned in plans)
        outcome.created += len(plans)
    for checked, found in corrections:
        if checked.errors:
            continue
        assert found.links is not None
        # Planned again, with the ids the earlier import gave the record's rows.
        record = parse_line(checked.raw, checked.line, moment).record
        assert record is not None
        planned = plan_record(
            record, settings, config, principal.client_id, found.death_id, found.links
        )
        checked.errors.extend(removed_references(found.links, planned.links))
        await resolve_batch(session, [(checked, planned)])
        if checked.errors:
            continue
        planned.findings = _with_theme(planned.findings, themes)
        kinds = await apply_correction(session, principal, planned)
        outcome.kinds |= kinds
        await session.execute(
            update(HistoryRecord)
            .where(HistoryRecord.death_id == found.death_id)
            .values(
                import_id=import_id,
                content_sha256=checked.sha256,
                links=planned.links,
                required_routes=planned.required,
                missed_routes=planned.missed,
                missed=bool(planned.missed),
                version=HistoryRecord.version + 1,
                updated_at=moment,
            )
        )
        outcome.updated += 1
    outcome.refused = [c for c in items if c.errors]
    return outcome


async def _insert_new(
    session: AsyncSession,
    principal: Principal,
    plans: list[tuple[Checked, Planned]],
    themes: dict[str, uuid.UUID],
    import_id: uuid.UUID,
    moment: datetime,
    outcome: BatchOutcome,
) -> list[tuple[Checked, Planned]]:
    """Every table's rows of the new records, one multi-row INSERT each, parents first. The
    deaths belong to the organisation the import runs for (the scope's, app.history.runner).
    The records written: one whose key a death out of the import's scope holds (another
    organisation's, which no query here can see) is refused, and nothing of it written."""
    organisation_id = await recording_organisation(session, principal, system=True)
    for _, p in plans:
        p.belong_to(organisation_id)
    copy = session.get_bind().dialect.name == "postgresql"
    inserted = await _insert_deaths(session, [p.death for _, p in plans], copy)
    if len(inserted) < len(plans):
        held = [(c, p) for c, p in plans if str(p.death["id"]) not in inserted]
        if await _existing(session, [c.key for c, _ in held]):
            raise RecordedMeanwhile  # by a writer of this scope: the batch is classified again
        for checked, _ in held:
            checked.errors.append(
                field_error(
                    "/death/source_reference",
                    "another organisation's death has this source_system + source_reference: "
                    "keys are unique across the deployment; import it under a key of your own",
                    "source_key_taken",
                )
            )
        plans = [(c, p) for c, p in plans if str(p.death["id"]) in inserted]
    if plans:
        outcome.kinds.add("deaths")
    planned = [p for _, p in plans]
    tables: list[tuple[str, type[Any], list[dict[str, Any]]]] = [
        ("screenings", Screening, [p.screening for p in planned]),
        ("route_overrides", RouteOverride, [r for p in planned for r in p.overrides]),
        ("referrals", Referral, [r for p in planned for r in p.referrals]),
        ("reviews", Review, [r for p in planned for r in p.reviews]),
        ("phases", ReviewPhaseRating, [r for p in planned for r in p.phases]),
        ("problems", ReviewProblem, [r for p in planned for r in p.problems]),
        ("findings", Finding, _with_theme([r for p in planned for r in p.findings], themes)),
        (
            "history",
            HistoryRecord,
            [_history_row(p, c, import_id, moment) for c, p in plans],
        ),
    ]
    for kind, model, rows in tables:
        if rows and kind in {"screenings", "referrals", "reviews", "findings"}:
            outcome.kinds.add(kind)
        if copy:
            await copy_rows(session, table_of(model), rows)
            continue
        for start in range(0, len(rows), 5000):
            await insert_rows(session, model, rows[start : start + 5000])
    return plans


class RecordedMeanwhile(Exception):
    """A new record's key was taken by a writer of the import's own scope while the batch was
    written (the runner classifies the batch again, as after an IntegrityError)."""


async def _insert_deaths(session: AsyncSession, rows: list[dict[str, Any]], copy: bool) -> set[str]:
    """The deaths, ON CONFLICT (source_system, source_reference) DO NOTHING: the ids (as text)
    that went in. A key held by a death the scope hides is found so, never by a query."""
    if copy:
        return await copy_rows(session, table_of(Death), rows, skip_conflicts=KEY)
    statement = insert_for(session, table_of(Death)).on_conflict_do_nothing(
        index_elements=list(KEY)
    )
    inserted: set[str] = set()
    for start in range(0, len(rows), 5000):
        result = await session.execute(
            statement.returning(table_of(Death).c.id), rows[start : start + 5000]
        )
        inserted.update(str(value) for value in result.scalars().all())
    return inserted


@cache
def _copy_shape(table: Table) -> tuple[list[str], frozenset[str], Callable[[Any], tuple[Any, ...]]]:
    columns = [column.key for column in table.columns]
    json = frozenset(c.key for c in table.columns if isinstance(c.type, JSON))
    return columns, json, itemgetter(*columns)


async def copy_rows(
    session: AsyncSession,
    table: Table,
    rows: list[dict[str, Any]],
    skip_conflicts: tuple[str, ...] | None = None,
) -> set[str]:
    """PostgreSQL's bulk path: the rows by binary COPY through the session's own asyncpg
    connection (in its transaction). Every column is given; JSON as the text the connection's
    codec takes (SQLAlchemy's asyncpg dialect sends JSON pre-serialised), serialised here
    unless the row's planner did it already (app.history.prepare, in a worker process).
    With ``skip_conflicts`` (a unique key's columns) a row that would break the key is left
    out, and the ids (as text) of the rows that went in are returned (otherwise none)."""
    if not rows:
        return set()
    columns, json, values = _copy_shape(table)
    for row in rows:
        # A nullable column the history rows do not name (one added later, such as the
        # scrutiny in full's) is NULL, as a Core INSERT would leave it.
        for name in columns:
            row.setdefault(name, None)
        for name in json:
            value = row[name]
            if value is not None and not isinstance(value, str):
                row[name] = orjson.dumps(value).decode()
    records = list(map(values, rows))
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    if skip_conflicts is None and not await _under_row_security(session):
        await raw.copy_records_to_table(table.name, records=records, columns=columns)
        return set()
    # PostgreSQL refuses COPY FROM into a table whose row-level security applies to the role
    # (the service's own role does: app.scoping). The rows go by COPY into a temporary table
    # of the same shape, then into the table by one INSERT ... SELECT, which the policies
    # check row by row (WITH CHECK) like any other insert.
    stage = f"lfd_stage_{table.name}"
    names = ", ".join(f'"{name}"' for name in columns)
    await raw.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" (LIKE "{table.name}") ON COMMIT DELETE ROWS'
    )
    await raw.copy_records_to_table(stage, records=records, columns=columns)
    if skip_conflicts is not None:
        key = ", ".join(f'"{name}"' for name in skip_conflicts)
        went_in = await raw.fetch(
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{stage}"'  # noqa: S608
            f" ON CONFLICT ({key}) DO NOTHING RETURNING id"
        )
        await raw.execute(f'TRUNCATE "{stage}"')
        return {str(row["id"]) for row in went_in}
    await raw.execute(
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{stage}";'  # noqa: S608
        f' TRUNCATE "{stage}"'
    )
    return set()


_ROW_SECURITY: dict[str, bool] = {}


async def _under_row_security(session: AsyncSession) -> bool:
    """Whether row-level security applies to the role the session connects as (not a
    superuser, no BYPASSRLS): asked once per database URL."""
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    known = _ROW_SECURITY.get(key)
    if known is None:
        bypass = await session.scalar(
            text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        )
        known = _ROW_SECURITY[key] = not bypass
    return known
