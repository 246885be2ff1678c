"""The organisations a death names by ODS code (issue 16): the site of death and the registered
GP practice, resolved in the registry, and the organisation the death belongs to.

Who owns a new death: the posting client's organisation, except when that organisation stands
above the site's trust in the registry (an ICB, or a shared service registered as the trusts'
parent): then the death belongs to the trust of the site (the site's parent, or the trust the
code names). The trust must be within the client's data scope (app.scoping): a client does not
record what it could not then read (403). A site of a trust that is not below the client's
organisation is recorded as the site of death, and the death stays the client's.
docs/organisations.md has the rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import Forbidden, ValidationFailed, field_error
from app.models import Organisation
from app.organisations.lookup import LOAD_HINT, ancestors, resolve_organisation
from app.scoping import current_scope

# Kinds that are not a place of death: a commissioner, a practice (a death in the community
# names its practice in registered_gp_practice_ods_code), a council.
NOT_A_SITE = frozenset({"icb", "sub_icb", "gp_practice", "local_authority"})


@dataclass(frozen=True)
class DeathCodes:
    site_ods_code: str | None = None
    registered_gp_practice_ods_code: str | None = None

    @classmethod
    def of(cls, body: Any) -> DeathCodes:
        return cls(
            getattr(body, "site_ods_code", None),
            getattr(body, "registered_gp_practice_ods_code", None),
        )


async def _site(
    session: AsyncSession, code: str, pointer: str, errors: list[dict[str, Any]]
) -> Organisation | None:
    site = await resolve_organisation(session, code)
    if site is None:
        detail = f"no organisation in the registry has this ODS code: {LOAD_HINT}"
        errors.append(field_error(pointer, detail, "unknown"))
    elif site.kind in NOT_A_SITE:
        errors.append(
            field_error(
                pointer,
                f"this code names an organisation of kind `{site.kind}`, not a site or a trust",
                "wrong_kind",
            )
        )
        return None
    return site


async def resolve_death_codes(
    session: AsyncSession,
    principal: Principal | None,
    codes: DeathCodes,
    prefix: str = "",
) -> dict[str, Any]:
    """The death's columns the codes set: ``site_organisation_id`` and
    ``gp_practice_organisation_id`` for the codes given, and ``organisation_id`` when the
    site's trust owns the death (``principal`` None: ownership is not the codes' to decide).
    A code the registry lacks, or of the wrong kind, is a 422 naming the field."""
    errors: list[dict[str, Any]] = []
    values: dict[str, Any] = {}
    site: Organisation | None = None
    if codes.site_ods_code is not None:
        site = await _site(session, codes.site_ods_code, f"{prefix}/site_ods_code", errors)
        values["site_organisation_id"] = site.id if site is not None else None
    if codes.registered_gp_practice_ods_code is not None:
        pointer = f"{prefix}/registered_gp_practice_ods_code"
        practice = await resolve_organisation(session, codes.registered_gp_practice_ods_code)
        if practice is None:
            errors.append(
                field_error(
                    pointer,
                    f"no GP practice in the registry has this ODS code: {LOAD_HINT}",
                    "unknown",
                )
            )
        elif practice.kind != "gp_practice":
            errors.append(
                field_error(
                    pointer,
                    f"this code names an organisation of kind `{practice.kind}`, not a GP practice",
                    "wrong_kind",
                )
            )
        else:
            values["gp_practice_organisation_id"] = practice.id
    if errors:
        raise ValidationFailed(
            "The death names an organisation the registry does not hold as given; see errors.",
            errors=errors,
        )
    if site is not None and principal is not None and principal.organisation_id is not None:
        owner = await _owner(session, principal.organisation_id, site)
        if owner is not None:
            values["organisation_id"] = owner
    return values


async def _owner(
    session: AsyncSession, client_organisation: uuid.UUID, site: Organisation
) -> uuid.UUID | None:
    """The site's trust when it lies below the client's organisation, else None (the client's
    own organisation records the death)."""
    trust = site
    if site.kind == "site" and site.parent_id is not None:
        parent = await session.get(Organisation, site.parent_id)
        trust = parent if parent is not None else site
    if trust.id == client_organisation:
        return None
    if client_organisation not in await ancestors(session, trust):
        return None
    if not current_scope().sees_organisation(trust.id):
        raise Forbidden(
            "The site belongs to a trust below this client's organisation, so the death would "
            "be that trust's, but this client may not read that trust's deaths. Post it with a "
            "client of the trust (`lfd clients create --organisation ODS_CODE`)."
        )
    return trust.id
