"""The scrutiny in full (issue 15): what ME offices record beyond the screening's core, all
optional where the ME office's software may not have it, validated where given. Stored in the
screening's ``scrutiny`` JSON (times as ISO strings), with the two times the ME reports range
over (notes received, scrutiny completed) in columns of their own."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StringConstraints

from app.kit.clinical_codes import check_snomed_concept, normalise_icd10
from app.kit.schemas import RequestModel, ResponseModel, Timestamp

Icd10 = Annotated[str, StringConstraints(max_length=10), AfterValidator(normalise_icd10)]
SnomedConcept = Annotated[
    str, StringConstraints(max_length=18), AfterValidator(check_snomed_concept)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Note = Annotated[str, StringConstraints(min_length=1, max_length=5000)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
CAUSE_PARTS = ("part_1a", "part_1b", "part_1c", "part_2")

NOTES_RECEIVED = "When the ME office received the notes (the 24-hour scrutiny target runs from it)."
SCRUTINY_COMPLETED = "When the medical examiner completed the scrutiny."
QAP = "The qualified attending practitioner (QAP) who proposed the cause of death."
PROPOSED_CAUSE = (
    "The cause of death the QAP proposed, before scrutiny (the agreed one is `cause_of_death`)."
)
CAUSE_CODES = "The codes of the agreed cause of death (`cause_of_death`)."
REJECTIONS = "Each time the registrar rejected the MCCD, oldest first."
URGENT_RELEASE = "A request for the urgent release of the body, if one was made."
BEREAVED_CONTACTS = "The ME office's contacts with the bereaved, oldest first."


class CauseCode(RequestModel):
    """A coded part of the cause of death: ICD-10 and/or a SNOMED CT concept."""

    icd10: Icd10 | None = Field(default=None, description="e.g. `J18.9`.")
    snomed_ct: SnomedConcept | None = Field(
        default=None, description="A SNOMED CT concept id, e.g. `233604007`."
    )


class CauseCodes(RequestModel):
    """The codes of MCCD parts 1a, 1b, 1c and 2 (each optional)."""

    part_1a: CauseCode | None = None
    part_1b: CauseCode | None = None
    part_1c: CauseCode | None = None
    part_2: CauseCode | None = None


CauseText = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class ProposedCause(RequestModel):
    """The cause of death the attending practitioner proposed, before scrutiny."""

    part_1a: CauseText | None = None
    part_1b: CauseText | None = None
    part_1c: CauseText | None = None
    part_2: CauseText | None = None
    codes: CauseCodes | None = Field(
        default=None, description="The codes of the proposed cause, part by part."
    )


class Qap(RequestModel):
    """The qualified attending practitioner who proposed the cause of death."""

    name: Name = Field(description="The QAP's name, e.g. `Dr C Consultant`.")
    gmc_number: Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")] = Field(
        description="Seven-digit GMC reference number."
    )


class RegistrarRejection(RequestModel):
    """The registrar's rejection of the MCCD, and its reissue."""

    rejected_at: Timestamp = Field(description="When the registrar rejected the MCCD.")
    reason: Reason = Field(description="Why the registrar rejected it, in the registrar's words.")
    reissued_at: Timestamp | None = Field(
        default=None, description="When the MCCD was reissued after the rejection."
    )


class UrgentReleaseReason(StrEnum):
    faith = "faith"
    organ_donation = "organ_donation"
    other = "other"


class UrgentRelease(RequestModel):
    """A request for the urgent release of the body."""

    requested_at: Timestamp = Field(description="When the family asked for urgent release.")
    reason: UrgentReleaseReason = Field(
        description="Why: `faith` (a faith requirement), `organ_donation` or `other`."
    )
    granted: StrictBool | None = Field(
        default=None, description="Whether the release was granted; null while undecided."
    )


class ContactMethod(StrEnum):
    phone = "phone"
    in_person = "in_person"
    letter = "letter"
    email = "email"
    video = "video"


class BereavedContact(RequestModel):
    """One contact with the bereaved: the relatives' view, shown to the SJR reviewer."""

    contacted_at: Timestamp = Field(description="When the bereaved were contacted.")
    contact: Name = Field(description="Who was spoken to, e.g. `Daughter (next of kin)`.")
    method: ContactMethod = Field(
        description="How: `phone`, `in_person`, `letter`, `email` or `video`."
    )
    concerns: Note | None = Field(
        default=None,
        description="Concerns raised (any contact's concerns trigger the "
        "bereaved-concern referral rule).",
    )
    compliments: Note | None = Field(
        default=None, description="Compliments about the care, in their words."
    )
    wants_involvement: StrictBool | None = Field(
        default=None, description="Whether they want to be involved in a review."
    )


class ScrutinyFields(RequestModel):
    """The optional additions to a screening (mixed into ScreeningFields)."""

    notes_received_at: Timestamp | None = Field(default=None, description=NOTES_RECEIVED)
    scrutiny_completed_at: Timestamp | None = Field(default=None, description=SCRUTINY_COMPLETED)
    qap: Qap | None = Field(default=None, description=QAP)
    proposed_cause_of_death: ProposedCause | None = Field(default=None, description=PROPOSED_CAUSE)
    cause_of_death_codes: CauseCodes | None = Field(default=None, description=CAUSE_CODES)
    registrar_rejections: list[RegistrarRejection] = Field(
        default_factory=list, max_length=20, description=REJECTIONS
    )
    urgent_release: UrgentRelease | None = Field(default=None, description=URGENT_RELEASE)
    bereaved_contacts: list[BereavedContact] = Field(
        default_factory=list, max_length=50, description=BEREAVED_CONTACTS
    )


def scrutiny_json(fields: ScrutinyFields) -> dict[str, Any]:
    """What goes in the screening's ``scrutiny`` column (the two times have columns)."""
    return fields.model_dump(
        mode="json",
        include={
            "qap",
            "proposed_cause_of_death",
            "cause_of_death_codes",
            "registrar_rejections",
            "urgent_release",
            "bereaved_contacts",
        },
    )


def check_scrutiny(fields: ScrutinyFields, died_at: datetime, latest: datetime, fail: Any) -> None:
    """Times in a possible order: after the death, not after ``latest`` (now and the clock
    skew), scrutiny after the notes, a reissue after its rejection."""

    def when(pointer: str, moment: datetime | None, after: datetime, what: str) -> None:
        if moment is None:
            return
        if moment < after:
            fail(
                pointer,
                f"{what} is before the death" if after == died_at else f"{what} is too early",
            )
        elif moment > latest:
            fail(pointer, f"{what} is in the future")

    when("/notes_received_at", fields.notes_received_at, died_at, "the notes' arrival")
    when("/scrutiny_completed_at", fields.scrutiny_completed_at, died_at, "the scrutiny")
    if (
        fields.notes_received_at is not None
        and fields.scrutiny_completed_at is not None
        and fields.scrutiny_completed_at < fields.notes_received_at
    ):
        fail("/scrutiny_completed_at", "the scrutiny was completed before the notes arrived")
    for index, rejection in enumerate(fields.registrar_rejections):
        when(
            f"/registrar_rejections/{index}/rejected_at",
            rejection.rejected_at,
            died_at,
            "the rejection",
        )
        if rejection.reissued_at is not None:
            when(
                f"/registrar_rejections/{index}/reissued_at",
                rejection.reissued_at,
                rejection.rejected_at,
                "the reissue",
            )
    if fields.urgent_release is not None:
        when(
            "/urgent_release/requested_at",
            fields.urgent_release.requested_at,
            died_at,
            "the request",
        )
    for index, contact in enumerate(fields.bereaved_contacts):
        when(
            f"/bereaved_contacts/{index}/contacted_at", contact.contacted_at, died_at, "the contact"
        )


class ScrutinyOut(ResponseModel):
    """The scrutiny in full as returned (empty for screenings recorded before it existed)."""

    notes_received_at: datetime | None = Field(default=None, description=NOTES_RECEIVED)
    scrutiny_completed_at: datetime | None = Field(default=None, description=SCRUTINY_COMPLETED)
    qap: Qap | None = Field(default=None, description=QAP)
    proposed_cause_of_death: ProposedCause | None = Field(default=None, description=PROPOSED_CAUSE)
    cause_of_death_codes: CauseCodes | None = Field(default=None, description=CAUSE_CODES)
    registrar_rejections: list[RegistrarRejection] = Field(
        default_factory=list, description=REJECTIONS
    )
    urgent_release: UrgentRelease | None = Field(default=None, description=URGENT_RELEASE)
    bereaved_contacts: list[BereavedContact] = Field(
        default_factory=list, description=BEREAVED_CONTACTS
    )


def scrutiny_events(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The scrutiny events a recording or amendment raises: an MCCD rejected by the registrar,
    a contact with the bereaved logged, a concern raised by them (each when there are more
    than before). The change feed and webhooks carry them beside screening.recorded/amended."""
    old, new = before or {}, after or {}

    def count(scrutiny: dict[str, Any], name: str) -> int:
        return len(scrutiny.get(name) or [])

    def concerns(scrutiny: dict[str, Any]) -> int:
        return sum(1 for c in scrutiny.get("bereaved_contacts") or [] if c.get("concerns"))

    found = []
    if count(new, "registrar_rejections") > count(old, "registrar_rejections"):
        found.append("screening.mccd_rejected")
    if count(new, "bereaved_contacts") > count(old, "bereaved_contacts"):
        found.append("screening.bereaved_contact_logged")
    if concerns(new) > concerns(old):
        found.append("screening.bereaved_concern_raised")
    return found
