"""The intake bodies: a death and its screening in one call, singly or in a batch."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from app.deaths.schemas import DeathCreate, DeathOut
from app.kit.schemas import RequestModel, ResponseModel
from app.referrals.schemas import ReferralOut
from app.screenings.schemas import RequiredRouteOut, ScreeningFields, ScreeningOut


class ScreeningCreate(RequestModel):
    """A death (found or created by ``source_system`` + ``source_reference``) and the medical
    examiner's scrutiny of it."""

    death: DeathCreate
    screening: ScreeningFields
    worklist_lease_id: uuid.UUID | None = Field(
        default=None,
        description="The lease from `POST /v1/me/worklist/{death_id}/claim`, when the death "
        "is claimed on the ME worklist: while a live lease holds the notified death, only its "
        "holder (the same client, and the same person when the claim named one) presenting it "
        "may screen the death (409 otherwise, naming when the lease expires). Not needed for a "
        "death nobody holds.",
    )


class ScreeningRecorded(ScreeningOut):
    """The recorded screening with the death it belongs to and the referrals it raised."""

    death: DeathOut
    required_routes: list[RequiredRouteOut]
    referrals: list[ReferralOut]


class ScreeningBatch(RequestModel):
    # Any, not dict: an item that is not even an object fails on its own, not the batch.
    screenings: list[Any] = Field(
        min_length=1,
        description="Each item is a ScreeningCreate body; each is validated and recorded on its "
        "own, so one bad item does not stop the others.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/ScreeningCreate"}},
    )


class BatchItemResult(ResponseModel):
    index: int
    outcome: Literal["created", "replayed", "failed"]
    status: int = Field(description="The HTTP status this item would have had on its own.")
    screening_id: str | None = None
    death_id: str | None = None
    problem: dict[str, Any] | None = Field(
        default=None, description="The problem details for a failed item."
    )


class BatchResult(ResponseModel):
    created: int
    replayed: int
    failed: int
    items: list[BatchItemResult]
