"""Opaque keyset cursors: the sort key of the last row, signed with nothing secret but
encoded so that clients treat it as opaque. A tampered cursor is a 400, never a 500."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from app.errors import BadRequest


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise BadRequest("The cursor is not one this service issued.") from error
    if not isinstance(values, list) or len(values) != length:
        raise BadRequest("The cursor is not one this service issued.")
    return values
