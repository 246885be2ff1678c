"""Monthly partitions of the audit and event tables on PostgreSQL (issue 19; migration 0025).

`audit_events` and `outbox_events` are partitioned by month of `occurred_at` (UTC months,
partitions named `<table>_pYYYY_MM`; the events also have `outbox_events_default` for rows
dated outside every month). The service's role owns no table and cannot make a partition, so
the months are made by `lfd_ensure_partitions`, a SECURITY DEFINER function of the tables'
owner that the service may call:

- **ahead**: every pass of the background runner (app.jobs) makes sure this month and the
  next ``LFD_PARTITIONS_AHEAD_MONTHS`` (3) exist, and `lfd migrate` made them too, so a row
  always has its month even if the runner stops for a while;
- **closed months of events**: the same pass closes each month of events that ended more than
  ``LFD_EVENT_MONTH_CLOSE_HOURS`` (24) ago (`lfd_close_event_months`: its highest position
  recorded, later rows refused), which lets the change feed skip it (app.events.months).

Old months go only by `lfd retention` (app.retention), which detaches and drops whole
partitions. SQLite has one table each and none of this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.db import Database

PARTITIONED = ("audit_events", "outbox_events")
_NAME = re.compile(r"^(audit_events|outbox_events)_(p(\d{4})_(\d{2})|default)$")

_PARTITIONS_SQL = text(
    "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)"
    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = to_regclass(:table) ORDER BY c.relname"
)


def is_partition(name: str) -> bool:
    """Whether a table name is one of the partitions (not a model's table: the schema check
    of tests/test_migrations.py and Alembic's autogenerate pass them over)."""
    return _NAME.match(name) is not None


def schema_compare_options(dialect: str) -> dict[str, Any]:
    """Options for Alembic's comparison of the models with a database (autogenerate, and the
    check of tests/test_migrations.py): the monthly partitions are not models' tables, and an
    index the models make for one dialect only (``Index(...).ddl_if(dialect=...)``: the GIN
    index of the audit rows' patients) is not expected on another."""

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return not (type_ == "table" and name is not None and is_partition(name))

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        only = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return not (type_ == "index" and not reflected and only and only != dialect)

    return {"include_name": include_name, "include_object": include_object}


def month_start(month: date) -> datetime:
    """The first moment of a month, in UTC (a partition's lower bound)."""
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Partition:
    """One partition: its month (None for the events' default partition), the planner's count
    of its rows (reltuples: an estimate, kept by VACUUM and ANALYZE) and its size on disk."""

    table: str
    name: str
    month: date | None
    rows: int
    size_bytes: int

    @property
    def low(self) -> datetime | None:
        return month_start(self.month) if self.month else None

    @property
    def high(self) -> datetime | None:
        return month_start(next_month(self.month)) if self.month else None


async def partitions_of(session: AsyncSession, table: str) -> list[Partition]:
    """The partitions attached to ``table``, oldest month first (the default partition last)."""
    found: list[Partition] = []
    for name, rows, size in (await session.execute(_PARTITIONS_SQL, {"table": table})).all():
        matched = _NAME.match(name)
        if matched is None:
            continue
        month = date(int(matched[3]), int(matched[4]), 1) if matched[3] else None
        found.append(Partition(table, name, month, max(int(rows), 0), int(size)))
    return sorted(found, key=lambda part: (part.month is None, part.month or date.min))


async def ensure_partitions_in(session: AsyncSession, moment: datetime, ahead: int) -> int:
    """Make this month's and the next ``ahead`` months' partitions of both tables where they
    are missing; how many were made."""
    this_month = moment.astimezone(UTC).date().replace(day=1)
    made = 0
    for table in PARTITIONED:
        made += int(
            await session.scalar(
                text("SELECT lfd_ensure_partitions(:table, :month, :ahead)"),
                {"table": table, "month": this_month, "ahead": ahead},
            )
            or 0
        )
    return made


async def maintain_partitions(database: Database, *, at: datetime | None = None) -> int:
    """The background runner's job (app.jobs): months made ahead, then months of events
    closed; how many of both. Nothing on SQLite."""
    if database.dialect != "postgresql":
        return 0
    settings = database.settings
    moment = at or datetime.now(UTC)
    async with database.transaction() as session:
        made = await ensure_partitions_in(session, moment, settings.partitions_ahead_months)
    before = moment - timedelta(hours=settings.event_month_close_hours)
    async with database.transaction() as session:
        closed = int(
            await session.scalar(text("SELECT lfd_close_event_months(:before)"), {"before": before})
            or 0
        )
    return made + closed


async def missing_months(session: AsyncSession, moment: datetime) -> list[str]:
    """The partitions a row written at ``moment`` needs and does not have (for /readyz: the
    audit table has no default partition, so a missing month stops every audited request)."""
    this_month = moment.astimezone(UTC).date().replace(day=1)
    wanted = [f"{table}_p{this_month:%Y_%m}" for table in PARTITIONED]
    present = set(
        (
            await session.scalars(
                text("SELECT relname FROM pg_class WHERE relname = ANY(:names)"),
                {"names": wanted},
            )
        ).all()
    )
    return [name for name in wanted if name not in present]


async def ensure_partitions_at(database_url: str, ahead: int) -> int:
    """Make this month's and the next ``ahead`` months' partitions through ``database_url``
    (`lfd migrate` and `lfd serve`, after migrating: a deployment whose runner has been off
    for months still gets its months on restart). Nothing on SQLite."""
    if not database_url.startswith("postgresql"):
        return 0
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            made = 0
            this_month = datetime.now(UTC).date().replace(day=1)
            for table in PARTITIONED:
                made += int(
                    await connection.scalar(
                        text("SELECT lfd_ensure_partitions(:table, :month, :ahead)"),
                        {"table": table, "month": this_month, "ahead": ahead},
                    )
                    or 0
                )
            return made
    finally:
        await engine.dispose()
