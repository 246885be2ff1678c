"""Opaque keyset cursors.

A list's `next_cursor` is the sort key of the page's last row (or only its id, below) with an
HMAC under the deployment's cursor key (`service_secrets.cursor_key`, made by migration 0010),
all base64url-encoded JSON: `[value, ..., mac]`. A cursor this service did not issue, or one a
client has edited (a made-up date, another row's id), fails the MAC and is a 400, never a 500
and never a page from a place the client chose. Every paginated list signs and checks its
cursors here (`sign_cursor` / `open_cursor`, `encode_row_cursor` / `row_sort_key`).

`encode_cursor` / `decode_cursor` are the unsigned encoding underneath, which the change feed
uses for its positions (app.events.feed): a position is a place in the stream of every event
the client may read, any place in it is one the client may start from (`start=beginning`
exists), consumers keep positions for as long as they like, and each event carries one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import BadRequest

CURSOR_KEY_NAME = "cursor_key"
# The table of app.models.ServiceSecret, named here (lightweight Core constructs) so that the kit
# stays below the models in the layers (docs/architecture.md).
_SECRETS = table("service_secrets", column("name"), column("value"))
NOT_OURS = "The cursor is not one this service issued."

_keys: dict[str, bytes] = {}


def encode_cursor(values: list[Any]) -> str:
    """Unsigned: base64url (unpadded) of the compact JSON list."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The list ``encode_cursor`` made; a 400 for anything else or another length."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise BadRequest(NOT_OURS) from error
    if not isinstance(values, list) or len(values) != length:
        raise BadRequest(NOT_OURS)
    return values


async def cursor_key(session: AsyncSession) -> bytes:
    """The deployment's cursor key (read once per process and database)."""
    cache_key = session.get_bind().engine.url.render_as_string(hide_password=True)
    key = _keys.get(cache_key)
    if key is None:
        value = await session.scalar(
            select(_SECRETS.c.value).where(_SECRETS.c.name == CURSOR_KEY_NAME)
        )
        if value is None:
            raise RuntimeError("no cursor key: run `lfd migrate` (migration 0010 makes one)")
        key = _keys[cache_key] = value.encode()
    return key


def _mac(key: bytes, values: list[Any]) -> str:
    payload = json.dumps(values, separators=(",", ":")).encode()
    digest = hmac.digest(key, b"lfd-cursor-v1\x00" + payload, hashlib.sha256)
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


async def sign_cursor(session: AsyncSession, values: list[Any]) -> str:
    """A signed cursor of ``values`` (strings, numbers; anything else is sent as its str)."""
    plain = json.loads(json.dumps(values, default=str))  # as the client will send it back
    return encode_cursor([*plain, _mac(await cursor_key(session), plain)])


async def open_cursor(session: AsyncSession, cursor: str, length: int) -> list[Any]:
    """The ``length`` values of a cursor ``sign_cursor`` made; a 400 for any other cursor."""
    *values, mac = decode_cursor(cursor, length + 1)
    expected = _mac(await cursor_key(session), values)
    if not isinstance(mac, str) or not hmac.compare_digest(mac, expected):
        raise BadRequest(NOT_OURS)
    return values


ROW_CURSOR = "r1"


async def encode_row_cursor(session: AsyncSession, row_id: uuid.UUID) -> str:
    """A keyset cursor that names the page's last row by its id alone. Its sort key (a date of
    death, say) is read back from the row on the next request, so the cursor tells a client
    nothing its view of the data hides."""
    return await sign_cursor(session, [ROW_CURSOR, str(row_id)])


async def row_sort_key(
    session: AsyncSession, cursor: str, id_column: Any, *sort_columns: Any
) -> tuple[Any, ...]:
    """The sort key (``sort_columns`` then the id) of the row an ``encode_row_cursor`` names;
    a 400 for a cursor this service did not issue or a row that no longer exists."""
    version, raw_id = await open_cursor(session, cursor, 2)
    try:
        if version != ROW_CURSOR:
            raise ValueError(version)
        row_id = uuid.UUID(str(raw_id))
    except ValueError as error:
        raise BadRequest(NOT_OURS) from error
    row = (
        await session.execute(select(*sort_columns, id_column).where(id_column == row_id))
    ).first()
    if row is None:
        raise BadRequest("The cursor's row no longer exists; start again without a cursor.")
    return tuple(row)
