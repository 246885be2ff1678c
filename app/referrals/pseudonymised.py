"""What a pseudonymised client is shown of a referral and its history."""

from __future__ import annotations

import uuid
from datetime import datetime

from app.kit.enums import ReasonCode, ReferralStatus, Route
from app.privacy.schemas import PseudonymisedModel
from app.referrals.schemas import ReferralOut, TransitionOut


class ReferralPseudonymised(PseudonymisedModel):
    """A referral without its free-text status reason, another organisation's reference or
    a lease id (a pseudonymised client cannot claim, and a lease id is its holder's alone)."""

    id: uuid.UUID
    death_id: uuid.UUID
    route: Route
    stage: int | None
    reasons: list[ReasonCode]
    status: ReferralStatus
    specialty: str | None
    site: str | None
    priority: int
    due_at: datetime
    overdue: bool
    assigned_to: str | None
    leased_to: str | None
    claimed_at: datetime | None
    lease_expires_at: datetime | None
    excluded_reviewer: str | None
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class TransitionPseudonymised(PseudonymisedModel):
    """A referral transition without its free-text reason."""

    action: str
    from_status: str | None
    to_status: str
    reviewer: str | None
    client_id: uuid.UUID | None
    on_behalf_of: str | None
    occurred_at: datetime


_REFERRAL_FIELDS = frozenset(ReferralPseudonymised.model_fields)


def referral(key: bytes, full: ReferralOut) -> ReferralPseudonymised:
    return ReferralPseudonymised.model_validate(
        {name: getattr(full, name) for name in _REFERRAL_FIELDS}
    )


def transition(key: bytes, full: TransitionOut) -> TransitionPseudonymised:
    return TransitionPseudonymised.model_validate(
        {name: getattr(full, name) for name in TransitionPseudonymised.model_fields}
    )
