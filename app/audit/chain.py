"""Tamper evidence for the audit log: sealing rows into one hash chain, and verifying it.

Writers never touch the chain: each audit row gets its keyed content hash (``row_hash``) as it
is inserted (app.audit.service), in the request's own transaction, with no lock and no extra
statement. The **sealer**, a job of the background loop (app.worker) and `lfd audit seal`,
then takes the rows not yet sealed, oldest first, and gives each the next place in the chain
(``chain_seq``) and ``chain_hash`` = HMAC(previous chain hash, place, row hash), under a lock
on the chain's head row that only sealers take. So the hot path pays one HMAC per row, and the
chain costs one UPDATE per row in the background.

`lfd audit verify` (verify_chain) walks the chain in order and reports, by row id, place and
day:

- a row whose content no longer matches its hash (edited in SQL, or inserted by someone
  without the audit key), sealed or not;
- a gap in the places (sealed rows deleted), or a chain that ends before the head says it
  does (the newest sealed rows deleted);
- a link that does not follow from the one before (a chain column altered, a row forged into
  the chain or rows renumbered);
- a row placed beyond the head.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.integrity import (
    HASHED_COLUMNS,
    AuditKeys,
    audit_keys,
    chain_hash,
    row_hash,
)
from app.db import Database
from app.models import AuditChainHead, AuditEvent
from app.models.base import utcnow

logger = logging.getLogger("app.audit")

CHAIN = "main"
SEAL_BATCH = 2000
_COLUMNS = [
    getattr(AuditEvent, name) for name in (*HASHED_COLUMNS, "row_hash", "chain_seq", "chain_hash")
]


def _place(partitioned: bool) -> Any:
    """The sealer's UPDATE of one row, run for each row of a batch. On PostgreSQL it names the
    row's time too, which picks the month's partition (migration 0025) before the key."""
    found = [AuditEvent.id == bindparam("row_id")]
    if partitioned:
        found.append(AuditEvent.occurred_at == bindparam("at"))
    return (
        update(AuditEvent)
        .where(*found)
        .values(chain_seq=bindparam("seq"), chain_hash=bindparam("link"))
        # One statement run for each parameter set (not the ORM's UPDATE by primary key).
        .execution_options(dml_strategy="core_only", synchronize_session=False)
    )


async def seal_batch(session: AsyncSession, keys: AuditKeys, limit: int = SEAL_BATCH) -> int:
    """Seal up to ``limit`` unsealed rows, oldest first, in the caller's transaction; how many.
    The head row's lock makes concurrent sealers take turns (writers never take it)."""
    head = await session.scalar(
        select(AuditChainHead).where(AuditChainHead.name == CHAIN).with_for_update()
    )
    if head is None:
        raise RuntimeError("no audit chain head: run `lfd migrate` (migration 0012 makes it)")
    rows = (
        await session.execute(
            select(*_COLUMNS)
            .where(AuditEvent.chain_seq.is_(None))
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
            .limit(limit)
        )
    ).all()
    if not rows:
        return 0
    seq, previous = head.last_seq, head.last_hash
    placed = await session.scalar(select(func.max(AuditEvent.chain_seq)))
    if placed is not None and placed > seq:
        # Only a sealer places rows, and never beyond the head: these were forged. Sealing goes
        # on after them (from the head's hash), and `lfd audit verify` names them.
        logger.error("audit rows placed beyond the chain's head", extra={"chain_seq": placed})
        seq = placed
    updates: list[dict[str, Any]] = []
    for row in rows:
        values = row._asdict()
        if row_hash(keys, values) != values["row_hash"]:
            # Sealed all the same (its place is then fixed); `lfd audit verify` reports it.
            logger.error("audit row does not match its hash", extra={"audit_row": str(row.id)})
        seq += 1
        previous = chain_hash(keys, previous, seq, values["row_hash"])
        updates.append({"row_id": row.id, "at": row.occurred_at, "seq": seq, "link": previous})
    await session.execute(_place(session.get_bind().dialect.name == "postgresql"), updates)
    head.last_seq, head.last_hash, head.sealed_at = seq, previous, utcnow()
    await session.flush()
    # The head in the service's log as well: a copy outside the database to compare with.
    logger.info(
        "audit chain sealed",
        extra={"count": len(rows), "chain_seq": seq, "chain_hash": previous},
    )
    return len(rows)


async def seal_audit(database: Database) -> int:
    """Seal every row waiting, a batch per transaction (the background loop's job)."""
    total = 0
    while True:
        async with database.transaction() as session:
            sealed = await seal_batch(session, await audit_keys(session))
        total += sealed
        if sealed < SEAL_BATCH:
            return total


@dataclass(frozen=True)
class Finding:
    """One thing verify found: what, and where (row id, place in the chain, day)."""

    problem: str
    row_id: str | None
    seq: int | None
    day: str | None
    detail: str

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                f"row {self.row_id}" if self.row_id else "",
                f"seq {self.seq}" if self.seq is not None else "",
                f"day {self.day}" if self.day else "",
            )
            if part
        )
        return f"{self.problem} ({where}): {self.detail}"


@dataclass
class Verification:
    sealed: int = 0
    unsealed: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_seq: int = 0
    # Sealed rows at or before the chain's start, kept when retention dropped older months.
    before_start: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings


async def _rows(session: AsyncSession, sealed: bool) -> AsyncIterator[dict[str, Any]]:
    query = select(*_COLUMNS)
    if sealed:
        query = query.where(AuditEvent.chain_seq.is_not(None)).order_by(AuditEvent.chain_seq)
    else:
        query = query.where(AuditEvent.chain_seq.is_(None)).order_by(
            AuditEvent.occurred_at, AuditEvent.id
        )
    result = await session.stream(query.execution_options(yield_per=5000))
    async for row in result:
        yield row._asdict()


def _day(row: dict[str, Any]) -> str | None:
    moment = row.get("occurred_at")
    return moment.date().isoformat() if moment is not None else None


async def verify_chain(
    session: AsyncSession, keys: AuditKeys, progress: Callable[[int], None] | None = None
) -> Verification:
    """Check every row's hash and every link of the chain against the head. Run it in one
    snapshot (Database.snapshot) so that a sealer running meanwhile is not seen half-way."""
    head = await session.scalar(select(AuditChainHead).where(AuditChainHead.name == CHAIN))
    report = Verification()
    if head is None:
        report.findings.append(
            Finding("no chain head", None, None, None, "the audit_chain_heads row is missing")
        )
        return report
    report.head_seq = head.last_seq
    expected, previous = head.start_seq, head.start_hash
    found = report.findings.append
    async for row in _rows(session, sealed=True):
        seq, row_id, day = row["chain_seq"], str(row["id"]), _day(row)
        report.sealed += 1
        if progress is not None and report.sealed % 100_000 == 0:
            progress(report.sealed)
        if report.first_seq is None:
            report.first_seq = seq
        report.last_seq = seq
        genuine = row_hash(keys, row) == row["row_hash"]
        if not genuine:
            found(
                Finding(
                    "row altered",
                    row_id,
                    seq,
                    day,
                    "its content does not match its hash: edited, or not written by the service",
                )
            )
        if seq <= head.start_seq:
            # Kept from before the chain's start: retention (app.retention) moved the start past
            # the newest row of the months it dropped, and a row of a month it kept may have been
            # sealed before that one. Its own hash is checked (above); its link has no anchor.
            report.before_start += 1
            continue
        if seq == expected:
            found(Finding("place taken twice", row_id, seq, day, "another row has this place"))
            continue
        if seq > head.last_seq:
            found(Finding("beyond the head", row_id, seq, day, f"the head ends at {head.last_seq}"))
            continue
        link = chain_hash(keys, previous, seq, row["row_hash"])
        if seq != expected + 1:
            found(
                Finding(
                    "rows missing",
                    row_id,
                    seq,
                    day,
                    f"places {expected + 1}..{seq - 1} are gone before this row (deleted)",
                )
            )
            # The link before the gap is lost; a genuine row's own link carries on.
            link = (row["chain_hash"] or "") if genuine else previous
        elif link != row["chain_hash"]:
            found(
                Finding(
                    "broken link",
                    row_id,
                    seq,
                    day,
                    "its chain hash does not follow from the row before: chain columns "
                    "altered, or a row forged into the chain",
                )
            )
            # Carry on from the link a genuine row has (as the sealer made it), so that one
            # bad row is reported once; a forged row is passed over.
            link = link if genuine else previous
        expected, previous = seq, link
    if expected < head.last_seq:
        found(
            Finding(
                "rows missing",
                None,
                head.last_seq,
                None,
                f"the chain ends at {expected} but the head at {head.last_seq}: the newest "
                "sealed rows were deleted",
            )
        )
    elif expected == head.last_seq and previous != head.last_hash:
        found(
            Finding(
                "head mismatch", None, head.last_seq, None, "the last row's hash is not the head's"
            )
        )
    async for row in _rows(session, sealed=False):
        report.unsealed += 1
        if row_hash(keys, row) != row["row_hash"]:
            found(
                Finding(
                    "row altered",
                    str(row["id"]),
                    None,
                    _day(row),
                    "not yet sealed; its content does not match its hash: edited, or not "
                    "written by the service",
                )
            )
    return report


async def verify_audit(database: Database) -> Verification:
    async with database.snapshot() as session:
        return await verify_chain(session, await audit_keys(session))
