"""API client administration (used by the command line)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import generate_key, hash_key, matches, split_key
from app.auth.scopes import PSEUDONYMISED_SCOPES, Scope
from app.models import ApiClient
from app.models.base import utcnow
from app.reach import default_organisation_id


@dataclass(frozen=True)
class CreatedClient:
    client: ApiClient
    key: str


async def create_client(
    session: AsyncSession,
    name: str,
    scopes: Sequence[Scope],
    pseudonymised: bool = False,
    organisation_id: uuid.UUID | None = None,
    deployment_level: bool = False,
) -> CreatedClient:
    """A new client of ``organisation_id`` (the default organisation when none is given), or,
    with ``deployment_level``, of none: such a client may manage organisations but reads and
    records no patient data (app.scoping)."""
    if not name.strip():
        raise ValueError("a client needs a name")
    if not scopes:
        raise ValueError("a client needs at least one scope")
    refused = sorted(scope.value for scope in set(scopes) - PSEUDONYMISED_SCOPES)
    if pseudonymised and refused:
        raise ValueError(
            f"a pseudonymised client cannot hold {', '.join(refused)}; it may hold only "
            f"{', '.join(sorted(scope.value for scope in PSEUDONYMISED_SCOPES))}"
        )
    prefix, key = generate_key()
    client = ApiClient(
        name=name.strip(),
        key_prefix=prefix,
        key_hash=hash_key(key),
        scopes=sorted({scope.value for scope in scopes}),
        pseudonymised=pseudonymised,
        organisation_id=None
        if deployment_level
        else organisation_id or await default_organisation_id(session),
    )
    session.add(client)
    await session.flush()
    return CreatedClient(client=client, key=key)


async def list_clients(session: AsyncSession, include_revoked: bool = False) -> Sequence[ApiClient]:
    query = select(ApiClient).order_by(ApiClient.created_at, ApiClient.name)
    if not include_revoked:
        query = query.where(ApiClient.revoked_at.is_(None))
    return (await session.scalars(query)).all()


async def revoke_client(session: AsyncSession, client_id: uuid.UUID) -> ApiClient | None:
    client = await session.get(ApiClient, client_id)
    if client is None:
        return None
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        await session.flush()
    return client


async def find_active_client(session: AsyncSession, key: str) -> ApiClient | None:
    prefix = split_key(key)
    if prefix is None:
        return None
    client = await session.scalar(
        select(ApiClient).where(
            or_(ApiClient.key_prefix == prefix, ApiClient.previous_key_prefix == prefix),
            ApiClient.revoked_at.is_(None),
        )
    )
    if client is None:
        return None
    now = utcnow()
    if client.expires_at is not None and client.expires_at <= now:
        return None
    if client.key_prefix == prefix:
        return client if matches(key, client.key_hash) else None
    # A rotated key, during its grace period (app.clients.service.rotate_key).
    in_grace = client.previous_key_expires_at is not None and client.previous_key_expires_at > now
    previous = client.previous_key_hash
    return client if in_grace and previous is not None and matches(key, previous) else None
