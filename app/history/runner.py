"""Running an import job: the bundle read from its checkpoint in batches, each batch committed
together with the job's new checkpoint, counts, problems and its one `history.imported` event,
so that a run killed at any point resumes with nothing lost and nothing written twice.

With ``all_or_nothing`` the whole run is one transaction: a single refused record rolls it all
back (the problems are kept, in a transaction of their own), and a killed run starts again
from the first record. Either way one audit row records the import when it ends."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditEntry, write_audit
from app.auth.principal import Principal
from app.config import Settings
from app.db import Database, Work, doing
from app.events.service import Change, emit
from app.history.prepare import Lines, prepare, worker_pool
from app.history.validation import Checked
from app.history.writer import BatchOutcome, RecordedMeanwhile, write_batch
from app.kit.collector import between_batches, bulk_collection
from app.kit.time import now
from app.models import HistoryImport, HistoryImportProblem
from app.organisations.settings import settings_for
from app.reach import default_organisation_id, reach_of
from app.scoping import scoped

logger = logging.getLogger("app.history")

LEASE = timedelta(minutes=2)
RETRIES = 3
# An import that wrote at least this many records refreshes the planner's statistics.
ANALYZE_AFTER = 5_000
RUNNING = ("queued", "running")
Progress = Callable[[HistoryImport], None]


class ImportRefused(Exception):
    """An all-or-nothing import with a refused record: nothing was written."""


@dataclass
class Chunk:
    items: list[Checked]
    end_offset: int
    end_line: int


@dataclass
class RawChunk:
    lines: Lines
    end_offset: int
    end_line: int


def raw_chunks(handle: IO[bytes], line: int, size: int) -> Iterator[RawChunk]:
    """The bundle's lines from the handle's position, ``size`` records at a time; blank lines
    count as lines (so that problems name the line an editor shows) but are skipped."""
    lines: Lines = []
    offset = handle.tell()
    for raw in handle:
        line += 1
        offset += len(raw)
        if raw.strip():
            lines.append((line, raw))
        if len(lines) >= size:
            yield RawChunk(lines, offset, line)
            lines = []
    yield RawChunk(lines, offset, line)


async def chunks(
    handle: IO[bytes], line: int, size: int, job: HistoryImport, settings: Settings
) -> AsyncIterator[Chunk]:
    """The chunks checked and planned, in order, while the previous one is written: in a thread
    of this process, one chunk ahead (the checks and plans run while the database works on
    the chunk before), or, for a large bundle (LFD_HISTORY_PARALLEL_FROM records or more left),
    in LFD_HISTORY_WORKERS processes, as many chunks ahead."""
    assert job.client_id is not None
    client, moment = job.client_id, job.created_at
    json_text = database_dialect(settings) == "postgresql"
    left = (job.records_total or 0) - job.records_done
    ahead = 1
    pool: Executor
    if settings.history_workers == 0 or left < settings.history_parallel_from:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lfd-history")
    else:
        pool = worker_pool(settings.history_workers)
        ahead = settings.history_workers
    loop = asyncio.get_running_loop()
    try:
        pending: deque[tuple[RawChunk, asyncio.Future[list[Checked]]]] = deque()
        for raw in raw_chunks(handle, line, size):
            pending.append(
                (
                    raw,
                    loop.run_in_executor(
                        pool, prepare, raw.lines, moment, settings, client, json_text
                    ),
                )
            )
            if len(pending) > ahead:
                done, future = pending.popleft()
                yield Chunk(await future, done.end_offset, done.end_line)
        while pending:
            done, future = pending.popleft()
            yield Chunk(await future, done.end_offset, done.end_line)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def database_dialect(settings: Settings) -> str:
    return "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"


def open_bundle(path: str) -> IO[bytes]:
    """The spooled bundle (read line by line from the job's checkpoint: a local file read, as
    the spool was written)."""
    return Path(path).open("rb")


def principal_of(job: HistoryImport) -> Principal:
    assert job.client_id is not None
    return Principal(
        client_id=job.client_id,
        client_name=job.client_name or "",
        scopes=frozenset({"admin"}),
        pseudonymised=False,
        on_behalf_of=job.on_behalf_of,
        request_id=None,
        organisation_id=job.organisation_id,
    )


async def claim(database: Database, import_id: uuid.UUID, moment: datetime) -> HistoryImport | None:
    """Take the job unless another runner holds a live lease on it, or it is finished."""
    async with database.transaction() as session:
        job = await session.scalar(
            update(HistoryImport)
            .where(
                HistoryImport.id == import_id,
                HistoryImport.status.in_(RUNNING),
                or_(
                    HistoryImport.lease_expires_at.is_(None),
                    HistoryImport.lease_expires_at < moment,
                ),
            )
            .values(
                status="running",
                lease_expires_at=moment + LEASE,
                started_at=func.coalesce(HistoryImport.started_at, moment),
                updated_at=moment,
            )
            .returning(HistoryImport)
        )
    return job


async def pending_imports(database: Database) -> list[uuid.UUID]:
    """Jobs posted over HTTP that no runner holds: new ones, and ones whose runner died."""
    moment = now()
    async with database.autocommit() as session:
        rows = await session.scalars(
            select(HistoryImport.id)
            .where(
                HistoryImport.origin == "api",
                HistoryImport.status.in_(RUNNING),
                or_(
                    HistoryImport.lease_expires_at.is_(None),
                    HistoryImport.lease_expires_at < moment,
                ),
            )
            .order_by(HistoryImport.created_at)
        )
        return list(rows.all())


async def resume_pending_imports(database: Database) -> int:
    """The background runner's job: run every pending HTTP import to its end."""
    done = 0
    for import_id in await pending_imports(database):
        if await run_import(database, import_id) is not None:
            done += 1
    return done


async def _record_batch(
    session: AsyncSession,
    job: HistoryImport,
    principal: Principal,
    outcome: BatchOutcome,
    chunk: Chunk,
    moment: datetime,
) -> None:
    """The batch's problems, its summary event and the job's new checkpoint and counts."""
    if outcome.refused:
        await session.execute(insert(HistoryImportProblem), problem_rows(job.id, outcome.refused))
    number = len(job.batches) + 1
    first_line = chunk.items[0].line if chunk.items else chunk.end_line
    batch = {
        "number": number,
        "lines": [first_line, chunk.end_line],
        "created": outcome.created,
        "updated": outcome.updated,
        "unchanged": outcome.unchanged,
        "refused": len(outcome.refused),
        "case_numbers": [min(outcome.case_numbers), max(outcome.case_numbers)]
        if outcome.case_numbers
        else None,
        "committed_at": moment.isoformat(),
    }
    if outcome.created or outcome.updated:
        [event_id] = await emit(
            session,
            principal,
            [Change("history.imported", "history_import", job.id, None, sorted(outcome.kinds))],
            at=moment,
        )
        batch["event"] = str(event_id)
    job.batches = [*job.batches, batch]
    job.created += outcome.created
    job.updated += outcome.updated
    job.unchanged += outcome.unchanged
    job.refused += len(outcome.refused)
    job.records_done = chunk.end_line
    job.offset_done = chunk.end_offset
    job.lease_expires_at = moment + LEASE
    job.updated_at = moment
    session.add(job)


async def _finish(session: AsyncSession, job: HistoryImport, status: str, moment: datetime) -> None:
    job.status = status
    job.finished_at = job.updated_at = moment
    job.lease_expires_at = None
    session.add(job)
    await write_audit(
        session,
        principal_of(job),
        [AuditEntry(f"history.import.{status}", "history_import", job.id, None)],
    )


async def run_import(
    database: Database,
    import_id: uuid.UUID,
    progress: Progress | None = None,
    batch_size: int | None = None,
) -> HistoryImport | None:
    """Run (or resume) the job to its end; None when another runner holds it or it is done."""
    settings = database.settings
    size = batch_size or settings.history_batch_size
    job = await claim(database, import_id, now())
    if job is None:
        return None
    async with database.autocommit() as session:
        # The organisation's own deaths, without those shared with it: an import changes only
        # what its organisation records (app.organisations.ownership), so a key held by a
        # death shared with it is another organisation's key, refused like any other.
        scope = replace(
            await reach_of(session, job.organisation_id, members=False),
            shared_deaths=frozenset(),
            shares=frozenset(),
        )
        # The referral rules of the organisation the deaths are recorded for.
        settings = await settings_for(
            session, settings, job.organisation_id or await default_organisation_id(session)
        )
    # The job sees and writes what its client's organisation may (app.scoping), so a record
    # whose source reference another organisation holds is refused, never merged into it.
    # An import's statements are long (a batch's COPY and INSERT ... SELECT): the timeouts of
    # reports, exports and imports (app.db.Work.report), not a request's.
    with scoped(scope), bulk_collection(), doing(Work.report):
        return await _run_claimed(database, settings, job, size, progress)


async def _run_claimed(
    database: Database,
    settings: Settings,
    job: HistoryImport,
    size: int,
    progress: Progress | None,
) -> HistoryImport:
    try:
        if job.all_or_nothing:
            finished = await _run_atomic(database, settings, job, size, progress)
        else:
            finished = await _run_batches(database, settings, job, size, progress)
    except Exception as error:  # the job ends as failed, with the error's kind, not a value
        # Only the kind is logged: a database error's message may quote a record's values.
        logger.error(
            "history import failed",
            extra={"import_id": str(job.id), "error": type(error).__name__},
        )
        async with database.transaction() as session:
            finished = await session.get_one(HistoryImport, job.id)
            finished.error = type(error).__name__
            await _finish(session, finished, "failed", now())
    if finished.status == "completed" and finished.created + finished.updated >= ANALYZE_AFTER:
        await refresh_statistics(database)
    if finished.origin == "api":
        # The upload's spooled copy is not kept once its job has ended (the command line's is
        # the user's own file).
        remove_spool(finished.spool_path)
    return finished


async def refresh_statistics(database: Database) -> None:
    """PostgreSQL: fresh planner statistics for the tables a large import wrote (migration
    0029), so that the first reports after it do not plan for the tables as they were. A
    failure here costs only the statistics (autovacuum comes round later): logged, not raised."""
    if database.dialect != "postgresql":
        return
    try:
        async with database.transaction(Work.report) as session:
            await session.execute(text("SELECT lfd_analyze_history()"))
    except Exception as error:  # the import itself is done and committed
        logger.warning("history statistics not refreshed", extra={"error": type(error).__name__})


def remove_spool(path: str) -> None:
    Path(path).unlink(missing_ok=True)


async def _run_batches(
    database: Database, settings: Settings, job: HistoryImport, size: int, progress: Progress | None
) -> HistoryImport:
    principal = principal_of(job)
    moment = job.created_at  # "now" for validation: nothing may be after the import began
    with open_bundle(job.spool_path) as handle:
        handle.seek(job.offset_done)
        async for chunk in chunks(handle, job.records_done, size, job, settings):
            if not chunk.items and chunk.end_offset == job.offset_done:
                break
            for attempt in range(RETRIES):
                try:
                    async with database.transaction() as session:
                        at = now()
                        outcome = await write_batch(
                            session, principal, settings, job.id, chunk.items, moment
                        )
                        current = await session.get_one(HistoryImport, job.id, with_for_update=True)
                        await _record_batch(session, current, principal, outcome, chunk, at)
                    job = current
                    break
                except (IntegrityError, RecordedMeanwhile):
                    # A death another writer recorded meanwhile: the batch is classified again.
                    for item in chunk.items:
                        item.errors = [
                            e
                            for e in item.errors
                            if e.get("code") not in {"duplicate", "conflict", "removed"}
                        ]
                    if attempt == RETRIES - 1:
                        raise
            if progress is not None:
                progress(job)
            between_batches()
            await asyncio.sleep(0)
    async with database.transaction() as session:
        job = await session.get_one(HistoryImport, job.id, with_for_update=True)
        await _finish(session, job, "completed", now())
    if progress is not None:
        progress(job)
    return job


async def _run_atomic(
    database: Database, settings: Settings, job: HistoryImport, size: int, progress: Progress | None
) -> HistoryImport:
    principal = principal_of(job)
    moment = job.created_at
    refused: list[Checked] = []
    try:
        async with database.transaction() as session:
            current = await session.get_one(HistoryImport, job.id, with_for_update=True)
            current.records_done = current.offset_done = 0
            current.created = current.updated = current.unchanged = current.refused = 0
            current.batches = []
            with open_bundle(job.spool_path) as handle:
                async for chunk in chunks(handle, 0, size, job, settings):
                    outcome = await write_batch(
                        session, principal, settings, job.id, chunk.items, moment
                    )
                    # Every record is still checked, so that the refusal lists them all.
                    refused.extend(outcome.refused)
                    if refused:
                        continue
                    await _record_batch(session, current, principal, outcome, chunk, now())
                    await session.flush()
                    if progress is not None:
                        progress(current)
                    between_batches()
            if refused:
                raise ImportRefused
            await _finish(session, current, "completed", now())
        return current
    except ImportRefused:
        pass
    async with database.transaction() as session:
        job = await session.get_one(HistoryImport, job.id, with_for_update=True)
        if refused:
            await session.execute(insert(HistoryImportProblem), problem_rows(job.id, refused))
        job.refused = len(refused)
        job.created = job.updated = job.unchanged = 0
        await _finish(session, job, "refused", now())
    if progress is not None:
        progress(job)
    return job


def problem_rows(job_id: uuid.UUID, refused: list[Checked]) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.uuid4(),
            "import_id": job_id,
            "line": c.line,
            "source_reference": c.source_reference,
            "errors": c.errors,
        }
        for c in refused
    ]
