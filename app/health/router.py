from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.db import DatabaseDep
from app.errors import ServiceUnavailable, problem_responses
from app.kit.time import now
from app.partitions import missing_months

router = APIRouter(tags=["health"])
logger = logging.getLogger("app.health")
READY_TIMEOUT_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up. No credential needed."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(ServiceUnavailable))
async def readyz(database: DatabaseDep) -> JSONResponse:
    """The database answers (and, on PostgreSQL, this month's partitions of the audit log and
    the change feed exist). 503 (never a 500) when not. No credential needed."""
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
    return JSONResponse({"status": "ready", "database": database.dialect})
