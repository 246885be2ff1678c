"""Which organisation a new record belongs to, and the registry's lookups."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import Forbidden
from app.reach import default_organisation_id


async def recording_organisation(
    session: AsyncSession, principal: Principal, system: bool = False
) -> uuid.UUID:
    """The organisation a record the principal creates belongs to: its client's; the default
    organisation for the service's own work (``system=True``). A deployment-level client (no
    organisation) records nothing that holds patient data."""
    if principal.organisation_id is not None:
        return principal.organisation_id
    if system:
        return await default_organisation_id(session)
    raise Forbidden(
        "This client belongs to no organisation (a deployment-level client): it may manage "
        "organisations but records no deaths or plans. Use a client of the organisation "
        "(`lfd clients create --organisation ODS_CODE`)."
    )
