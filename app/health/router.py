from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.db import DatabaseDep
from app.errors import ServiceUnavailable, problem_responses

router = APIRouter(tags=["health"])
logger = logging.getLogger("app.health")
READY_TIMEOUT_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up. No credential needed."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(ServiceUnavailable))
async def readyz(database: DatabaseDep) -> JSONResponse:
    """The database answers. 503 (never a 500) when it does not. No credential needed."""
    try:
        await asyncio.wait_for(database.ping(), timeout=READY_TIMEOUT_SECONDS)
    except Exception as error:  # any failure to reach the database means not ready
        logger.warning("database not reachable", extra={"error_type": type(error).__name__})
        raise ServiceUnavailable(
            "The database is not reachable.", headers={"Retry-After": "5"}
        ) from error
    return JSONResponse({"status": "ready", "database": database.dialect})
