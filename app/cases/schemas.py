"""The whole case of one death, as GET /v1/deaths/{id} shows it."""

from __future__ import annotations

import uuid

from pydantic import Field

from app.deaths.schemas import DeathOut
from app.kit.etag import etag
from app.referrals.schemas import ReferralOut
from app.reviews.schemas import ReviewOut
from app.screenings.schemas import ScreeningOut


class DeathDetail(DeathOut):
    """A death with where it stands: its screening and its referrals."""

    screening: ScreeningOut | None
    referrals: list[ReferralOut]
    reviews: list[ReviewOut]
    possible_duplicate_of: list[uuid.UUID] = Field(
        default_factory=list,
        description="Deaths recorded earlier with the same NHS number (under another source "
        "reference), not yet reviewed: possibly the same person reported twice. Decide with "
        "POST /v1/deaths/{id}/duplicate-review; nothing is merged. Not shown to "
        "pseudonymised clients.",
    )
    same_person_as: list[uuid.UUID] = Field(
        default_factory=list,
        description="Deaths a review decided are the same person as this one (linked, not "
        "merged). Not shown to pseudonymised clients.",
    )


def detail_etag(death: DeathDetail) -> str:
    """The death's tag, with the state of everything the detail shows: the versions of its
    screening, referrals and reviews (each only grows), and how many leases are live and how
    many referrals overdue (a lease lapsing or a due date passing changes what a reader sees
    without a new version)."""
    versions = (
        (death.screening.version if death.screening else 0)
        + sum(referral.version for referral in death.referrals)
        + sum(review.version for review in death.reviews)
    )
    leases = sum(1 for referral in death.referrals if referral.lease_id is not None)
    state = f"{versions}-{len(death.referrals)}-{leases}"
    # A referral's due date passing shows it overdue, without a new version of anything.
    overdue = sum(1 for referral in death.referrals if referral.overdue)
    return etag(death.id, death.version, f"{state}-o{overdue}" if overdue else state)
