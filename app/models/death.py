from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin, utcnow


class Death(IdMixin, TimestampMixin, Base):
    """One deceased patient and the episode around the death: the root of everything else."""

    __tablename__ = "deaths"
    __table_args__ = (
        UniqueConstraint("source_system", "source_reference"),
        Index("ix_deaths_died_at_id", "died_at", "id"),
        Index("ix_deaths_status_died_at", "status", "died_at"),
        Index("ix_deaths_specialty_at_death_died_at", "specialty_at_death", "died_at"),
        Index("ix_deaths_nhs_number", "nhs_number"),
        Index("ix_deaths_organisation_id_died_on", "organisation_id", "died_on"),
        # What the rows that copy the death's organisation reference (owned_with).
        UniqueConstraint("id", "organisation_id"),
        # The reports' cohort: a period's deaths by local date, read from the index alone (with
        # the organisation, which the row-level security policy reads: migration 0021).
        Index(
            "ix_deaths_died_on_report",
            "died_on",
            postgresql_include=[
                "place_of_death",
                "within_30_days_of_discharge",
                "learning_disability",
                "autism",
                "age_at_death",
                "site",
                "specialty_at_death",
                "id",
                "organisation_id",
            ],
        ),
    )

    case_number: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), unique=True
    )
    source_system: Mapped[str] = mapped_column(String(100))
    source_reference: Mapped[str] = mapped_column(String(100))
    # The organisation that records the death (issue 16): the posting client's, or the trust of
    # the site's ODS code. Its clients see the death; others only through a share or a parent.
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    # The site of death by ODS site code where known (`site` keeps free text), and, for a death
    # in the community, the registered GP practice.
    site_organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    gp_practice_organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisations.id")
    )

    nhs_number: Mapped[str | None] = mapped_column(String(10))
    nhs_number_status: Mapped[str] = mapped_column(String(2))
    local_patient_id: Mapped[str | None] = mapped_column(String(50))
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date]
    sex: Mapped[str] = mapped_column(String(20))
    postcode: Mapped[str | None] = mapped_column(String(8))
    ethnicity: Mapped[str | None] = mapped_column(String(2))

    died_at: Mapped[datetime]
    died_on: Mapped[date]  # the date of death in the trust's local time (Europe/London)
    place_of_death: Mapped[str] = mapped_column(String(30))
    site: Mapped[str | None] = mapped_column(String(100))
    ward: Mapped[str | None] = mapped_column(String(100))
    admitting_specialty: Mapped[str | None] = mapped_column(String(100))
    specialty_at_death: Mapped[str | None] = mapped_column(String(100))
    diagnosis_group: Mapped[str | None] = mapped_column(String(100))
    consultant: Mapped[str | None] = mapped_column(String(100))
    admission_method: Mapped[str] = mapped_column(String(20))
    admitted_at: Mapped[datetime | None]
    discharged_at: Mapped[datetime | None]

    learning_disability: Mapped[bool] = mapped_column(default=False)
    autism: Mapped[bool] = mapped_column(default=False)
    serious_mental_illness: Mapped[bool] = mapped_column(default=False)
    pregnant_or_recently_pregnant: Mapped[bool] = mapped_column(default=False)

    # Derived on every write, stored so that filters and reports aggregate in the database.
    age_at_death: Mapped[int]
    age_in_days_at_death: Mapped[int]
    within_30_days_of_discharge: Mapped[bool]

    status: Mapped[str] = mapped_column(String(20))
    # When the first notification of the death arrived (None for a death first recorded by
    # its screening): the medical examiner office's worklist measures waiting from it.
    notified_at: Mapped[datetime | None]
    # When the ME office received the notes, recorded on the worklist before the screening
    # (the 24-hour scrutiny target runs from it); a screening without its own time takes it.
    notes_received_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    created_by_client_id: Mapped[uuid.UUID | None]

    @property
    def case_reference(self) -> str:
        """The human reference, ``D-<year of death>-<case number>``, derived so that the
        database assigns the number in the same statement as the insert (PostgreSQL)."""
        return case_reference(self.died_on, self.case_number)


def case_reference(died_on: date, case_number: int) -> str:
    return f"D-{died_on.year}-{case_number:06d}"


class PossibleDuplicate(IdMixin, Base):
    """A death recorded with the NHS number of a death already held (under another source
    reference): flagged on the later death for a person to decide whether the two are the same
    person (one death reported twice) or not. Nothing is merged; the decision is recorded."""

    __tablename__ = "possible_duplicates"
    __table_args__ = (UniqueConstraint("death_id", "other_death_id"),)

    death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"))
    other_death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))  # possible, same_person, different_people
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_client_id: Mapped[uuid.UUID | None]
    decided_on_behalf_of: Mapped[str | None] = mapped_column(String(200))
