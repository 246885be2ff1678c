"""Opaque keyset cursors: the sort key of the last row, signed with nothing secret but
encoded so that clients treat it as opaque. A tampered cursor is a 400, never a 500."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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


ROW_CURSOR = "r1"


def encode_row_cursor(row_id: uuid.UUID) -> str:
    """A keyset cursor that names the page's last row by its id alone. Its sort key (a date of
    death, say) is read back from the row on the next request, so the cursor tells a client
    nothing its view of the data hides, and a forged one can only name a row."""
    return encode_cursor([ROW_CURSOR, str(row_id)])


async def row_sort_key(
    session: AsyncSession, cursor: str, id_column: Any, *sort_columns: Any
) -> tuple[Any, ...]:
    """The sort key (``sort_columns`` then the id) of the row an ``encode_row_cursor`` names;
    a 400 for a cursor this service did not issue or a row that no longer exists."""
    version, raw_id = decode_cursor(cursor, 2)
    try:
        if version != ROW_CURSOR:
            raise ValueError(version)
        row_id = uuid.UUID(str(raw_id))
    except ValueError as error:
        raise BadRequest("The cursor is not one this service issued.") from error
    row = (
        await session.execute(select(*sort_columns, id_column).where(id_column == row_id))
    ).first()
    if row is None:
        raise BadRequest("The cursor's row no longer exists; start again without a cursor.")
    return tuple(row)
