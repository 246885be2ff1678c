from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationInfo, model_validator

from app.kit.enums import ReasonCode, ReferralStatus, Route
from app.kit.etag import etag
from app.kit.schemas import RequestModel, ResponseModel
from app.models.base import utcnow

Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Reviewer = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ReferralOut(ResponseModel):
    id: uuid.UUID
    death_id: uuid.UUID
    route: Route
    stage: int | None = Field(description="SJR stage (1 or 2); null for other routes.")
    reasons: list[ReasonCode]
    status: ReferralStatus = Field(
        description="`claimed` while a live lease holds it; an expired lease reads as `ready` "
        "(or `in_progress` when a draft review exists) and the referral is claimable again."
    )
    status_reason: str | None
    specialty: str | None
    site: str | None
    priority: int = Field(description="1 is the most urgent.")
    due_at: datetime
    overdue: bool
    assigned_to: str | None
    lease_id: uuid.UUID | None = Field(
        description="The live lease's id, shown only to the client that holds it (null for "
        "everyone else, and while no lease is live)."
    )
    leased_to: str | None = Field(description="The reviewer the live lease is for.")
    claimed_at: datetime | None
    lease_expires_at: datetime | None
    excluded_reviewer: str | None = Field(
        description="Stage-2 SJR: the stage-1 reviewer, who may not take this review."
    )
    external_reference: str | None
    completed_at: datetime | None
    programme_id: uuid.UUID | None = Field(
        default=None,
        description="Route `programme`: the review programme whose queue holds it.",
    )
    version: int
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _effective(cls, source: Any, info: ValidationInfo) -> Any:
        """From a stored referral: the lease shows only while it is live, and its id only to
        the client holding it (``referral_out``; without a viewer in the validation context,
        to nobody)."""
        if isinstance(source, dict) or not hasattr(source, "lease_live"):
            return source
        live = source.lease_live(utcnow())
        values = {name: getattr(source, name) for name in cls.model_fields if name != "status"}
        values["status"] = source.effective_status
        if not live:
            values.update(lease_id=None, leased_to=None, claimed_at=None, lease_expires_at=None)
        viewer = (info.context or {}).get(LEASE_VIEWER)
        if viewer is None or source.leased_by != viewer:
            values["lease_id"] = None
        return values


LEASE_VIEWER = "lease_viewer"


def viewing(client_id: uuid.UUID) -> dict[str, Any]:
    """The validation context in which ``client_id``'s own lease ids show (a ReferralOut, or
    a response holding some, made from stored referrals)."""
    return {LEASE_VIEWER: client_id}


def referral_out(referral: object, viewer: uuid.UUID) -> ReferralOut:
    """A stored referral as ``viewer`` (a client id) is shown it."""
    return ReferralOut.model_validate(referral, context=viewing(viewer))


class ClaimRequest(RequestModel):
    route: Route
    specialty: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    stage: int | None = Field(default=None, ge=1, le=2, description="SJR stage to take.")
    count: int = Field(default=1, ge=1, description="How many to lease (at most the bound).")
    lease_seconds: int | None = Field(
        default=None, ge=60, description="Lease length; default and bound are configuration."
    )
    reviewer: Reviewer | None = Field(
        default=None,
        description="The person the work is for (defaults to X-On-Behalf-Of). Needed to take "
        "a stage-2 SJR, which its stage-1 reviewer may not take.",
    )
    programme_id: uuid.UUID | None = Field(
        default=None,
        description="Route `programme`: take only this review programme's referrals (its "
        "queue). Only with route `programme`.",
    )

    @model_validator(mode="after")
    def _programme_queue(self) -> ClaimRequest:
        if self.programme_id is not None and self.route is not Route.programme:
            raise ValueError("programme_id goes with route `programme`")
        return self


class ClaimResult(ResponseModel):
    items: list[ReferralOut]


class LeaseRequest(RequestModel):
    lease_id: uuid.UUID
    lease_seconds: int | None = Field(default=None, ge=60)


class ReleaseRequest(RequestModel):
    lease_id: uuid.UUID


class AssignRequest(RequestModel):
    assigned_to: Reviewer | None = Field(description="The reviewer; null to unassign.")


class ReasonRequest(RequestModel):
    reason: Reason
    lease_id: uuid.UUID | None = Field(
        default=None, description="Needed when the referral is held under a live lease."
    )


class CancelRequest(RequestModel):
    reason: Reason


class ResumeRequest(RequestModel):
    pass


class TransitionOut(ResponseModel):
    action: str
    from_status: str | None
    to_status: str
    reason: str | None
    reviewer: str | None
    client_id: uuid.UUID | None
    on_behalf_of: str | None
    occurred_at: datetime


class OverdueGroup(ResponseModel):
    route: Route
    specialty: str | None
    overdue: int
    oldest_due_at: datetime


class OverdueSummary(ResponseModel):
    as_of: datetime
    total: int
    groups: list[OverdueGroup]


def referral_etag(referral: ReferralOut) -> str:
    """The referral's tag: its version, and what a reader sees change without one (a lease
    lapsing, the due date passing; the holder's view, with the lease id, is tagged apart)."""
    lease = "held" if referral.lease_id else "leased" if referral.lease_expires_at else ""
    state = lease + ("overdue" if referral.overdue else "")
    return etag(referral.id, referral.version, state or None)
