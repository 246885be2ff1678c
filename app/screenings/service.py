"""Recording and amending screenings: the death found or created, the rules applied, the
referrals raised, all with their events and audit rows in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.audit.service import record_access
from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.config import Settings
from app.deaths.duplicates import flag_possible_duplicates
from app.deaths.organisations import DeathCodes, resolve_death_codes
from app.deaths.service import (
    SourceKeyTaken,
    death_values,
    derived_fields,
    find_by_source,
    insert_death,
    validate_death,
)
from app.deaths.status import follow_referrals
from app.deaths.validation import CLOCK_SKEW
from app.deaths.views import death_out
from app.errors import (
    Conflict,
    ValidationFailed,
)
from app.events.service import Change
from app.kit.enums import DeathStatus, Route
from app.kit.etag import Precondition
from app.kit.sql import insert_rows, load_one, row_of
from app.kit.time import now
from app.models import Death, RouteOverride, Screening, ScreeningVersion
from app.notifications.service import notified_death
from app.notifications.worklist import check_claim
from app.organisations.service import recording_organisation
from app.organisations.settings import settings_for
from app.referrals.service import (
    Reconciled,
    apply_plan,
    plan_referrals,
    reconcile_referrals,
)
from app.screenings.attach import screen_notified
from app.screenings.intake import (
    ScreeningCreate,
    ScreeningRecorded,
)
from app.screenings.schemas import ScreeningFields, ScreeningOut, ScreeningVersionOut
from app.screenings.scrutiny import check_scrutiny, scrutiny_events, scrutiny_json
from app.screenings.views import screening_out, screening_snapshot


def _screening_values(fields: ScreeningFields) -> dict[str, Any]:
    return {
        "examiner_name": fields.examiner.name,
        "examiner_gmc_number": fields.examiner.gmc_number,
        "screened_at": fields.screened_at,
        "records_reviewed": fields.records_reviewed,
        "qap_discussed": fields.qap_discussed,
        "bereaved_contacted": fields.bereaved_contacted,
        "bereaved_concerns": fields.bereaved_concerns,
        "staff_concerns": fields.staff_concerns,
        "cause_part_1a": fields.cause_of_death.part_1a,
        "cause_part_1b": fields.cause_of_death.part_1b,
        "cause_part_1c": fields.cause_of_death.part_1c,
        "cause_part_2": fields.cause_of_death.part_2,
        "mccd_issued_at": fields.mccd_issued_at,
        "coroner_notified": fields.coroner_notified,
        "coroner_reason": fields.coroner_reason.value if fields.coroner_reason else None,
        "clinical_governance_concern": fields.clinical_governance_concern,
        "death_expected": fields.death_expected,
        "patient_safety_concern": fields.patient_safety_concern,
        "routes_requested": [route.value for route in fields.routes_requested],
        "notes_received_at": fields.notes_received_at,
        "scrutiny_completed_at": fields.scrutiny_completed_at,
        "scrutiny": scrutiny_json(fields),
    }


def check_screening(fields: ScreeningFields, died_at: datetime, prefix: str) -> None:
    """The screening's own cross-field rules: after the death, not in the future, a coroner
    reason exactly when the coroner was notified."""
    errors: list[dict[str, Any]] = []
    moment = now()

    def fail(pointer: str, detail: str) -> None:
        errors.append({"pointer": f"{prefix}{pointer}", "code": "value_error", "detail": detail})

    if fields.screened_at < died_at:
        fail("/screened_at", "the screening is before the death")
    if fields.screened_at > moment + CLOCK_SKEW:
        fail("/screened_at", "the screening is in the future")
    if fields.mccd_issued_at is not None:
        if fields.mccd_issued_at < died_at:
            fail("/mccd_issued_at", "the MCCD was issued before the death")
        if fields.mccd_issued_at > moment + CLOCK_SKEW:
            fail("/mccd_issued_at", "the MCCD issue time is in the future")
    check_scrutiny(fields, died_at, moment + CLOCK_SKEW, fail)
    if fields.bereaved_contacts and not fields.bereaved_contacted:
        fail("/bereaved_contacted", "contacts with the bereaved are logged: this must be true")
    if fields.coroner_notified and fields.coroner_reason is None:
        fail("/coroner_reason", "give the reason the coroner was notified")
    if not fields.coroner_notified and fields.coroner_reason is not None:
        fail("/coroner_reason", "a coroner reason was given but the coroner was not notified")
    if errors:
        raise ValidationFailed("The screening is not possible as given; see errors.", errors=errors)


def _required_out(reconciled: Reconciled) -> list[dict[str, Any]]:
    plan = reconciled.plan
    return [
        {
            "route": route,
            "reasons": reasons,
            "outcome": "overridden" if route in plan.overrides else "referred",
        }
        for route, reasons in plan.required.items()
    ]


async def _overrides(session: AsyncSession, screening_id: uuid.UUID) -> list[RouteOverride]:
    return list(
        (
            await session.scalars(
                select(RouteOverride)
                .where(RouteOverride.screening_id == screening_id)
                .order_by(RouteOverride.route)
            )
        ).all()
    )


async def _recorded(
    session: AsyncSession, death: Death, screening: Screening, reconciled: Reconciled
) -> ScreeningRecorded:
    out = screening_out(screening, reconciled.overrides)
    referrals = sorted(reconciled.referrals, key=lambda r: (r.created_at, r.route))
    return ScreeningRecorded.model_validate(
        {
            **out.model_dump(),
            "death": await death_out(session, death),
            "required_routes": _required_out(reconciled),
            "referrals": referrals,
        }
    )


async def record_screening(
    session: AsyncSession, principal: Principal, settings: Settings, body: ScreeningCreate
) -> ScreeningRecorded:
    """Create the death and its screening and raise the referrals the rules call for. The
    rules are planned before anything is written, so a refused override writes nothing and
    the death is inserted once, with its final status."""
    values = death_values(body.death)
    validate_death(values, "/death")
    check_screening(body.screening, body.death.died_at, "/screening")
    values.update(derived_fields(values), id=uuid.uuid4())
    values.update(
        await resolve_death_codes(session, principal, DeathCodes.of(body.death), "/death")
    )
    notified = await notified_death(
        session,
        principal,
        body.death.source_system,
        body.death.source_reference,
        values.get("nhs_number"),
        values["died_on"],
    )
    if notified is not None:
        if notified.status != DeathStatus.awaiting_screening:
            await _raise_duplicate(session, principal, body, notified)
        await check_claim(session, principal, notified, body.worklist_lease_id)
        del values["id"]
        # The notified death keeps its organisation; the codes' site and practice complete it.
        values.pop("organisation_id", None)
        screened, done, reconciled = await screen_notified(
            session, principal, settings, body, notified, values, _screening_values(body.screening)
        )
        return await _recorded(session, screened, done, reconciled)
    # The death's organisation's referral rules (app.organisations.settings).
    values["organisation_id"] = values.get("organisation_id") or await recording_organisation(
        session, principal
    )
    settings = await settings_for(session, settings, values["organisation_id"])
    planned_death = Death(**values)
    screening = Screening(
        id=uuid.uuid4(),
        death_id=planned_death.id,
        organisation_id=planned_death.organisation_id,
        died_on=planned_death.died_on,
        recorded_by_client_id=principal.client_id,
        version=1,
        **_screening_values(body.screening),
    )
    overrides = {override.route: override.reason for override in body.screening.overrides}
    plan = plan_referrals(
        settings, planned_death, screening, overrides, pointer_prefix="/screening"
    )
    status = DeathStatus.under_review if plan.desired else DeathStatus.screened
    death = await insert_death(session, principal, values, status)
    if death is None:
        await _raise_duplicate(session, principal, body)
        raise AssertionError("unreachable")
    screening.created_at = screening.updated_at = death.created_at
    await insert_rows(session, Screening, [row_of(screening)])
    # The same NHS number under another source reference: flagged, never merged.
    await flag_possible_duplicates(session, death)
    journal = Journal(principal)
    reconciled = await apply_plan(
        session, journal, settings, death, screening, plan, new_death=True
    )
    journal.event(Change("death.created", "death", death.id, death.id))
    journal.event(Change("screening.recorded", "screening", screening.id, death.id))
    for kind in scrutiny_events(None, screening.scrutiny):
        journal.event(Change(kind, "screening", screening.id, death.id))
    journal.audit("death.create", "death", death.id, death.id)
    journal.audit("screening.create", "screening", screening.id, death.id)
    await journal.write(session)
    return await _recorded(session, death, screening, reconciled)


async def _raise_duplicate(
    session: AsyncSession, principal: Principal, body: ScreeningCreate, known: Death | None = None
) -> None:
    """409 for a death the sender already reported, linking to what exists: for the client
    that reported it, or one that may read deaths. Any other client learns only that the
    reference is taken (the unique key it collided with), not which death holds it; a key
    held by a death out of the client's scope (another organisation's) is SourceKeyTaken."""
    existing = known or await find_by_source(
        session, body.death.source_system, body.death.source_reference
    )
    if existing is None:
        raise SourceKeyTaken("/death/source_reference")
    extra: dict[str, Any] = {}
    if existing.created_by_client_id == principal.client_id or principal.has(Scope.deaths_read):
        links: dict[str, str] = {"death_id": str(existing.id), "death": f"/v1/deaths/{existing.id}"}
        screening_id = await session.scalar(
            select(Screening.id).where(Screening.death_id == existing.id)
        )
        if screening_id is not None:
            links["screening_id"] = str(screening_id)
            links["screening"] = f"/v1/screenings/{screening_id}"
        extra["existing"] = links
    raise Conflict(
        "This death (source_system + source_reference) already has a screening. Amend it "
        "with PUT on the existing screening, using its ETag in If-Match.",
        extra=extra,
    )


async def _load(
    session: AsyncSession, screening_id: uuid.UUID, *, for_update: bool = False
) -> Screening:
    return await load_one(session, Screening, screening_id, "screening", for_update=for_update)


async def read_screening(
    session: AsyncSession, principal: Principal, screening_id: uuid.UUID
) -> ScreeningOut:
    screening = await _load(session, screening_id)
    await record_access(
        session, principal, "screening.read", "screening", [(screening.id, screening.death_id)]
    )
    return screening_out(screening, await _overrides(session, screening.id))


async def screening_versions(
    session: AsyncSession, principal: Principal, screening_id: uuid.UUID
) -> list[ScreeningVersionOut]:
    screening = await _load(session, screening_id)
    rows: Sequence[ScreeningVersion] = (
        await session.scalars(
            select(ScreeningVersion)
            .where(ScreeningVersion.screening_id == screening.id)
            .order_by(ScreeningVersion.version)
        )
    ).all()
    await record_access(
        session, principal, "screening.history", "screening", [(screening.id, screening.death_id)]
    )
    return [ScreeningVersionOut.model_validate(row) for row in rows]


async def amend_screening(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    screening_id: uuid.UUID,
    fields: ScreeningFields,
    if_match: Precondition,
) -> ScreeningRecorded:
    """Replace a screening with its amended version, keep the old one, and bring the referrals
    in line with what the rules now require."""
    screening = await _load(session, screening_id, for_update=True)
    if_match.check(screening.id, screening.version)
    death = await session.get_one(Death, screening.death_id)
    check_screening(fields, death.died_at, "")
    before = screening_snapshot(screening, await _overrides(session, screening.id))
    before_scrutiny = screening.scrutiny
    values = _screening_values(fields)
    changed = [name for name, value in values.items() if getattr(screening, name) != value]
    overrides = {override.route: override.reason for override in fields.overrides}
    previous_overrides = {Route(o["route"]): o["override_reason"] for o in before["overrides"]}
    if overrides != previous_overrides:
        changed.append("overrides")
    journal = Journal(principal)
    if changed:
        session.add(
            ScreeningVersion(
                screening_id=screening.id,
                version=screening.version,
                snapshot=before,
                superseded_by_client_id=principal.client_id,
            )
        )
        for name, value in values.items():
            setattr(screening, name, value)
        screening.version += 1
        journal.event(Change("screening.amended", "screening", screening.id, death.id, changed))
        for kind in scrutiny_events(before_scrutiny, screening.scrutiny):
            journal.event(Change(kind, "screening", screening.id, death.id))
        journal.audit("screening.amend", "screening", screening.id, death.id)
    else:
        # Nothing to amend: no new version; reconciling below changes nothing either.
        journal.audit("screening.read", "screening", screening.id, death.id)
    reconciled = await reconcile_referrals(session, journal, settings, death, screening, overrides)
    if await follow_referrals(session, death, reconciled.referrals):
        death.version += 1
        journal.event(Change("death.updated", "death", death.id, death.id, ["status"]))
    await journal.write(session)
    return await _recorded(session, death, screening, reconciled)
