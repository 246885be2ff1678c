"""PostgreSQL WAL positions (LSNs): parsed, compared and written as PostgreSQL writes them."""

from __future__ import annotations

import re

from app.errors import BadRequest

_TEXT = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
# XLOG page headers (src/include/access/xlog_internal.h, 64-bit builds): every WAL page starts
# with a short header, and the first page of each segment with a long one.
SHORT_PAGE_HEADER = 24
LONG_PAGE_HEADER = 40
DEFAULT_BLOCK = 8192
DEFAULT_SEGMENT = 16 * 1024 * 1024


def parse_lsn(value: str) -> int:
    """``16/B374D848`` -> its 64-bit position. ValueError when it is not one."""
    match = _TEXT.match(value.strip())
    if match is None:
        raise ValueError("not a WAL position")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def record_boundary(
    position: int, block: int = DEFAULT_BLOCK, segment: int = DEFAULT_SEGMENT
) -> int:
    """The insert position with the page header it stands behind taken off.

    pg_current_wal_insert_lsn() is where the next record will go: when the last one ended at
    the end of a page, that is past the next page's header, while a standby that has replayed
    everything reports the end of the last record, the page's start. Both mean "everything
    written so far", so an idle primary's standby must not look forever 24 (or 40) bytes
    behind."""
    if position % segment == LONG_PAGE_HEADER:
        return position - LONG_PAGE_HEADER
    if position % block == SHORT_PAGE_HEADER:
        return position - SHORT_PAGE_HEADER
    return position


def read_after_header(value: str | None) -> int | None:
    """The ``X-LFD-Read-After`` request header: a WAL position a write's response gave the
    client; None when not sent. Anything else is a 400 naming the header, never ignored."""
    if value is None:
        return None
    try:
        return parse_lsn(value)
    except ValueError:
        raise BadRequest(
            "X-LFD-Read-After must be the value a write's response gave in that header "
            "(a WAL position such as 16/B374D848).",
            errors=[
                {
                    "pointer": "header:/X-LFD-Read-After",
                    "code": "invalid_read_after",
                    "detail": "not a WAL position",
                }
            ],
        ) from None
