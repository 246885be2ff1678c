"""POST /v1/history/imports (a bundle streamed in, imported as a job), GET its progress, and
the missed-referral figures over imported history (docs/history.md)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.auth.deps import Administrator, ReportsReader
from app.auth.routing import AuthFirstRoute
from app.db import Database, DatabaseDep
from app.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    problem_responses,
)
from app.history.example import EXAMPLE_LINE
from app.history.runner import run_import
from app.history.service import (
    ImportOut,
    MissedReferrals,
    create_import,
    import_out,
    missed_referrals,
    spool,
)
from app.privacy.filters import refuse_identifying_filters

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/history", tags=["history"])
AUTH = (Unauthorized, Forbidden)
NDJSON = frozenset({"application/x-ndjson", "application/jsonl", "application/json-seq"})
# The jobs started by this process, held so that the event loop does not drop them.
_running: set[asyncio.Task[object]] = set()


def start(database: Database, import_id: uuid.UUID) -> None:
    """Run the job in this process now; the background runner takes it over if this process
    dies (app.jobs: history_imports)."""
    task: asyncio.Task[object] = asyncio.create_task(run_import(database, import_id))
    _running.add(task)
    task.add_done_callback(_running.discard)


@router.post(
    "/imports",
    status_code=202,
    response_model=ImportOut,
    summary="Import a history bundle (JSON Lines) as a job",
    responses=problem_responses(*AUTH, UnsupportedMediaType, PayloadTooLarge, BadRequest),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {
                    "schema": {
                        "type": "string",
                        "description": "One HistoryRecord per line (a death and all that "
                        'happened to it), or an action plan (`{"action_plan": ...}`: '
                        "docs/history.md).",
                    },
                    "example": EXAMPLE_LINE,
                }
            },
        }
    },
)
async def post_import(
    request: Request,
    response: Response,
    principal: Administrator,
    database: DatabaseDep,
    all_or_nothing: Annotated[
        bool, Query(description="Refuse the whole bundle if any record is refused.")
    ] = False,
) -> ImportOut:
    """Import a trust's history: a bundle of JSON Lines, one record per death with its
    screening, referrals, reviews and findings, each with its own original times
    (docs/history.md). The body is streamed to disk as it arrives and imported as a job:
    `202` with `Location` to poll. Each record is validated as live intake is, plus history's
    own rules; a refused record is listed with JSON pointers and the rest go in, unless
    `all_or_nothing`. Re-importing is idempotent by `source_system` + `source_reference`: the
    same record again is unchanged, a corrected one updated with versions kept. No referral
    is created by today's rules, no stage 2 raised, no lease or due date invented. One
    `history.imported` event per committed batch; one audit row for the import.

    Scope: `admin`."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in NDJSON:
        raise UnsupportedMediaType("Send the bundle as application/x-ndjson (JSON Lines).")
    spooled = await spool(database.settings, request.stream())
    if spooled.size == 0:
        spooled.path.unlink(missing_ok=True)
        raise BadRequest("The bundle is empty.")
    async with database.transaction() as session:
        job = await create_import(
            session,
            principal,
            path=spooled.path,
            sha256=spooled.sha256,
            size=spooled.size,
            lines=spooled.lines,
            origin="api",
            all_or_nothing=all_or_nothing,
        )
    start(database, job.id)
    response.headers["Location"] = f"/v1/history/imports/{job.id}"
    async with database.autocommit() as session:
        return await import_out(session, job.id)


@router.get(
    "/imports/{import_id}",
    response_model=ImportOut,
    summary="An import's progress, counts and problems",
    responses=problem_responses(*AUTH, NotFound),
)
async def get_import(
    import_id: uuid.UUID, principal: Administrator, database: DatabaseDep
) -> ImportOut:
    """The import's status, its checkpoint (`records_done` of `records_total`), its counts
    (created, updated, unchanged, refused), each committed batch with its case-number range
    and event, and the refused records with their problems (JSON pointers, never values).

    Scope: `admin`."""
    async with database.autocommit() as session:
        return await import_out(session, import_id)


@router.get(
    "/missed-referrals",
    response_model=MissedReferrals,
    summary="Imported deaths today's rules would refer, and those never referred",
    responses=problem_responses(*AUTH),
)
async def get_missed_referrals(
    principal: ReportsReader,
    database: DatabaseDep,
    died_from: Annotated[date | None, Query(alias="from")] = None,
    died_to: Annotated[date | None, Query(alias="to")] = None,
) -> MissedReferrals:
    """Over the deaths imported as history that died in the period (UK local dates, both
    optional): how many met one of today's referral criteria, and per route how many today's
    rules would require, how many were referred at the time, how many the medical examiner
    declined in writing, and how many were missed (never referred, not declined). Figures
    only; a pseudonymised client gives whole months.

    Scope: `reports:read`."""
    # Figures only, but a pseudonymised client's period is whole months, as on the reports.
    refuse_identifying_filters(principal, {}, died_from, died_to, names=("from", "to"))
    async with database.snapshot() as session:
        return await missed_referrals(session, died_from, died_to)
