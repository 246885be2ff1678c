"""``lfd history import FILE`` and ``lfd history export``: the bundle in, with a progress bar
and an ETA on stderr, resumable after an interruption (run the same command again); and
everything out, in the same format."""

from __future__ import annotations

import getpass
import hashlib
import sys
import time
from datetime import date
from pathlib import Path
from typing import IO

import orjson
from sqlalchemy import select

from app.audit.service import record_access
from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.history.csvset import csv_to_bundle
from app.history.export import export_records
from app.history.plan_export import export_plans
from app.history.runner import RUNNING, run_import
from app.history.service import create_import, spool_dir
from app.kit.time import now
from app.models import ApiClient, HistoryImport, HistoryImportProblem
from app.organisations.lookup import resolve_organisation

CLIENT_NAME = "lfd history (command line)"
OPTIONS = orjson.OPT_UTC_Z
SHOWN_PROBLEMS = 20


def _digest(path: Path) -> tuple[str, int, int]:
    digest = hashlib.sha256()
    size = lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return digest.hexdigest(), size, lines + (0 if last == b"\n" else 1)


def _inspect(file: Path, settings: Settings) -> tuple[str, str, int, int] | None:
    """The bundle's absolute path, sha256, size and lines (None: no such file). A folder is a
    CSV set, turned into its bundle first (app.history.csvset)."""
    if file.is_dir():
        try:
            file = csv_to_bundle(file, spool_dir(settings))
        except FileNotFoundError:
            return None
    if not file.is_file():
        return None
    return (str(file.resolve()), *_digest(file))


async def _principal(database: Database) -> Principal:
    """The command line's own API client (made once): the audit row names it, and the person
    who ran the command (the operating-system user) as the one it acted for."""
    async with database.transaction() as session:
        client = await session.scalar(
            select(ApiClient)
            .where(ApiClient.name == CLIENT_NAME, ApiClient.revoked_at.is_(None))
            .order_by(ApiClient.created_at)
            .limit(1)
        )
        if client is None:
            client = (await create_client(session, CLIENT_NAME, [Scope.admin])).client
    return Principal.of_client(client, getpass.getuser())


class Bar:
    """``[#####.....]  45%  4,500/10,000 records  1,234/s  ETA 0:00:04`` on stderr."""

    def __init__(self, stream: IO[str], start_line: int) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.start_line = start_line

    def __call__(self, job: HistoryImport) -> None:
        total = job.records_total or 0
        done = job.records_done
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (done - self.start_line) / elapsed
        share = done / total if total else 1.0
        filled = int(share * 30)
        eta = "--:--"
        if rate > 0 and total:
            left = int((total - done) / rate)
            eta = f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%}  {done:,}/{total:,} records"
            f"  {rate:,.0f}/s  ETA {eta}  "
        )
        self.stream.flush()


async def import_command(
    settings: Settings, file: Path, all_or_nothing: bool, batch_size: int | None
) -> int:
    database = Database(settings)
    try:
        facts = _inspect(file, settings)
        if facts is None:
            print(
                f"lfd history import: no bundle and no CSV set (deaths.csv) at {file}",
                file=sys.stderr,
            )
            return 2
        path, sha256, size, lines = facts
        principal = await _principal(database)
        async with database.transaction() as session:
            job = await session.scalar(
                select(HistoryImport)
                .where(
                    HistoryImport.origin == "cli",
                    HistoryImport.spool_path == path,
                    HistoryImport.bundle_sha256 == sha256,
                    HistoryImport.all_or_nothing == all_or_nothing,
                    HistoryImport.status.in_(RUNNING),
                )
                .order_by(HistoryImport.created_at.desc())
                .limit(1)
            )
            if job is None:
                job = await create_import(
                    session,
                    principal,
                    path=Path(path),
                    sha256=sha256,
                    size=size,
                    lines=lines,
                    origin="cli",
                    all_or_nothing=all_or_nothing,
                )
            elif job.lease_expires_at is not None and job.lease_expires_at > now():
                print(
                    f"lfd history import: import {job.id} of this file is held by another run "
                    f"until {job.lease_expires_at:%H:%M:%S} UTC; run again after that.",
                    file=sys.stderr,
                )
                return 1
            else:
                print(f"Resuming import {job.id} after line {job.records_done:,}.", file=sys.stderr)
        finished = await run_import(database, job.id, Bar(sys.stderr, job.records_done), batch_size)
        print(file=sys.stderr)
        if finished is None:
            print("lfd history import: another run took the import.", file=sys.stderr)
            return 1
        return await _report(database, finished)
    finally:
        await database.dispose()


async def _report(database: Database, job: HistoryImport) -> int:
    print(
        f"Import {job.id} {job.status}: {job.created:,} created, {job.updated:,} updated, "
        f"{job.unchanged:,} unchanged, {job.refused:,} refused."
    )
    async with database.transaction() as session:
        problems = (
            await session.scalars(
                select(HistoryImportProblem)
                .where(HistoryImportProblem.import_id == job.id)
                .order_by(HistoryImportProblem.line)
                .limit(SHOWN_PROBLEMS)
            )
        ).all()
    for problem in problems:
        for error in problem.errors:
            print(
                f"  line {problem.line}: {error['pointer'] or '(the record)'}: {error['detail']}",
                file=sys.stderr,
            )
    if job.refused > SHOWN_PROBLEMS:
        print(f"  ... GET /v1/history/imports/{job.id} lists them all.", file=sys.stderr)
    if job.status == "failed":
        print(f"  the import failed: {job.error}", file=sys.stderr)
    return 0 if job.status == "completed" else 1


async def export_command(
    settings: Settings,
    out: Path | None,
    died_from: date | None,
    died_to: date | None,
    organisation: str | None = None,
) -> int:
    database = Database(settings)
    count = plans = 0
    started = time.monotonic()
    try:
        handle = out.open("wb") if out is not None else sys.stdout.buffer
        try:
            principal = await _principal(database)
            organisation_id = None
            if organisation is not None:
                async with database.transaction() as session:
                    found = await resolve_organisation(session, organisation)
                if found is None:
                    sys.stderr.write(f"lfd history export: no organisation {organisation!r}\n")
                    return 2
                organisation_id = found.id
            async with database.snapshot() as session:
                async for page in export_records(session, died_from, died_to, organisation_id):
                    # Every death read is audited (one row each, as for any read), page by page:
                    # on PostgreSQL in a transaction of its own (the snapshot is read-only, and
                    # holds no transaction id that would stall the change feed for the export's
                    # length); SQLite's one writer is this session already.
                    read = [(d, d) for d in page.ids]
                    if database.dialect == "postgresql":
                        async with database.transaction() as audit:
                            await record_access(audit, principal, "history.export", "death", read)
                    else:
                        await record_access(session, principal, "history.export", "death", read)
                    handle.write(
                        b"".join(orjson.dumps(r, option=OPTIONS) + b"\n" for r in page.records)
                    )
                    count += len(page.records)
                    if count % 10_000 < len(page.records):
                        rate = count / max(time.monotonic() - started, 1e-6)
                        sys.stderr.write(f"\r{count:,} deaths exported  {rate:,.0f}/s  ")
                if died_from is None and died_to is None:
                    # A whole export (of everything, or of one organisation) takes the action
                    # plans too; a period's holds its deaths only (a plan has no period).
                    async for line in export_plans(session, organisation_id):
                        handle.write(orjson.dumps(line, option=OPTIONS) + b"\n")
                        plans += 1
        finally:
            if out is not None:
                handle.close()
            else:
                handle.flush()
    finally:
        await database.dispose()
    print(f"\r{count:,} deaths and {plans:,} action plans exported.", file=sys.stderr)
    return 0
