from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from app.auth.deps import WebhooksManager
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    IdempotencyInFlight,
    IdempotencyMismatch,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from app.idempotency.responses import as_response, create_once, new
from app.kit.etag import Precondition, if_match_header, not_modified
from app.kit.pagination import DEFAULT_PAGE_SIZE, Cursor, Limit
from app.kit.schemas import Page
from app.webhooks import deliveries, service
from app.webhooks.schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryStatus,
    EndpointCreate,
    EndpointOut,
    EndpointPatch,
    EndpointWithSecret,
)

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/webhook-endpoints", tags=["webhooks"])
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)
IfMatch = Annotated[Precondition, Depends(if_match_header("The endpoint's ETag."))]


@router.post(
    "",
    response_model=EndpointWithSecret,
    status_code=201,
    responses=problem_responses(*AUTH, BadRequest, IdempotencyInFlight, IdempotencyMismatch, *BODY),
)
async def create_endpoint(
    body: EndpointCreate,
    principal: WebhooksManager,
    database: DatabaseDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Optional: a retry with the same key and body replays the first answer.",
        ),
    ] = None,
) -> Response:
    """Register a URL to receive events, signed per Standard Webhooks (`webhook-id`,
    `webhook-timestamp`, `webhook-signature`). The answer holds the signing `secret`
    (`whsec_...`): it is shown only here and on rotation.

    The URL must be http(s), without a user name or password, under one of the prefixes the
    administrator allowed (`LFD_WEBHOOK_ALLOWED_URLS`): otherwise a 422 at `/url`.
    `event_types` empty sends every type; an unknown type is a 422. The endpoint receives events
    that occur from now on. docs/webhooks.md explains signing, retries and the delivery log.

    Scope: `webhooks:manage`.
    """
    allowed = database.settings.webhook_allowed_urls
    stored = await create_once(
        database,
        principal,
        idempotency_key,
        path="/v1/webhook-endpoints",
        body=body,
        work=lambda session: new(service.create_endpoint(session, principal, body, allowed)),
        location=lambda endpoint: f"/v1/webhook-endpoints/{endpoint.id}",
        tag=service.endpoint_etag,
    )
    return as_response(stored)


@router.get(
    "",
    response_model=Page[EndpointOut],
    responses=problem_responses(*AUTH, BadRequest, ValidationFailed),
)
async def list_endpoints(
    principal: WebhooksManager,
    database: DatabaseDep,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[EndpointOut]:
    """The calling client's endpoints, oldest first (an administrator sees every client's).
    Secrets are never listed.

    Scope: `webhooks:manage`.
    """
    async with database.transaction() as session:
        items, next_cursor = await service.list_endpoints(session, principal, cursor, limit)
    return Page[EndpointOut](items=items, next_cursor=next_cursor)


@router.get(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses={
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(*AUTH, NotFound, ValidationFailed),
    },
)
async def get_endpoint(
    endpoint_id: uuid.UUID,
    principal: WebhooksManager,
    database: DatabaseDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> EndpointOut | Response:
    """An endpoint (without its secret) and its `ETag`; `enabled: false` with
    `disabled_reason` when a client disabled it or it answered 410 Gone.

    Scope: `webhooks:manage`.
    """
    async with database.transaction() as session:
        endpoint = service.endpoint_out(
            await service.load_endpoint(session, principal, endpoint_id)
        )
    tag = service.endpoint_etag(endpoint)
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return endpoint


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointOut,
    responses=problem_responses(*AUTH, NotFound, PreconditionFailed, PreconditionRequired, *BODY),
)
async def patch_endpoint(
    if_match: IfMatch,
    endpoint_id: uuid.UUID,
    patch: EndpointPatch,
    principal: WebhooksManager,
    database: DatabaseDep,
    response: Response,
) -> EndpointOut:
    """Change the URL (checked against the allow-list again), the description or the event
    types, or disable (`enabled: false`) and re-enable the endpoint. While disabled, nothing
    is sent and new events are not queued for it; deliveries already queued wait and go out
    when it is enabled again. Needs `If-Match` (428 without, 412 when stale).

    Scope: `webhooks:manage`.
    """
    async with database.transaction() as session:
        endpoint = await service.patch_endpoint(
            session,
            principal,
            endpoint_id,
            patch,
            if_match,
            database.settings.webhook_allowed_urls,
        )
    response.headers["ETag"] = service.endpoint_etag(endpoint)
    return endpoint


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    responses=problem_responses(*AUTH, NotFound, PreconditionFailed, ValidationFailed),
)
async def delete_endpoint(
    if_match: IfMatch,
    endpoint_id: uuid.UUID,
    principal: WebhooksManager,
    database: DatabaseDep,
) -> Response:
    """Delete the endpoint and its delivery log (to keep the log, disable it instead).
    `If-Match` is optional; when sent it must be current (412 otherwise).

    Scope: `webhooks:manage`.
    """
    async with database.transaction() as session:
        await service.delete_endpoint(session, principal, endpoint_id, if_match)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=EndpointWithSecret,
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def rotate_secret(
    endpoint_id: uuid.UUID, principal: WebhooksManager, database: DatabaseDep, response: Response
) -> EndpointWithSecret:
    """A new signing secret, shown only in this answer. For 24 hours every message carries two
    signatures, one with each secret, so the receiver can switch without losing a message.

    Scope: `webhooks:manage`.
    """
    async with database.transaction() as session:
        endpoint = await service.rotate_secret(session, principal, endpoint_id)
    response.headers["ETag"] = service.endpoint_etag(endpoint)
    return endpoint


@router.post(
    "/{endpoint_id}/test",
    response_model=DeliveryOut,
    status_code=202,
    responses=problem_responses(*AUTH, NotFound, Conflict, ValidationFailed),
)
async def send_test(
    endpoint_id: uuid.UUID, principal: WebhooksManager, database: DatabaseDep
) -> DeliveryOut:
    """Queue a `webhook.test` message (`data.endpoint_id`), sent within a second or so; follow
    it in the delivery log. A disabled endpoint is a 409.

    Scope: `webhooks:manage`.
    """
    async with database.transaction() as session:
        return await deliveries.send_test(session, principal, endpoint_id)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=Page[DeliveryOut],
    responses=problem_responses(*AUTH, NotFound, BadRequest, ValidationFailed),
)
async def list_deliveries(
    endpoint_id: uuid.UUID,
    principal: WebhooksManager,
    database: DatabaseDep,
    status: Annotated[
        DeliveryStatus | None,
        Query(description="`pending`, `failed` (will retry), `delivered` or `dead`."),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
) -> Page[DeliveryOut]:
    """The endpoint's delivery log, newest first: one delivery per event, with its status,
    attempts, last status code or error kind, and next attempt. No bodies are kept.

    Scope: `webhooks:manage`.
    """
    async with database.transaction() as session:
        items, next_cursor = await deliveries.list_deliveries(
            session, principal, endpoint_id, status, cursor, limit
        )
    return Page[DeliveryOut](items=items, next_cursor=next_cursor)


@router.get(
    "/{endpoint_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def get_delivery(
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: WebhooksManager,
    database: DatabaseDep,
) -> DeliveryDetail:
    """A delivery with every attempt (start, finish, duration, status code or error kind).

    Scope: `webhooks:manage`.
    """
    async with database.transaction() as session:
        return await deliveries.read_delivery(session, principal, endpoint_id, delivery_id)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    status_code=202,
    responses=problem_responses(*AUTH, NotFound, Conflict, ValidationFailed),
)
async def replay_delivery(
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: WebhooksManager,
    database: DatabaseDep,
) -> DeliveryOut:
    """Send the delivery again now, whatever its status (a dead one, or a delivered one the
    receiver lost): the same `webhook-id` and body, freshly signed. The worker sends it within a
    second or so. 409 if the endpoint is disabled or an attempt is in flight.

    Scope: `webhooks:manage`.
    """
    async with database.transaction() as session:
        return await deliveries.replay_delivery(session, principal, endpoint_id, delivery_id)
