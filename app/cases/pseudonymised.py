"""What a pseudonymised client is shown of a whole case: each part pseudonymised by its own
domain."""

from __future__ import annotations

from app.cases.schemas import DeathDetail
from app.deaths.pseudonymised import DeathPseudonymised, death_fields
from app.referrals.pseudonymised import ReferralPseudonymised, referral
from app.reviews.pseudonymised import ReviewPseudonymised, review
from app.screenings.pseudonymised import ScreeningPseudonymised, screening


class DeathDetailPseudonymised(DeathPseudonymised):
    screening: ScreeningPseudonymised | None
    referrals: list[ReferralPseudonymised]
    reviews: list[ReviewPseudonymised]


def death_detail(key: bytes, full: DeathDetail) -> DeathDetailPseudonymised:
    return DeathDetailPseudonymised(
        **death_fields(key, full),
        screening=None if full.screening is None else screening(key, full.screening),
        referrals=[referral(key, item) for item in full.referrals],
        reviews=[review(key, item) for item in full.reviews],
    )
