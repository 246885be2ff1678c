"""Base schemas: requests reject unknown fields; responses serialise from attributes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from app.kit.time import LONDON

T = TypeVar("T")


def _representable(moment: datetime) -> datetime:
    """Python's datetimes stop at years 1 and 9999: a time that UTC or Europe/London cannot
    express would overflow later, in the service; here it is a 422 on its field."""
    try:
        moment.astimezone(UTC)
        moment.astimezone(LONDON)
    except OverflowError:
        raise ValueError("the time is out of range") from None
    return moment


Timestamp = Annotated[AwareDatetime, AfterValidator(_representable)]
"""A point in time sent by a client: with its UTC offset, and within the representable range."""


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    return isinstance(value, list | tuple) and any(_has_nul(item) for item in value)


NUL_FREE: dict[str, bool] = {"nul_free": True}
"""Validation context of a document known to hold no NUL character anywhere."""


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object, info: ValidationInfo) -> object:
        # PostgreSQL text cannot hold NUL: refuse it here, on its field, not as a 500 later.
        # A caller that has seen the whole document holds no NUL says so (NUL_FREE), and the
        # walk over every field is skipped (the history import's hot path).
        if info.context is NUL_FREE:
            return value
        if _has_nul(value):
            raise ValueError("text must not contain the NUL character (\\u0000)")
        return value


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(ResponseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, object]] | None = None
