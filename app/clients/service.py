"""Changes to API clients beyond create/list/revoke (app.auth.service): expiry, API key
rotation with a grace period, public keys for signed-JWT client credentials, and the identity
provider of a client's user assertions. Shared by the admin API (app.clients.router) and the
command line. Services flush, never commit; ValueError for a change that cannot be made."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import generate_key, hash_key
from app.auth.oauth.jwks import check_jwks_url, parse_public_pem
from app.auth.principal import Principal
from app.models import ApiClient, ClientPublicKey
from app.models.base import utcnow
from app.scoping import current_scope

MAX_GRACE_SECONDS = 30 * 86400
MAX_PUBLIC_KEYS = 10


class ClientNotFound(LookupError):
    pass


class ClientRevoked(ValueError):
    pass


@dataclass(frozen=True)
class RotatedKey:
    client: ApiClient
    key: str


async def get_client(session: AsyncSession, client_id: uuid.UUID) -> ApiClient:
    client = await session.get(ApiClient, client_id)
    if client is None:
        raise ClientNotFound(str(client_id))
    return client


def administers_organisation(principal: Principal, organisation_id: uuid.UUID | None) -> bool:
    """A deployment-level administrator (no organisation) administers every client; an
    organisation's administrator those of the organisations in its reach (app.scoping)."""
    if principal.organisation_id is None:
        return True
    scope = current_scope()
    return scope.everything or organisation_id in scope.organisations


def administers(principal: Principal, client: ApiClient) -> bool:
    return administers_organisation(principal, client.organisation_id)


async def administered(session: AsyncSession, principal: Principal, client_id: uuid.UUID) -> None:
    """ClientNotFound for a client the principal does not administer (as for none at all)."""
    client = await session.get(ApiClient, client_id)
    if client is not None and not administers(principal, client):
        raise ClientNotFound(str(client_id))


def _live(client: ApiClient) -> None:
    if client.revoked_at is not None:
        raise ClientRevoked("the client is revoked")


async def expire_client(
    session: AsyncSession, client_id: uuid.UUID, at: datetime | None
) -> ApiClient:
    """Set (or clear, with None) the moment the client's credentials stop working."""
    client = await get_client(session, client_id)
    _live(client)
    if at is not None and at.tzinfo is None:
        raise ValueError("give the expiry with a timezone")
    client.expires_at = at
    await session.flush()
    return client


async def rotate_key(session: AsyncSession, client_id: uuid.UUID, grace_seconds: int) -> RotatedKey:
    """A new API key; the old one keeps working for `grace_seconds` (0: stops now)."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValueError(f"the grace period must be 0 to {MAX_GRACE_SECONDS} seconds")
    client = await get_client(session, client_id)
    _live(client)
    prefix, key = generate_key()
    client.previous_key_prefix = client.key_prefix
    client.previous_key_hash = client.key_hash
    client.previous_key_expires_at = utcnow() + timedelta(seconds=grace_seconds)
    client.key_prefix = prefix
    client.key_hash = hash_key(key)
    await session.flush()
    return RotatedKey(client=client, key=key)


async def list_public_keys(
    session: AsyncSession, client_id: uuid.UUID
) -> Sequence[ClientPublicKey]:
    await get_client(session, client_id)
    query = (
        select(ClientPublicKey)
        .where(ClientPublicKey.client_id == client_id)
        .order_by(ClientPublicKey.created_at, ClientPublicKey.id)
    )
    return (await session.scalars(query)).all()


async def add_public_key(
    session: AsyncSession,
    client_id: uuid.UUID,
    *,
    pem: str | None = None,
    jwks_url: str | None = None,
    kid: str | None = None,
) -> ClientPublicKey:
    """Register a PEM public key (RSA 2048+ or P-256) or a JWKS URL (https) for the client's
    assertions."""
    if (pem is None) == (jwks_url is None):
        raise ValueError("give either a PEM public key or a JWKS URL")
    if pem is not None:
        parse_public_pem(pem)
    if jwks_url is not None:
        check_jwks_url(jwks_url)
    client = await get_client(session, client_id)
    _live(client)
    now = utcnow()
    current = [
        key
        for key in await list_public_keys(session, client_id)
        if key.expires_at is None or key.expires_at > now
    ]
    if len(current) >= MAX_PUBLIC_KEYS:
        raise ValueError(f"a client may hold at most {MAX_PUBLIC_KEYS} current public keys")
    if kid is not None and any(key.kid == kid for key in current):
        raise ValueError(f"the client already has a current key with kid {kid!r}")
    key = ClientPublicKey(client_id=client_id, kid=kid, pem=pem, jwks_url=jwks_url)
    session.add(key)
    await session.flush()
    return key


async def retire_public_key(
    session: AsyncSession, client_id: uuid.UUID, key_id: uuid.UUID, grace_seconds: int
) -> ClientPublicKey:
    """The key stops verifying assertions after `grace_seconds` (0: now)."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValueError(f"the grace period must be 0 to {MAX_GRACE_SECONDS} seconds")
    key = await session.get(ClientPublicKey, key_id)
    if key is None or key.client_id != client_id:
        raise ClientNotFound(str(key_id))
    end = utcnow() + timedelta(seconds=grace_seconds)
    if key.expires_at is None or key.expires_at > end:
        key.expires_at = end
    await session.flush()
    return key


def user_assertion_config(
    issuer: str,
    audience: str,
    *,
    jwks_url: str | None = None,
    pem: str | None = None,
    user_claim: str = "sub",
    role_claim: str | None = None,
    required: bool = False,
) -> dict[str, Any]:
    """A checked identity provider configuration for ApiClient.user_assertion."""
    if not issuer.strip() or not audience.strip():
        raise ValueError("the identity provider needs an issuer and an audience")
    if (pem is None) == (jwks_url is None):
        raise ValueError("give the identity provider's JWKS URL or its PEM public key")
    if pem is not None:
        parse_public_pem(pem)
    if jwks_url is not None:
        check_jwks_url(jwks_url)
    return {
        "issuer": issuer,
        "audience": audience,
        "jwks_url": jwks_url,
        "pem": pem,
        "user_claim": user_claim,
        "role_claim": role_claim,
        "required": required,
    }


async def configure_users(
    session: AsyncSession,
    client_id: uuid.UUID,
    config: dict[str, Any] | None,
    allow_unverified: bool,
) -> ApiClient:
    """Set the client's identity provider (None: none) and whether free-text X-On-Behalf-Of
    is still accepted."""
    client = await get_client(session, client_id)
    _live(client)
    client.user_assertion = config
    client.allow_unverified_on_behalf_of = allow_unverified
    await session.flush()
    return client
