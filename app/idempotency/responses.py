"""The HTTP edge of idempotency, for routers: a creating POST made once per Idempotency-Key,
and the stored (or just made) answer as a response.

Services create and return domain values (a ScreeningOut, a ReviewOut, ...); the route hands
the service call to ``create_once`` with how to name the new resource (``Location``) and tag it
(``ETag``), and ``create_once`` makes the 201 (or 200) answer, stores it with the idempotency
record in the same transaction as the change, and replays it for a retry. app.idempotency.service
keeps the claim-and-replay store itself, which knows nothing of HTTP responses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.db import Database
from app.idempotency.service import StoredResponse, check_key, fingerprint, run_idempotent

Made = TypeVar("Made", bound=BaseModel)


async def new(made: Awaitable[Made]) -> tuple[Made, bool]:
    """A service call that always creates (the usual case): its value, marked new."""
    return await made, True


async def create_once(
    database: Database,
    principal: Principal,
    key: str | None,
    *,
    path: str,
    body: BaseModel,
    work: Callable[[AsyncSession], Awaitable[tuple[Made, bool]]],
    location: Callable[[Made], str],
    tag: Callable[[Made], str] | None = None,
    key_required: bool = False,
    show: Callable[[Made], BaseModel] | None = None,
    more_headers: Callable[[Made], dict[str, str]] | None = None,
) -> StoredResponse:
    """Run ``work`` (which returns the resource and whether it is new) in one transaction and
    answer 201 (200 when it updated an existing one) with ``Location`` and ``ETag``. With an
    Idempotency-Key (required when ``key_required``), the answer is stored with the change and
    a retry with the same key and body replays it; see app.idempotency.service. ``show`` makes
    the body from the resource (what the caller may read of it: app.privacy.writes); the
    resource itself without it. ``more_headers`` adds headers of the resource's own."""

    async def answer(session: AsyncSession) -> StoredResponse:
        made, created = await work(session)
        headers = {"Location": location(made)}
        if tag is not None:
            headers["ETag"] = tag(made)
        if more_headers is not None:
            headers.update(more_headers(made))
        shown = show(made) if show is not None else made
        return StoredResponse(
            status=201 if created else 200, body=shown.model_dump(mode="json"), headers=headers
        )

    if key is None and not key_required:
        async with database.transaction() as session:
            return await answer(session)
    print_ = fingerprint("POST", path, body.model_dump(mode="json"))
    return await run_idempotent(database, principal, check_key(key), print_, answer)


def as_response(stored: StoredResponse) -> JSONResponse:
    """The stored (or just made) answer as an HTTP response, marked when it is a replay."""
    headers = dict(stored.headers)
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(stored.body, status_code=stored.status, headers=headers)
