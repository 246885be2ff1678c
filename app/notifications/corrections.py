"""A notification sent again under a key already recorded (app.notifications.identity says
what the key was sent about):

- of another patient: refused (409 ``notification-key-conflict``), nothing stored; the sender
  must not reuse a reference for a second patient, and the service must not drop that death;
- of the same patient with the same death: a replay (a retry), nothing changes;
- of the same patient in a message older than the last one recorded under the key (an
  interface engine resending out of order): a replay too;
- of the same patient with other details: a **correction**. It is applied to the death while
  the death awaits screening (each field it gives replaces the death's, a field it leaves out
  is kept, the four rule flags are kept when either side set them, as a screening completes a
  notified death), and recorded without being applied once the death is screened (the ME
  office corrects a screened death: PATCH /v1/deaths/{id}). Either way the notification row
  keeps the new content hash, message id and time, `corrected_at` and the outcome; the event
  ``death.notification_corrected`` (applied, with ``death.updated`` when a field changed) or
  ``death.correction_not_applied`` (for the ME office to decide), and the audit row
  ``death_notification.correct``, say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.deaths.duplicates import flag_possible_duplicates
from app.deaths.organisations import DeathCodes, resolve_death_codes
from app.deaths.service import DERIVED, derived_fields, load_death, validate_death
from app.deaths.validation import default_nhs_number_status
from app.errors import Conflict
from app.events.service import Change
from app.kit.enums import DeathStatus
from app.kit.time import now
from app.models import Death, DeathNotification
from app.notifications.identity import KEYS, content_hash, merged_keys, same_patient
from app.notifications.schemas import Correction
from app.organisations.ownership import check_owner

FLAGS = ("learning_disability", "autism", "serious_mental_illness", "pregnant_or_recently_pregnant")


class KeyReused(Conflict):
    slug, title = "notification-key-conflict", "The sender's key names another patient"

    def __init__(self) -> None:
        detail = (
            "This source_system + source_reference already names a notification of another "
            "patient; send this death under a reference of its own."
        )
        super().__init__(
            detail,
            errors=[
                {
                    "pointer": "/source_reference",
                    "code": "key_names_another_patient",
                    "detail": "already names a notification of another patient",
                }
            ],
        )


@dataclass(frozen=True)
class Sent:
    """A notification as sent: the death's fields (not yet validated or derived), the
    organisations it names by code, the message's id and time, and whether it gave the NHS
    number's status."""

    values: dict[str, Any]
    codes: DeathCodes
    message: dict[str, Any]
    status_sent: bool

    @property
    def content(self) -> dict[str, Any]:
        """What the content hash covers: the fields and the organisation codes."""
        return {**self.values, **asdict(self.codes)}


def check_same_patient(key: bytes, notification: DeathNotification, values: dict[str, Any]) -> None:
    """409 unless the values are of the patient the key was first sent about (a row recorded
    before the hashes existed is taken on trust, as it was then)."""
    if notification.patient_keys is None:
        return
    if not same_patient(key, notification.patient_keys, values):
        raise KeyReused()


def is_correction(key: bytes, notification: DeathNotification, sent: Sent) -> bool:
    """Other details of the same patient, in a message not older than the last one recorded."""
    if (
        notification.content_hash is None
        or content_hash(key, sent.content) == notification.content_hash
    ):
        return False
    sent_at: datetime | None = sent.message["sent_at"]
    return sent_at is None or notification.sent_at is None or sent_at >= notification.sent_at


def corrected(death: Death, values: dict[str, Any], status_sent: bool) -> dict[str, Any]:
    """The death's fields as the correction makes them (see the module's rules)."""
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name in KEYS:
            continue
        if name in FLAGS:
            result[name] = bool(value) or bool(getattr(death, name))
        elif value is not None:
            result[name] = value
        else:
            result[name] = getattr(death, name)
    if not status_sent:
        # A status the sender did not send: the death's stays, unless the number changed.
        result["nhs_number_status"] = (
            death.nhs_number_status
            if result["nhs_number"] == death.nhs_number
            else default_nhs_number_status(result["nhs_number"]).value
        )
    return result


async def correct(
    session: AsyncSession,
    principal: Principal,
    key: bytes,
    notification: DeathNotification,
    sent: Sent,
) -> Death:
    """Apply (or record) a correction; the death as it now stands. The organisations it names
    by code are resolved as for a new notification (422 for a code the registry lacks), and
    set the site and GP practice; who owns the death does not change."""
    values, message = sent.values, sent.message
    validate_death(values, "")
    organisations = await resolve_death_codes(session, None, sent.codes)
    death = await load_death(session, notification.death_id, for_update=True)
    # A notification of a death shared with the client's organisation: not its to correct.
    check_owner(death.organisation_id, death.id, "notifications")
    journal = Journal(principal)
    changed: list[str] = []
    if death.status == DeathStatus.awaiting_screening:
        update = corrected(death, values, sent.status_sent)
        validate_death(update, "")
        update.update(derived_fields(update))
        update.update(organisations)
        changed = [name for name, value in update.items() if getattr(death, name) != value]
        for name in changed:
            setattr(death, name, update[name])
        if changed:
            death.version += 1
            death.updated_at = now()
        outcome = Correction.applied
    else:
        outcome = Correction.not_applied
    notification.content_hash = content_hash(key, sent.content)
    notification.patient_keys = merged_keys(key, notification.patient_keys or {}, values)
    notification.sent_at = message["sent_at"]
    notification.message_id = message["message_id"]
    notification.corrected_at = now()
    notification.correction = outcome.value
    await session.flush()
    if "nhs_number" in changed:
        await flag_possible_duplicates(session, death)
    shown = [name for name in changed if name not in DERIVED]
    if shown:
        journal.event(Change("death.updated", "death", death.id, death.id, shown))
        journal.audit("death.update", "death", death.id, death.id)
    kind = (
        "death.notification_corrected"
        if outcome == Correction.applied
        else "death.correction_not_applied"
    )
    journal.event(Change(kind, "death_notification", notification.id, death.id, shown))
    journal.audit("death_notification.correct", "death_notification", notification.id, death.id)
    await journal.write(session)
    return death
