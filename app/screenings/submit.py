"""POST /v1/screenings and POST /v1/screenings/batch at the edge: each screening recorded
once per Idempotency-Key (a retry replays the first answer), a batch item by item, each item
under the batch's key and its index, in a transaction of its own."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.db import Database
from app.errors import PayloadTooLarge, ProblemError, ValidationFailed, validation_errors
from app.idempotency.responses import create_once, new
from app.idempotency.service import StoredResponse, check_key
from app.kit.etag import etag
from app.notifications.worklist import audited_claim_refusals
from app.privacy.writes import Written, written
from app.screenings import service
from app.screenings.intake import (
    BatchItemResult,
    BatchResult,
    ScreeningBatch,
    ScreeningCreate,
    ScreeningRecorded,
)


def shown_to(principal: Principal, recorded: ScreeningRecorded) -> ScreeningRecorded | Written:
    """What a write of a screening answers: in full to a client that may read deaths (the
    screening and its death), else the id, version and links (app.privacy.writes)."""
    return written(
        principal,
        Scope.deaths_read,
        recorded,
        recorded.id,
        recorded.version,
        {
            "self": f"/v1/screenings/{recorded.id}",
            "death": f"/v1/deaths/{recorded.death_id}",
        },
        death_id=recorded.death_id,
    )


async def record_once(
    database: Database, principal: Principal, key: str | None, body: ScreeningCreate
) -> StoredResponse:
    """POST /v1/screenings: record once per Idempotency-Key (required), replay after that. A
    screening refused for another's worklist lease is audited (app.notifications.worklist)."""
    async with audited_claim_refusals(database, principal):
        return await _record_once(database, principal, key, body)


async def _record_once(
    database: Database, principal: Principal, key: str | None, body: ScreeningCreate
) -> StoredResponse:
    return await create_once(
        database,
        principal,
        key,
        path="/v1/screenings",
        body=body,
        # Through the module, so that a test can hold the intake at this point (the
        # PostgreSQL race tests in tests/test_idempotency.py patch service.record_screening).
        work=lambda session: new(
            service.record_screening(session, principal, database.settings, body)
        ),
        location=lambda recorded: f"/v1/screenings/{recorded.id}",
        tag=lambda recorded: etag(recorded.id, recorded.version),
        key_required=True,
        show=lambda recorded: shown_to(principal, recorded),
    )


async def submit_batch(
    database: Database, principal: Principal, key: str | None, batch: ScreeningBatch
) -> BatchResult:
    """Each item on its own: its own idempotency key (the batch key and the item's index), its
    own transaction. A retried batch replays what was recorded and retries what failed."""
    key = check_key(key)
    if len(batch.screenings) > database.settings.batch_max_items:
        raise PayloadTooLarge(
            f"A batch holds at most {database.settings.batch_max_items} screenings; split it."
        )
    results: list[BatchItemResult] = []
    for index, raw in enumerate(batch.screenings):
        results.append(await _batch_item(database, principal, f"{key}#{index}", index, raw))
    counts = {
        outcome: sum(1 for r in results if r.outcome == outcome)
        for outcome in ("created", "replayed", "failed")
    }
    return BatchResult(items=results, **counts)


async def _batch_item(
    database: Database, principal: Principal, key: str, index: int, raw: Any
) -> BatchItemResult:
    prefix = f"/screenings/{index}"
    try:
        body = ScreeningCreate.model_validate(raw)
    except PydanticValidationError as error:
        problem = ValidationFailed(
            "One or more fields are not valid; see errors.",
            errors=[
                # An item that is not an object fails as a whole: its pointer is the item's.
                {**e, "pointer": (prefix + e["pointer"]) if e["pointer"] != "/" else prefix}
                for e in validation_errors(list(error.errors()))
            ],
        )
        return BatchItemResult(
            index=index, outcome="failed", status=problem.status, problem=problem.body()
        )
    try:
        stored = await record_once(database, principal, key, body)
    except ProblemError as problem:
        for field_error in problem.errors or []:
            field_error["pointer"] = prefix + field_error["pointer"]
        return BatchItemResult(
            index=index, outcome="failed", status=problem.status, problem=problem.body()
        )
    return BatchItemResult(
        index=index,
        outcome="replayed" if stored.replayed else "created",
        status=stored.status,
        screening_id=stored.body["id"],
        death_id=stored.body["death_id"],
    )
