"""Referrals straight from their rows to JSON, for the hot paths (queue pages, claims; issue
19): the same document ``ReferralOut`` makes, field for field, without building and then
serialising a Pydantic model per referral (a fifth of a queue page's CPU).

``referral_json`` applies ReferralOut's own rules (``_effective``): the status a reader sees
(``claimed`` under a live lease), the lease shown only while it is live, its id only to the
client holding it, ``overdue`` for an open referral past its due date.
tests/test_referral_rows.py holds the two to the same output for referrals in every state.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from fastapi import Response

from app.kit.enums import OPEN_REFERRAL_STATUSES
from app.models import Referral
from app.referrals.schemas import ReferralOut

# ReferralOut's fields, in its order (the order of the JSON it makes).
FIELDS = tuple(ReferralOut.model_fields)
_STORED = tuple(name for name in FIELDS if name != "overdue")
# The columns to read: every stored field, and who holds the lease.
COLUMNS: tuple[Any, ...] = (*(getattr(Referral, name) for name in _STORED), Referral.leased_by)
_NAMES = (*_STORED, "leased_by")
_LEASE = ("lease_id", "leased_to", "claimed_at", "lease_expires_at")
_OPEN = frozenset(status.value for status in OPEN_REFERRAL_STATUSES)


def referral_json(row: Mapping[str, Any], viewer: uuid.UUID, now: datetime) -> dict[str, Any]:
    """The referral ``row`` (COLUMNS, or a Referral) as ``viewer`` is shown it, as
    ``ReferralOut(...).model_dump()`` would give it (with the values as stored: strings for
    the enumerations)."""
    out = {name: row[name] for name in _STORED}
    expires = out["lease_expires_at"]
    live = expires is not None and expires > now
    status = out["status"]
    if status == "ready" and live:
        out["status"] = "claimed"
    out["overdue"] = status in _OPEN and out["due_at"] < now
    if not live:
        for name in _LEASE:
            out[name] = None
    elif row["leased_by"] != viewer:
        out["lease_id"] = None
    return {name: out[name] for name in FIELDS}


def _default(value: Any) -> str:
    # asyncpg's UUIDs are a subclass of uuid.UUID, which orjson writes only exactly.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def json_response(body: Any, status_code: int = 200) -> Response:
    """A JSON response made by orjson (UTC times with a Z, as Pydantic writes them)."""
    return Response(
        orjson.dumps(body, default=_default, option=orjson.OPT_UTC_Z),
        status_code=status_code,
        media_type="application/json",
    )


def of_referral(referral: Referral) -> dict[str, Any]:
    """A loaded Referral as a row of COLUMNS (for referral_json)."""
    return {name: getattr(referral, name) for name in _NAMES}


def referrals_json(
    rows: Sequence[Mapping[str, Any]], viewer: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    return [referral_json(row, viewer, now) for row in rows]
