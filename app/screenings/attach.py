"""A screening of a death that was notified first (app.notifications): the notified death is
completed with what the medical examiner sent and screened, instead of a second death.

What the screening's death says replaces what the notification said, field by field, where
the screening gives a value; what only the notification gave (a ward, a discharge time) is
kept. The four flags the referral rules read (learning disability, autism, serious mental
illness, pregnancy) are kept when either side set them: a flag a sender did not send reads as
false, and the rules must not lose a LeDeR notification to an omission."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.config import Settings
from app.deaths.duplicates import flag_possible_duplicates
from app.deaths.schemas import DeathOut
from app.deaths.service import derived_fields, validate_death
from app.events.service import Change
from app.kit.enums import DeathStatus
from app.kit.sql import insert_rows, row_of
from app.models import Death, Screening
from app.notifications.service import remember_key
from app.notifications.worklist import end_claim
from app.organisations.settings import settings_for
from app.referrals.service import apply_plan, plan_referrals
from app.screenings.intake import ScreeningCreate
from app.screenings.scrutiny import scrutiny_events

FLAGS = ("learning_disability", "autism", "serious_mental_illness", "pregnant_or_recently_pregnant")
KEYS = ("source_system", "source_reference")


def merged(death: Death, values: dict[str, Any]) -> dict[str, Any]:
    current = DeathOut.model_validate(death).model_dump(mode="python")
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name in KEYS:
            continue
        if name in FLAGS:
            result[name] = bool(value) or bool(current[name])
        elif value is not None:
            result[name] = value
        else:
            result[name] = getattr(death, name)
    return result


def _notes_from_worklist(death: Death, values: dict[str, Any]) -> dict[str, Any]:
    """The notes' arrival the ME office recorded on the worklist, for a screening that gives
    none of its own, where it fits the screening (after the death, not after the scrutiny)."""
    notes = death.notes_received_at
    if values.get("notes_received_at") is not None or notes is None or notes < death.died_at:
        return {}
    completed = values.get("scrutiny_completed_at")
    if completed is not None and completed < notes:
        return {}
    return {"notes_received_at": notes}


async def screen_notified(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    body: ScreeningCreate,
    death: Death,
    values: dict[str, Any],
    screening_values: dict[str, Any],
) -> tuple[Death, Screening, Any]:
    """Complete and screen a notified death (locked by the caller); the death, the screening
    and the reconciled referrals. Nothing is written when the merged death is not possible."""
    update = merged(death, values)
    validate_death(update, "/death")
    update.update(derived_fields(update))
    changed = [name for name, value in update.items() if getattr(death, name) != value]
    for name, value in update.items():
        setattr(death, name, value)
    screening_values = {**screening_values, **_notes_from_worklist(death, screening_values)}
    screening = Screening(
        id=uuid.uuid4(),
        death_id=death.id,
        organisation_id=death.organisation_id,
        died_on=death.died_on,
        recorded_by_client_id=principal.client_id,
        version=1,
        **screening_values,
    )
    overrides = {override.route: override.reason for override in body.screening.overrides}
    # The rules of the death's organisation (app.organisations.settings).
    settings = await settings_for(session, settings, death.organisation_id)
    plan = plan_referrals(settings, death, screening, overrides, pointer_prefix="/screening")
    death.status = (DeathStatus.under_review if plan.desired else DeathStatus.screened).value
    death.version += 1
    await session.flush()
    screening.created_at = screening.updated_at = death.updated_at
    await insert_rows(session, Screening, [row_of(screening)])
    await remember_key(
        session, principal, death, body.death.source_system, body.death.source_reference
    )
    await end_claim(session, death.id)
    if "nhs_number" in changed:
        await flag_possible_duplicates(session, death)
    journal = Journal(principal)
    # The death had no screening, so it has no referrals or overrides to read first.
    reconciled = await apply_plan(
        session, journal, settings, death, screening, plan, new_death=True
    )
    journal.event(Change("death.updated", "death", death.id, death.id, [*changed, "status"]))
    journal.event(Change("screening.recorded", "screening", screening.id, death.id))
    for kind in scrutiny_events(None, screening.scrutiny):
        journal.event(Change(kind, "screening", screening.id, death.id))
    journal.audit("death.update", "death", death.id, death.id)
    journal.audit("screening.create", "screening", screening.id, death.id)
    await journal.write(session)
    return death, screening, reconciled
