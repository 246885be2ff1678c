"""Death notification bodies: the death as the sending system knows it (the same fields, and
the same validation, as a screening's death), with the sender's key and message time."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import Field, PrivateAttr

from app.deaths.schemas import DeathCreate, DeathOut, Text100
from app.kit.schemas import RequestModel, ResponseModel, Timestamp

CHANNEL = (
    "How the notification came: `json`, `hl7v2` (an ADT message), `fhir` or `screening` "
    "(a screening of a death not notified before)."
)
DEATH = "The death the notification created or found."
CORRECTION = (
    "The last correction's outcome: `applied` (to the death, which awaited screening) or "
    "`not_applied` (the death was already screened: recorded only, the ME office corrects the "
    "death); null when never corrected."
)


class Correction(StrEnum):
    applied = "applied"
    not_applied = "not_applied"


class Channel(StrEnum):
    json = "json"
    hl7v2 = "hl7v2"
    fhir = "fhir"
    screening = "screening"


class NotificationCreate(DeathCreate):
    """A trust system's notification of a death: the patient, the time and place of death,
    site and ward, specialty, the admission (and, for a death in the community, the discharge
    before it). `source_system` + `source_reference` are the sender's key for the notification:
    sent again, it finds what the first one made."""

    sent_at: Timestamp | None = Field(
        default=None, description="When the sending system sent or recorded the notification."
    )
    message_id: Text100 | None = Field(
        default=None, description="The sender's id for the message (e.g. HL7 MSH-10)."
    )


class NotificationOut(ResponseModel):
    id: uuid.UUID
    death_id: uuid.UUID
    source_system: str
    source_reference: str
    channel: Channel = Field(description=CHANNEL)
    received_at: datetime = Field(description="When the service received the notification.")
    sent_at: datetime | None = Field(
        description="When the sending system sent or recorded it, if it said."
    )
    message_id: str | None = Field(description="The sender's id for the message, if it gave one.")
    corrected_at: datetime | None = Field(
        default=None,
        description="When the sender last corrected the notification (the same key and patient, "
        "other details), if it has.",
    )
    correction: Correction | None = Field(default=None, description=CORRECTION)


class NotificationRecorded(NotificationOut):
    """The notification with the death it created or found."""

    death_created: bool = Field(
        description="true when this notification created the death; false when the death was "
        "already known (the same patient and date of death, notified before or screened)."
    )
    death: DeathOut = Field(description=DEATH)
    # What this request's notification was, when it was (or resent) a correction: the answer's
    # Notification-Correction header (app.notifications.submit). Not part of the body.
    _correction: Correction | None = PrivateAttr(default=None)

    def as_correction(self, outcome: Correction | None) -> NotificationRecorded:
        self._correction = outcome
        return self

    @property
    def answered_correction(self) -> Correction | None:
        return self._correction


class WorklistClaimRequest(RequestModel):
    lease_seconds: int | None = Field(
        default=None,
        ge=60,
        description="How long the lease lasts; LFD_LEASE_DEFAULT_SECONDS (1800) when absent, "
        "at most LFD_LEASE_MAX_SECONDS (86400).",
    )


class LeaseRequest(RequestModel):
    lease_id: uuid.UUID
    lease_seconds: int | None = Field(default=None, ge=60)


class ReleaseRequest(RequestModel):
    lease_id: uuid.UUID


class ClaimOut(ResponseModel):
    death_id: uuid.UUID
    lease_id: uuid.UUID | None = Field(
        description="Shown only to the client that holds the lease; present it to renew or release."
    )
    leased_to: str | None = Field(description="The person the claim was made for, if named.")
    claimed_at: datetime
    lease_expires_at: datetime
    held_by_you: bool = Field(description="Whether the calling client holds the lease.")


class NotesReceivedRequest(RequestModel):
    notes_received_at: Timestamp = Field(
        description="When the ME office received the notes (after the death, not in the future)."
    )
    lease_id: uuid.UUID | None = Field(
        default=None,
        description="The death's worklist lease, when it is claimed: needed while a live lease "
        "holds it (only its holder may record the notes), as for a screening.",
    )


MCCD_OVERDUE = "Whether the MCCD is past its due time (`mccd_due_at`) and not yet issued."
SCRUTINY_OVERDUE = (
    "Whether the scrutiny is past its due time (`scrutiny_due_at`: 24 hours after the notes "
    "were received); false while the notes' arrival is not recorded."
)


class WorklistItem(ResponseModel):
    """A death awaiting the medical examiner's scrutiny, with its waiting time and targets."""

    death: DeathOut = Field(description="The death awaiting scrutiny.")
    notified_at: datetime | None = Field(
        description="When the first notification arrived (the death's creation otherwise)."
    )
    waiting_hours: float = Field(description="Hours since the death was notified.")
    hours_since_death: float = Field(description="Hours since the time of death.")
    mccd_due_at: datetime = Field(
        description="When the MCCD is due under the death-to-MCCD target "
        "(LFD_ME_MCCD_TARGET_DAYS, default 3 days after the death)."
    )
    mccd_overdue: bool = Field(description=MCCD_OVERDUE)
    notes_received_at: datetime | None = Field(
        description="When the ME office received the notes, if recorded "
        "(`PUT /v1/me/worklist/{death_id}/notes-received`)."
    )
    scrutiny_due_at: datetime | None = Field(
        description="When the scrutiny is due under the 24-hour target (notes received to "
        "scrutiny); null while the notes' arrival is not recorded."
    )
    scrutiny_overdue: bool = Field(description=SCRUTINY_OVERDUE)
    claim: ClaimOut | None = Field(description="The live claim on the death, if any.")


class WorklistPage(ResponseModel):
    items: list[WorklistItem]
    next_cursor: str | None
