"""Webhook endpoints: register, list, read, change, disable, delete, rotate the secret.

An endpoint belongs to the client that registered it; another client's endpoint is a 404
(an administrator sees them all). Changes are audited (who pointed the service's events at
which URL); they are not events in the change feed, which is about the trust's records.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditEntry, write_audit
from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.errors import BadRequest, ValidationFailed
from app.kit.cursor import open_cursor, sign_cursor
from app.kit.etag import Precondition, etag
from app.kit.sql import load_one
from app.kit.time import now
from app.models import ApiClient, WebhookEndpoint
from app.scoping import current_scope
from app.webhooks.local_names import local_name_problem
from app.webhooks.schemas import EndpointCreate, EndpointOut, EndpointPatch, EndpointWithSecret
from app.webhooks.signing import new_secret
from app.webhooks.urls import UrlRefused, check_url

# After a rotation the old secret keeps signing for this long, so that a receiver can switch
# to the new one without dropping a message.
PREVIOUS_SECRET_VALIDITY = timedelta(hours=24)
DISABLED_BY_CLIENT = "disabled by a client"


def endpoint_out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(endpoint)


def endpoint_etag(endpoint: EndpointOut | WebhookEndpoint) -> str:
    return etag(endpoint.id, endpoint.version)


def is_admin(principal: Principal) -> bool:
    return Scope.admin.value in principal.scopes


def _checked_url(url: str, allowed: list[str]) -> str:
    try:
        check_url(url, allowed)
    except UrlRefused as refused:
        raise ValidationFailed(
            "The URL cannot receive webhooks; see errors.",
            errors=[{"pointer": "/url", "code": "url_not_allowed", "detail": str(refused)}],
        ) from None
    local = local_name_problem(url)
    if local is not None:
        raise ValidationFailed(
            "The URL cannot receive webhooks; see errors.",
            errors=[{"pointer": "/url", "code": "internal_address", "detail": local}],
        )
    return url


async def _audit(session: AsyncSession, principal: Principal, action: str, id_: uuid.UUID) -> None:
    await write_audit(session, principal, [AuditEntry(action, "webhook_endpoint", id_, None)])


def _managed(principal: Principal) -> tuple[ColumnElement[bool], ...]:
    """The endpoints a client manages: its own; an administrator's, those of every client of
    the organisations it reaches (every client's for a deployment-level administrator)."""
    if not is_admin(principal):
        return (WebhookEndpoint.created_by_client_id == principal.client_id,)
    scope = current_scope()
    if principal.organisation_id is None or scope.everything:
        return ()
    reached = select(ApiClient.id).where(ApiClient.organisation_id.in_(sorted(scope.organisations)))
    return (WebhookEndpoint.created_by_client_id.in_(reached),)


async def load_endpoint(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> WebhookEndpoint:
    """The endpoint, if this client may see it (its own, or any its administrator reaches)."""
    own = _managed(principal)
    return await load_one(
        session, WebhookEndpoint, endpoint_id, "webhook endpoint", for_update=for_update, where=own
    )


async def create_endpoint(
    session: AsyncSession, principal: Principal, body: EndpointCreate, allowed: list[str]
) -> EndpointWithSecret:
    moment = now()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        url=_checked_url(body.url, allowed),
        description=body.description,
        event_types=body.event_types,
        secret=new_secret(),
        previous_secret=None,
        previous_secret_expires_at=None,
        secret_rotated_at=None,
        enabled=body.enabled,
        disabled_reason=None if body.enabled else DISABLED_BY_CLIENT,
        disabled_at=None if body.enabled else moment,
        created_by_client_id=principal.client_id,
        version=1,
        created_at=moment,
        updated_at=moment,
    )
    session.add(endpoint)
    await session.flush()
    await _audit(session, principal, "webhook_endpoint.create", endpoint.id)
    return EndpointWithSecret.model_validate(endpoint)


async def list_endpoints(
    session: AsyncSession, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[EndpointOut], str | None]:
    """The client's endpoints (every client's for an administrator), oldest first."""
    query = select(WebhookEndpoint).where(*_managed(principal))
    if cursor is not None:
        created, last_id = await open_cursor(session, cursor, 2)
        try:
            after = (_timestamp(created), uuid.UUID(str(last_id)))
        except ValueError:
            raise BadRequest("The cursor is not one this service issued.") from None
        query = query.where(tuple_(WebhookEndpoint.created_at, WebhookEndpoint.id) > after)
    query = query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = await sign_cursor(
            session, [page[-1].created_at.isoformat(), str(page[-1].id)]
        )
    return [endpoint_out(endpoint) for endpoint in page], next_cursor


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a timestamp")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive timestamp")
    return moment


async def patch_endpoint(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: uuid.UUID,
    patch: EndpointPatch,
    if_match: Precondition,
    allowed: list[str],
) -> EndpointOut:
    endpoint = await load_endpoint(session, principal, endpoint_id, for_update=True)
    if_match.check(endpoint.id, endpoint.version)
    changes = patch.model_dump(exclude_unset=True)
    for name in ("url", "event_types", "enabled"):
        if name in changes and changes[name] is None:
            raise ValidationFailed(
                "Some fields cannot be cleared.",
                errors=[
                    {"pointer": f"/{name}", "code": "null_not_allowed", "detail": "cannot be null"}
                ],
            )
    changed = False
    if "url" in changes and changes["url"] != endpoint.url:
        endpoint.url = _checked_url(changes["url"], allowed)
        changed = True
    if "description" in changes and changes["description"] != endpoint.description:
        endpoint.description = changes["description"]
        changed = True
    if "event_types" in changes and changes["event_types"] != endpoint.event_types:
        endpoint.event_types = changes["event_types"]
        changed = True
    if "enabled" in changes and changes["enabled"] != endpoint.enabled:
        set_enabled(endpoint, changes["enabled"], DISABLED_BY_CLIENT)
        changed = True
    if changed:
        endpoint.version += 1
        endpoint.updated_at = now()
        await session.flush()
        await _audit(session, principal, "webhook_endpoint.update", endpoint.id)
    return endpoint_out(endpoint)


def set_enabled(endpoint: WebhookEndpoint, enabled: bool, reason: str) -> None:
    endpoint.enabled = enabled
    endpoint.disabled_reason = None if enabled else reason
    endpoint.disabled_at = None if enabled else now()


async def delete_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID, if_match: Precondition
) -> None:
    """Delete the endpoint with its delivery log. If-Match is optional here: when sent, it
    must be current."""
    endpoint = await load_endpoint(session, principal, endpoint_id, for_update=True)
    if if_match.sent:
        if_match.check(endpoint.id, endpoint.version)
    await session.delete(endpoint)
    await session.flush()
    await _audit(session, principal, "webhook_endpoint.delete", endpoint_id)


async def rotate_secret(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
) -> EndpointWithSecret:
    """A new secret; the one it replaces keeps signing (a second signature) for 24 hours."""
    endpoint = await load_endpoint(session, principal, endpoint_id, for_update=True)
    moment = now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = moment + PREVIOUS_SECRET_VALIDITY
    endpoint.secret = new_secret()
    endpoint.secret_rotated_at = moment
    endpoint.version += 1
    endpoint.updated_at = moment
    await session.flush()
    await _audit(session, principal, "webhook_endpoint.rotate_secret", endpoint.id)
    return EndpointWithSecret.model_validate(endpoint)
