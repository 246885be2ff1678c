"""Import jobs as the API shows them, a bundle spooled to disk as it arrives, and the
missed-referral figures over imported history."""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.config import Settings
from app.errors import NotFound, PayloadTooLarge
from app.kit.schemas import ResponseModel
from app.kit.time import now
from app.models import HistoryImport, HistoryImportProblem, HistoryRecord, RouteOverride
from app.organisations.service import recording_organisation

PROBLEMS_SHOWN = 1000


class ImportProblemOut(ResponseModel):
    line: int = Field(description="The bundle's line (from 1).")
    source_reference: str | None = Field(description="The death's source_reference, if read.")
    errors: list[dict[str, Any]] = Field(description="Each with a JSON pointer into the record.")


class ImportBatchOut(ResponseModel):
    number: int = Field(description="The batch's number in the import (from 1).")
    lines: list[int] = Field(description="The first and last line of the batch.")
    created: int = Field(description="Deaths the batch created.")
    updated: int = Field(description="Deaths the batch updated (their record had changed).")
    unchanged: int = Field(description="Deaths already imported exactly so.")
    refused: int = Field(description="Records the batch refused (each in `problems`).")
    case_numbers: list[int] | None = Field(
        description="The lowest and highest case number of the deaths the batch created."
    )
    event: str | None = Field(default=None, description="Its `history.imported` event's id.")
    committed_at: datetime = Field(description="When the batch and its checkpoint were committed.")


class ImportOut(ResponseModel):
    id: uuid.UUID
    status: Literal["queued", "running", "completed", "refused", "failed"] = Field(
        description="`queued`, `running`, `completed`, `refused` (all or nothing, with a bad "
        "record) or `failed`."
    )
    origin: str = Field(description="Where the bundle came from: `api` or `cli`.")
    format: str = Field(description="`jsonl` (the bundle) or `csv` (a CSV set).")
    all_or_nothing: bool = Field(description="Whether one bad record refuses the whole import.")
    bundle_sha256: str = Field(description="SHA-256 of the bundle as received.")
    bundle_bytes: int = Field(description="The bundle's size in bytes.")
    records_total: int | None = Field(description="Records in the bundle, once counted.")
    records_done: int = Field(description="Lines of the bundle committed (the checkpoint).")
    created: int = Field(description="Deaths created so far.")
    updated: int = Field(description="Deaths updated so far.")
    unchanged: int = Field(description="Records already imported exactly so.")
    refused: int = Field(description="Records refused so far.")
    batches: list[ImportBatchOut] = Field(description="Each committed batch with its counts.")
    problems: list[ImportProblemOut] = Field(
        description=f"Every refused record with its problems (the first {PROBLEMS_SHOWN})."
    )
    problems_total: int = Field(description="How many records were refused in all.")
    error: str | None = Field(
        description="Why a failed import stopped (no patient data), else null."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def spool_dir(settings: Settings) -> Path:
    base = settings.history_spool_dir or str(Path(tempfile.gettempdir()) / "lfd-history")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Spooled:
    path: Path
    sha256: str
    size: int
    lines: int


async def spool(settings: Settings, body: AsyncIterator[bytes]) -> Spooled:
    """Write the body to a file of its own as it arrives (memory stays flat whatever its
    size), hashing and counting its lines; over the limit, the file is removed and it is 413."""
    import asyncio

    path = spool_dir(settings) / f"{uuid.uuid4().hex}.jsonl"
    digest = hashlib.sha256()
    size = lines = 0
    last = b"\n"
    handle = await asyncio.to_thread(path.open, "wb")
    try:
        pending: list[bytes] = []
        pending_size = 0
        async for chunk in body:
            if not chunk:
                continue
            size += len(chunk)
            if size > settings.history_max_bytes:
                raise PayloadTooLarge(
                    f"The bundle is larger than {settings.history_max_bytes} bytes."
                )
            digest.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= 1 << 20:
                await asyncio.to_thread(handle.write, b"".join(pending))
                pending, pending_size = [], 0
        await asyncio.to_thread(handle.write, b"".join(pending))
    except BaseException:
        await asyncio.to_thread(handle.close)
        path.unlink(missing_ok=True)
        raise
    await asyncio.to_thread(handle.close)
    return Spooled(path, digest.hexdigest(), size, lines + (0 if last == b"\n" else 1))


async def create_import(
    session: AsyncSession,
    principal: Principal,
    *,
    path: Path,
    sha256: str,
    size: int,
    lines: int | None,
    origin: str,
    all_or_nothing: bool,
    bundle_format: str = "jsonl",
) -> HistoryImport:
    moment = now()
    job = HistoryImport(
        id=uuid.uuid4(),
        status="queued",
        origin=origin,
        bundle_format=bundle_format,
        spool_path=str(path),
        bundle_sha256=sha256,
        bundle_bytes=size,
        all_or_nothing=all_or_nothing,
        records_total=lines,
        records_done=0,
        offset_done=0,
        created=0,
        updated=0,
        unchanged=0,
        refused=0,
        batches=[],
        client_id=principal.client_id,
        organisation_id=await recording_organisation(session, principal),
        client_name=principal.client_name,
        on_behalf_of=principal.on_behalf_of,
        created_at=moment,
        updated_at=moment,
    )
    session.add(job)
    await session.flush()
    return job


async def import_out(session: AsyncSession, import_id: uuid.UUID) -> ImportOut:
    job = await session.get(HistoryImport, import_id)
    if job is None:
        raise NotFound("No history import with that id.")
    problems = (
        await session.scalars(
            select(HistoryImportProblem)
            .where(HistoryImportProblem.import_id == job.id)
            .order_by(HistoryImportProblem.line)
            .limit(PROBLEMS_SHOWN)
        )
    ).all()
    total = await session.scalar(
        select(func.count()).where(HistoryImportProblem.import_id == job.id)
    )
    return ImportOut.model_validate(
        {
            **{name: getattr(job, name) for name in ImportOut.model_fields if hasattr(job, name)},
            "format": job.bundle_format,
            "problems": list(problems),
            "problems_total": int(total or 0),
        }
    )


class MissedRoute(ResponseModel):
    route: str
    required: int = Field(description="Imported deaths today's rules would refer on this route.")
    referred: int = Field(description="Of those, referred on it at the time.")
    overridden: int = Field(description="Of those, not referred: the ME declined it in writing.")
    missed: int = Field(description="Of those, never referred and not declined.")


class MissedReferrals(ResponseModel):
    died_from: date | None = Field(
        description="The period's first day of death (UK local), if given."
    )
    died_to: date | None = Field(description="The period's last day of death (UK local), if given.")
    deaths: int = Field(description="Deaths imported as history, died in the period.")
    meeting_a_criterion: int = Field(description="Of those, today's rules would refer.")
    with_a_missed_referral: int = Field(
        description="Of those, deaths with a route required today but never referred or declined."
    )
    routes: list[MissedRoute] = Field(description="The same, route by route.")


async def missed_referrals(
    session: AsyncSession, died_from: date | None, died_to: date | None
) -> MissedReferrals:
    """Figures only (no death is named): what today's rules would have required of the imported
    deaths beside what happened. Summed in Python over the period's history rows (their JSON
    differs by dialect); one row per death."""
    query = select(HistoryRecord.required_routes, HistoryRecord.missed_routes)
    if died_from is not None:
        query = query.where(HistoryRecord.died_on >= died_from)
    if died_to is not None:
        query = query.where(HistoryRecord.died_on <= died_to)
    deaths = meeting = with_missed = 0
    figures: dict[str, dict[str, int]] = {}
    result = await session.stream(query.execution_options(yield_per=5000))
    async for required, missed in result:
        deaths += 1
        if required:
            meeting += 1
        if missed:
            with_missed += 1
        for route in required:
            row = figures.setdefault(route, {"required": 0, "missed": 0})
            row["required"] += 1
            if route in missed:
                row["missed"] += 1
    overridden = await _overridden(session, died_from, died_to)
    routes = []
    for route in sorted(figures):
        row = figures[route]
        declined = overridden.get(route, 0)
        routes.append(
            MissedRoute(
                route=route,
                required=row["required"],
                referred=row["required"] - row["missed"] - declined,
                overridden=declined,
                missed=row["missed"],
            )
        )
    return MissedReferrals(
        died_from=died_from,
        died_to=died_to,
        deaths=deaths,
        meeting_a_criterion=meeting,
        with_a_missed_referral=with_missed,
        routes=routes,
    )


async def _overridden(
    session: AsyncSession, died_from: date | None, died_to: date | None
) -> dict[str, int]:
    """Required routes the ME declined, per route, among the period's imported deaths."""
    query = select(RouteOverride.route, HistoryRecord.required_routes).join(
        HistoryRecord, HistoryRecord.death_id == RouteOverride.death_id
    )
    if died_from is not None:
        query = query.where(HistoryRecord.died_on >= died_from)
    if died_to is not None:
        query = query.where(HistoryRecord.died_on <= died_to)
    counts: dict[str, int] = {}
    for route, required in (await session.execute(query)).all():
        if route in required:
            counts[route] = counts.get(route, 0) + 1
    return counts
