"""`/v1/deaths/{death_id}/shares`: share a death with another organisation, list and end its
shares (app.organisations.shares)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.deps import DeathsReader, DeathsWriter
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.errors import (
    BadRequest,
    Forbidden,
    IdempotencyInFlight,
    IdempotencyMismatch,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    problem_responses,
)
from app.idempotency.responses import as_response, create_once, new
from app.models import CaseShare, Organisation
from app.organisations import shares
from app.organisations.lookup import ref_of
from app.organisations.share_schemas import ShareCreate, ShareList, ShareOut

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/deaths", tags=["shares"])
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)


def share_out(share: CaseShare, organisation: Organisation) -> ShareOut:
    return ShareOut(
        id=share.id,
        death_id=share.death_id,
        organisation=ref_of(organisation),
        purpose=shares.SharePurpose(share.purpose),
        note=share.note,
        referral_id=share.referral_id,
        starts_at=share.starts_at,
        ends_at=share.ends_at,
        revoked_at=share.revoked_at,
        active=shares.is_active(share),
        created_at=share.created_at,
        created_by_client_id=share.created_by_client_id,
    )


async def _out(session: AsyncSession, share: CaseShare) -> ShareOut:
    organisation = await session.get_one(Organisation, share.organisation_id)
    return share_out(share, organisation)


@router.post(
    "/{death_id}/shares",
    status_code=201,
    response_model=ShareOut,
    responses=problem_responses(
        *AUTH, BadRequest, NotFound, IdempotencyInFlight, IdempotencyMismatch, *BODY
    ),
)
async def create_share(
    death_id: uuid.UUID,
    body: ShareCreate,
    principal: DeathsWriter,
    database: DatabaseDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Optional: a retry with the same key and body replays the first answer.",
        ),
    ] = None,
) -> Response:
    """Share the death with another organisation for a purpose and a period: until it ends or
    is revoked, that organisation's clients see this death identifiably (a pseudonymised client
    still sees pseudonyms), can post their review or findings on it, and every access is
    audited under their organisation. Nothing else becomes visible to them.

    Only the organisation that records the death (or one whose reach holds it) shares it: a
    recipient is refused with a 403. The share is evented (`death.shared`) and audited.

    Scope: `deaths:write`.
    """

    async def work(session: AsyncSession) -> tuple[ShareOut, bool]:
        journal = Journal(principal)
        share = await shares.share_death(
            session,
            journal,
            death_id,
            body.organisation,
            body.purpose,
            body.ends_at,
            body.note,
            body.referral_id,
        )
        await journal.write(session)
        return await new(_out(session, share))

    stored = await create_once(
        database,
        principal,
        idempotency_key,
        path=f"/v1/deaths/{death_id}/shares",
        body=body,
        work=work,
        location=lambda share: f"/v1/deaths/{death_id}/shares/{share.id}",
    )
    return as_response(stored)


@router.get(
    "/{death_id}/shares",
    response_model=ShareList,
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def list_shares(
    death_id: uuid.UUID,
    principal: DeathsReader,
    database: DatabaseDep,
    active: Annotated[bool, Query(description="Only the shares in force now.")] = False,
) -> ShareList:
    """The death's shares, newest first: all of them for the organisation that records the
    death, the caller's own for an organisation it was shared with.

    Scope: `deaths:read`.
    """
    async with database.transaction() as session:
        found = await shares.list_shares(session, death_id, active_only=active)
        journal = Journal(principal)
        journal.audit("death.shares_read", "death", death_id, death_id)
        await journal.write(session)
        return ShareList(items=[share_out(share, org) for share, org in found])


@router.post(
    "/{death_id}/shares/{share_id}/revoke",
    response_model=ShareOut,
    responses=problem_responses(*AUTH, NotFound, ValidationFailed),
)
async def revoke_share(
    death_id: uuid.UUID, share_id: uuid.UUID, principal: DeathsWriter, database: DatabaseDep
) -> ShareOut:
    """End a share now: from the recipient's next request the death is invisible to it again
    (what it recorded stays with the death). Revoking an ended share changes nothing.

    Scope: `deaths:write`.
    """
    async with database.transaction() as session:
        journal = Journal(principal)
        share = await shares.revoke_share(session, journal, death_id, share_id)
        await journal.write(session)
        return await _out(session, share)
