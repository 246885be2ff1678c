"""`lfd retention`: the audit trail's and the change feed's old months dropped, whole partitions
at a time, never row by row (issue 19; docs/operations.md, "Retention").

On PostgreSQL `audit_events` and `outbox_events` are partitioned by month (app.partitions). A
month older than its table's retention period (`LFD_RETENTION_AUDIT_MONTHS`, 96;
`LFD_RETENTION_EVENT_MONTHS`, 24) is detached and dropped: the files go, no DELETE runs, no
row trigger fires, nothing is left for VACUUM. It runs as the tables' owner
(`LFD_MIGRATION_DATABASE_URL`, as `lfd migrate` does): the service's own role owns nothing and
can neither detach nor drop a partition, nor move the audit chain's start.

The audit trail stays verifiable. Before it drops any month it seals every row waiting (a
month with a row still unsealed is not dropped), then moves the chain's start
(`audit_chain_heads.start_seq`/`start_hash`) to the newest place among the rows it drops, in
the same transaction as the drop: `lfd audit verify` then checks the chain from there, and
finds any gap after it as before.

`LFD_RETENTION_HOLD=true` (records under a legal hold, or asked for by a public inquiry)
stops every drop; `--dry-run` says what would go. SQLite has no partitions, and nothing is
ever deleted from it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.chain import CHAIN, seal_audit
from app.config import Settings
from app.db import Database, Work
from app.events.months import forget_closed_months
from app.models import AuditChainHead, AuditEvent, ClosedEventMonth
from app.partitions import Partition, add_months, month_start, partitions_of


@dataclass
class TableRetention:
    """One table's step: the months kept from ``keep_from`` on, the partitions older."""

    table: str
    months: int
    keep_from: date
    dropping: list[Partition] = field(default_factory=list)
    dropped: bool = False


@dataclass
class RetentionReport:
    hold: bool
    dry_run: bool
    tables: list[TableRetention]
    chain_start: tuple[int, str] | None = None
    refused: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "hold": self.hold,
            "dry_run": self.dry_run,
            "refused": self.refused,
            "chain_start_seq": self.chain_start[0] if self.chain_start else None,
            "tables": [
                {
                    "table": step.table,
                    "retention_months": step.months,
                    "keep_from": step.keep_from.isoformat(),
                    "dropped": step.dropped,
                    "partitions": [
                        {
                            "name": part.name,
                            "month": part.month.isoformat() if part.month else None,
                            "rows_estimated": part.rows,
                            "bytes": part.size_bytes,
                        }
                        for part in step.dropping
                    ],
                }
                for step in self.tables
            ],
        }


def periods(settings: Settings, moment: datetime) -> list[TableRetention]:
    """Each table's retention: whole months, counted back from the start of this one (UTC)."""
    this_month = moment.astimezone(UTC).date().replace(day=1)
    return [
        TableRetention(
            "audit_events",
            settings.retention_audit_months,
            add_months(this_month, -settings.retention_audit_months),
        ),
        TableRetention(
            "outbox_events",
            settings.retention_event_months,
            add_months(this_month, -settings.retention_event_months),
        ),
    ]


async def _detach_and_drop(session: AsyncSession, table: str, parts: list[Partition]) -> None:
    for part in parts:
        await session.execute(text(f'ALTER TABLE {table} DETACH PARTITION "{part.name}"'))
        await session.execute(text(f'DROP TABLE "{part.name}"'))


async def _drop_audit_months(session: AsyncSession, step: TableRetention) -> tuple[int, str] | None:
    """Move the chain's start past the rows dropped, then drop their months; the new start."""
    before = month_start(step.keep_from)
    unsealed = await session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.occurred_at < before, AuditEvent.chain_seq.is_(None))
    )
    if unsealed:
        raise RetentionRefused(
            f"audit_events: {unsealed} row(s) before {step.keep_from} are not sealed yet "
            "(run `lfd audit seal`, then again)"
        )
    newest = (
        await session.execute(
            select(AuditEvent.chain_seq, AuditEvent.chain_hash)
            .where(AuditEvent.occurred_at < before, AuditEvent.chain_seq.is_not(None))
            .order_by(AuditEvent.chain_seq.desc())
            .limit(1)
        )
    ).first()
    start: tuple[int, str] | None = None
    head = await session.scalar(
        select(AuditChainHead).where(AuditChainHead.name == CHAIN).with_for_update()
    )
    seq = int(newest[0] or 0) if newest is not None else 0
    if newest is not None and head is not None and seq > head.start_seq:
        link = str(newest[1])
        head.start_seq, head.start_hash = seq, link
        await session.flush()
        start = (seq, link)
    await _detach_and_drop(session, "audit_events", step.dropping)
    return start


class RetentionRefused(RuntimeError):
    """A month that must not go yet (its audit rows unsealed)."""


async def run_retention(
    database: Database, *, dry_run: bool = False, at: datetime | None = None
) -> RetentionReport:
    """Drop the months older than each table's retention (as the owner); what it did."""
    settings = database.settings
    moment = at or datetime.now(UTC)
    steps = periods(settings, moment)
    report = RetentionReport(settings.retention_hold, dry_run, steps)
    if database.dialect != "postgresql":
        report.refused.append(
            "SQLite has no monthly partitions: retention drops whole months on PostgreSQL only, "
            "and never deletes rows one by one"
        )
        return report
    if not dry_run and not settings.retention_hold:
        # Every row waiting is placed in the chain before its month can go.
        await seal_audit(database)
    async with database.transaction(Work.report) as session:
        for step in steps:
            step.dropping = [
                part
                for part in await partitions_of(session, step.table)
                if part.month is not None and part.month < step.keep_from
            ]
    if dry_run or settings.retention_hold:
        if settings.retention_hold:
            report.refused.append("LFD_RETENTION_HOLD is set: nothing is dropped")
        return report
    for step in steps:
        if not step.dropping:
            continue
        try:
            async with database.transaction(Work.report) as session:
                if step.table == "audit_events":
                    report.chain_start = await _drop_audit_months(session, step)
                else:
                    await _detach_and_drop(session, step.table, step.dropping)
                    months = [part.month for part in step.dropping if part.month]
                    # The bookkeeping of the months gone (app.events.months).
                    for closed in (
                        await session.scalars(
                            select(ClosedEventMonth).where(ClosedEventMonth.month.in_(months))
                        )
                    ).all():
                        await session.delete(closed)
            step.dropped = True
        except RetentionRefused as refusal:
            report.refused.append(str(refusal))
    forget_closed_months()
    return report


def _size(count: int) -> str:
    amount, unit = float(count), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, bigger
    return f"{amount:.1f} {unit}"


def print_report(report: RetentionReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
        return
    for step in report.tables:
        verb = "dropped" if step.dropped else "would drop" if step.dropping else "drops"
        names = ", ".join(part.name for part in step.dropping) or "nothing"
        rows = sum(part.rows for part in step.dropping)
        size = _size(sum(part.size_bytes for part in step.dropping))
        print(
            f"{step.table}: keeps {step.months} months (from {step.keep_from}); {verb} {names}"
            + (f" (about {rows} rows, {size})" if step.dropping else "")
        )
    if report.chain_start is not None:
        print(f"audit chain now starts after place {report.chain_start[0]}")
    for reason in report.refused:
        print(f"lfd retention: {reason}", file=sys.stderr)


async def retention_command(settings: Settings, dry_run: bool, as_json: bool) -> int:
    """`lfd retention`: as the owner (LFD_MIGRATION_DATABASE_URL when set)."""
    owner = settings.model_copy(update={"database_url": settings.owner_database_url})
    database = Database(owner)
    try:
        report = await run_retention(database, dry_run=dry_run)
    finally:
        await database.dispose()
    print_report(report, as_json)
    failed = [reason for reason in report.refused if "not sealed" in reason]
    return 1 if failed else 0
