from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import Field, StrictBool, field_validator

from app.events.types import EVENT_TYPES
from app.kit.schemas import RequestModel, ResponseModel

TEST_EVENT_TYPE = "webhook.test"
MAX_EVENT_TYPES = 100


class DeliveryStatus(StrEnum):
    pending = "pending"
    failed = "failed"
    delivered = "delivered"
    dead = "dead"


def _known(name: str) -> bool:
    """A published type, or `resource.*` for every type of a resource that has some."""
    if name.endswith(".*"):
        return any(known.startswith(name[:-1]) for known in EVENT_TYPES)
    return name in EVENT_TYPES


def subscribed(event_type: str, event_types: list[str]) -> bool:
    """Whether an endpoint with these `event_types` (empty: all) gets this event."""
    return not event_types or any(
        event_type.startswith(name[:-1]) if name.endswith(".*") else event_type == name
        for name in event_types
    )


def _known_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = [name for name in value if not _known(name)]
    if unknown:
        raise ValueError(
            f"unknown event types: {', '.join(sorted(set(unknown)))}; "
            "GET /v1/events/types lists them"
        )
    # One copy of each, in a stable order: the list is a set.
    return sorted(set(value))


class EndpointCreate(RequestModel):
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="An http(s) URL under one of the service's allowed prefixes.",
    )
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(
        default_factory=list,
        max_length=MAX_EVENT_TYPES,
        description="The event types to send (`referral.*` for all of a resource's); empty "
        "(the default) sends every type.",
    )
    enabled: StrictBool = True

    _types = field_validator("event_types")(_known_types)


class EndpointPatch(RequestModel):
    """Only the fields sent change; `enabled: true` re-enables a disabled endpoint."""

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] | None = Field(default=None, max_length=MAX_EVENT_TYPES)
    enabled: StrictBool | None = None

    _types = field_validator("event_types")(_known_types)


class EndpointOut(ResponseModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str] = Field(description="Empty: every event type.")
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the endpoint is disabled: by a client, or because it answered 410."
    )
    disabled_at: datetime | None
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then, messages carry a second signature made with the old secret."
    )
    created_by_client_id: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_...`). Shown only now: store it safely."
    )


class DeliveryOut(ResponseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="The `webhook-id` header: the event's id.")
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None = Field(
        description="The kind of the last failure: `http_status`, `timeout`, `connect`, "
        "`not_allowed`, `internal_address` (the host name resolved to a loopback, private, "
        "link-local or other internal address: nothing was sent), `gone`, `protocol`."
    )
    delivered_at: datetime | None
    created_at: datetime


class AttemptOut(ResponseModel):
    attempt: int
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    status_code: int | None
    error_kind: str | None


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut] = Field(description="Every attempt, first first.")
