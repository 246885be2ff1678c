"""The whole case of one death: read it (with its screening, referrals and reviews) and
correct the death's details, with everything that follows from a correction (the referral
rules run again, the copies of the date of death on other rows, the death's status)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.audit.service import record_access
from app.auth.principal import Principal
from app.cases.schemas import DeathDetail
from app.config import Settings
from app.deaths.duplicates import flag_possible_duplicates, links_of
from app.deaths.organisations import DeathCodes, resolve_death_codes
from app.deaths.schemas import ORGANISATION_CODES, DeathFields, DeathPatch
from app.deaths.service import DERIVED, derived_fields, load_death, validate_death
from app.deaths.status import follow_referrals
from app.deaths.validation import default_nhs_number_status
from app.deaths.views import named, refs_of
from app.errors import ValidationFailed
from app.events.service import Change
from app.findings.service import refresh_death_copies
from app.kit.enums import Route
from app.kit.etag import Precondition
from app.models import Death, ProgrammeCase, Referral, Review, RouteOverride, Screening
from app.organisations.ownership import check_owner
from app.referrals.schemas import viewing
from app.referrals.service import reconcile_referrals
from app.reviews.views import reviews_of_death
from app.screenings.views import screening_out


async def detail(session: AsyncSession, death: Death, viewer: uuid.UUID) -> DeathDetail:
    screening = await session.scalar(select(Screening).where(Screening.death_id == death.id))
    overrides: list[RouteOverride] = []
    if screening is not None:
        overrides = list(
            (
                await session.scalars(
                    select(RouteOverride)
                    .where(RouteOverride.screening_id == screening.id)
                    .order_by(RouteOverride.route)
                )
            ).all()
        )
    referrals = (
        await session.scalars(
            select(Referral)
            .where(Referral.death_id == death.id)
            .order_by(Referral.created_at, Referral.route)
        )
    ).all()
    links = await links_of(session, death.id)
    base = DeathDetail.model_validate(
        {
            **{k: getattr(death, k) for k in DeathDetail.model_fields if hasattr(death, k)},
            **named(death, await refs_of(session, [death])),
            "screening": screening_out(screening, overrides) if screening else None,
            "referrals": list(referrals),
            "reviews": await reviews_of_death(session, death.id),
            "possible_duplicate_of": links.possible_duplicate_of,
            "same_person_as": links.same_person_as,
        },
        context=viewing(viewer),  # the viewer's own lease ids show on its referrals
    )
    return base


async def read_death(
    session: AsyncSession, principal: Principal, death_id: uuid.UUID
) -> DeathDetail:
    death = await load_death(session, death_id)
    await record_access(session, principal, "death.read", "death", [(death.id, death.id)])
    return await detail(session, death, principal.client_id)


async def patch_death(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    death_id: uuid.UUID,
    patch: DeathPatch,
    if_match: Precondition,
) -> DeathDetail:
    """Correct a death's details. Derived fields follow, and when the correction changes what
    the referral rules see, the referrals follow too."""
    death = await load_death(session, death_id, for_update=True)
    check_owner(death.organisation_id, death.id, "details")
    if_match.check(death.id, death.version)
    journal = Journal(principal)
    changes = patch.model_dump(exclude_unset=True, mode="python")
    required = {
        "date_of_birth",
        "sex",
        "died_at",
        "place_of_death",
        "admission_method",
        "learning_disability",
        "autism",
        "serious_mental_illness",
        "pregnant_or_recently_pregnant",
    }
    nulls = [
        {
            "pointer": f"/{name}",
            "code": "null_not_allowed",
            "detail": "this field cannot be cleared",
        }
        for name, value in changes.items()
        if value is None and name in required
    ]
    if nulls:
        raise ValidationFailed("Some fields cannot be cleared.", errors=nulls)
    changes = {k: (v.value if hasattr(v, "value") else v) for k, v in changes.items()}
    organisations = await _patched_organisations(session, changes)
    if (
        "nhs_number" in changes
        and "nhs_number_status" not in changes
        and changes["nhs_number"] != death.nhs_number
    ):
        # A new number has not been traced; resending the same one keeps its status.
        changes["nhs_number_status"] = default_nhs_number_status(changes["nhs_number"]).value
    if changes.get("nhs_number_status", "") is None:
        changes["nhs_number_status"] = default_nhs_number_status(
            changes.get("nhs_number", death.nhs_number)
        ).value
    current = {name: getattr(death, name) for name in DeathFields.model_fields}
    merged = {**current, **changes}
    validate_death(merged, "")
    merged.update(derived_fields(merged))
    merged.update(organisations)
    changed = [name for name, value in merged.items() if getattr(death, name) != value]
    if changed:
        for name in changed:
            setattr(death, name, merged[name])
        if {"died_on", "specialty_at_death", "admitting_specialty"} & set(changed):
            await refresh_death_copies(session, death)
        if "died_on" in changed:
            await copy_died_on(session, death)
        if "nhs_number" in changed:
            await flag_possible_duplicates(session, death)
        death.version += 1
        journal.event(
            Change(
                "death.updated",
                "death",
                death.id,
                death.id,
                [name for name in changed if name not in DERIVED],
            )
        )
        screening = await session.scalar(select(Screening).where(Screening.death_id == death.id))
        if screening is not None:
            overrides = await _current_overrides(session, screening)
            reconciled = await reconcile_referrals(
                session, journal, settings, death, screening, overrides
            )
            await follow_referrals(session, death, reconciled.referrals)
    journal.audit("death.update", "death", death.id, death.id)
    await journal.write(session)
    return await detail(session, death, principal.client_id)


async def _patched_organisations(session: AsyncSession, changes: dict[str, Any]) -> dict[str, Any]:
    """The site and practice columns a correction's ODS codes set (taken out of ``changes``):
    a code resolved in the registry, ``null`` clearing it. The death's owner does not change."""
    given = {name: changes.pop(name) for name in ORGANISATION_CODES if name in changes}
    codes = DeathCodes(given.get("site_ods_code"), given.get("registered_gp_practice_ods_code"))
    values = await resolve_death_codes(session, None, codes)
    if "site_ods_code" in given:
        values.setdefault("site_organisation_id", None)
    if "registered_gp_practice_ods_code" in given:
        values.setdefault("gp_practice_organisation_id", None)
    return values


async def copy_died_on(session: AsyncSession, death: Death) -> None:
    """A corrected local date of death, onto the rows that carry a copy of it so that reports
    read a period's rows by it (findings: refresh_death_copies; a review programme's cases too)."""
    for model in (Screening, RouteOverride, Referral, Review, ProgrammeCase):
        await session.execute(
            update(model).where(model.death_id == death.id).values(died_on=death.died_on)
        )


async def _current_overrides(session: AsyncSession, screening: Screening) -> dict[Route, str]:
    rows = (
        await session.scalars(
            select(RouteOverride).where(RouteOverride.screening_id == screening.id)
        )
    ).all()
    return {Route(row.route): row.override_reason for row in rows}
