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

from app.kit.text import clean_text, is_name
from app.kit.time import LONDON

T = TypeVar("T")


def _representable(moment: datetime) -> datetime:
    """Python's datetimes stop at years 1 and 9999: a time that UTC or Europe/London cannot
    express would overflow later, in the service; here it is a 422 on its field. A UTC offset
    is under a day, so only a time in year 1 or 9999 can be out of range."""
    if 1 < moment.year < 9999:
        return moment
    try:
        moment.astimezone(UTC)
        moment.astimezone(LONDON)
    except OverflowError:
        raise ValueError("the time is out of range") from None
    return moment


Timestamp = Annotated[AwareDatetime, AfterValidator(_representable)]
"""A point in time sent by a client: with its UTC offset, and within the representable range."""


def _cleaned(value: object, name: bool) -> object:
    if type(value) is str:  # not an enum member, which is a str too
        return clean_text(value, name=name)
    if isinstance(value, list):
        return [_cleaned(item, name) for item in value]
    if isinstance(value, tuple):
        return tuple(_cleaned(item, name) for item in value)
    return value


PLAIN_TEXT: dict[str, bool] = {"plain_text": True}
"""Validation context for a document known to hold only printable ASCII text (``plain_text``):
there the text rules cannot refuse, strip or change anything, so they are not run."""


def plain_text(raw: bytes) -> bool:
    """Whether every string in this JSON document is printable ASCII, from its bytes: none is
    0x7f or above (DEL, and every byte of a non-ASCII character) and there is no backslash (a
    control character, a line break or any non-ASCII character can only be written escaped;
    JSON forbids them raw). Such text is already what ``clean_text`` keeps: NFC, with no
    control, bidirectional or zero-width character."""
    return raw.isascii() and b"\\" not in raw and b"\x7f" not in raw


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _clean_text(cls, value: object, info: ValidationInfo) -> object:
        # Every string sent: NUL and other controls, bidi overrides refused at their field;
        # zero-width characters stripped; NFC (app.kit.text). Skipped for a document
        # known to be plain text (PLAIN_TEXT: a bulk import's line checked by plain_text).
        if info.context is PLAIN_TEXT:
            return value
        return _cleaned(value, is_name(info.field_name))


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
