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
    codes: CauseCodes | None = None


class Qap(RequestModel):
    """The qualified attending practitioner who proposed the cause of death."""

    name: Name
    gmc_number: Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")] = Field(
        description="Seven-digit GMC reference number."
    )


class RegistrarRejection(RequestModel):
    rejected_at: Timestamp
    reason: Reason
    reissued_at: Timestamp | None = Field(
        default=None, description="When the MCCD was reissued after the rejection."
    )


class UrgentReleaseReason(StrEnum):
    faith = "faith"
    organ_donation = "organ_donation"
    other = "other"


class UrgentRelease(RequestModel):
    requested_at: Timestamp
    reason: UrgentReleaseReason
    granted: StrictBool | None = None


class ContactMethod(StrEnum):
    phone = "phone"
    in_person = "in_person"
    letter = "letter"
    email = "email"
    video = "video"


class BereavedContact(RequestModel):
    """One contact with the bereaved: the relatives' view, shown to the SJR reviewer."""

    contacted_at: Timestamp
    contact: Name = Field(description="Who was spoken to, e.g. `Daughter (next of kin)`.")
    method: ContactMethod
    concerns: Note | None = Field(
        default=None,
        description="Concerns raised (any contact's concerns trigger the "
        "bereaved-concern referral rule).",
    )
    compliments: Note | None = None
    wants_involvement: StrictBool | None = Field(
        default=None, description="Whether they want to be involved in a review."
    )


class ScrutinyFields(RequestModel):
    """The optional additions to a screening (mixed into ScreeningFields)."""

    notes_received_at: Timestamp | None = Field(
        default=None,
        description="When the ME office received the notes (the 24-hour "
        "scrutiny target runs from it).",
    )
    scrutiny_completed_at: Timestamp | None = None
    qap: Qap | None = None
    proposed_cause_of_death: ProposedCause | None = None
    cause_of_death_codes: CauseCodes | None = Field(
        default=None, description="The codes of the agreed cause of death (`cause_of_death`)."
    )
    registrar_rejections: list[RegistrarRejection] = Field(default_factory=list, max_length=20)
    urgent_release: UrgentRelease | None = None
    bereaved_contacts: list[BereavedContact] = Field(default_factory=list, max_length=50)


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

    notes_received_at: datetime | None = None
    scrutiny_completed_at: datetime | None = None
    qap: Qap | None = None
    proposed_cause_of_death: ProposedCause | None = None
    cause_of_death_codes: CauseCodes | None = None
    registrar_rejections: list[RegistrarRejection] = Field(default_factory=list)
    urgent_release: UrgentRelease | None = None
    bereaved_contacts: list[BereavedContact] = Field(default_factory=list)


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
