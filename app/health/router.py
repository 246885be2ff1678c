from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.db import DatabaseDep
from app.errors import ServiceUnavailable, problem_responses
from app.kit.time import now
from app.partitions import missing_months
from app.replica.monitor import ReplicaState, ReplicaStatus
from app.replica.reads import Reads

router = APIRouter(tags=["health"])
logger = logging.getLogger("app.health")
READY_TIMEOUT_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up. No credential needed."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(ServiceUnavailable))
async def readyz(request: Request, database: DatabaseDep) -> JSONResponse:
    """The database answers (and, on PostgreSQL, this month's partitions of the audit log and
    the change feed exist). 503 (never a 500) when not. No credential needed.

    With a read replica (`LFD_READ_DATABASE_URL`), `read_replica` says how far behind it is
    and where the reports and the change feed read now: `state` is `in_use`, `lagging` (more
    than `max_lag_seconds` behind), `unreachable`, `not_a_standby` or `unmeasured` (the
    primary did not answer); in every state but `in_use` they read from the primary, so the
    service stays ready (200) while the replica is away (docs/replica.md)."""
    try:
        await asyncio.wait_for(database.ping(), timeout=READY_TIMEOUT_SECONDS)
    except Exception as error:  # any failure to reach the database means not ready
        logger.warning("database not reachable", extra={"error_type": type(error).__name__})
        raise ServiceUnavailable(
            "The database is not reachable.", headers={"Retry-After": "5"}
        ) from error
    if database.dialect == "postgresql":
        # Every audited request writes into this month's partition of the audit log (there is
        # no default partition to catch it): without it, nothing could be served.
        async with database.autocommit() as session:
            missing = await missing_months(session, now())
        if missing:
            logger.error("partitions missing", extra={"partitions": missing})
            raise ServiceUnavailable(
                "This month's partitions of the audit log or the change feed are missing: run "
                "`lfd migrate` or the background runner (docs/operations.md).",
                headers={"Retry-After": "60"},
            )
    reads: Reads = request.app.state.reads
    try:
        replica = await asyncio.wait_for(reads.status(), timeout=READY_TIMEOUT_SECONDS)
    except TimeoutError:  # the check carries on; until it ends, say what this one saw
        replica = ReplicaStatus(ReplicaState.unreachable, reads.clock(), error="TimeoutError")
    return JSONResponse(
        {
            "status": "ready",
            "database": database.dialect,
            "read_replica": replica.describe(
                reads.clock(), reads.monitor.max_lag_seconds if reads.configured else None
            ),
        }
    )
