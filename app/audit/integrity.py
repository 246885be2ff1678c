"""The audit log's keys and hashes (docs/audit.md, "Tamper evidence").

One secret, the deployment's **audit key**, from `LFD_AUDIT_KEY` when that is set (kept outside
the database, so that someone who can only reach the database cannot forge a row), otherwise
from the `service_secrets` row migration 0012 generated. Two keys are derived from it, one per
purpose:

- the **row key**: ``row_hash`` = HMAC-SHA256 of a row's content, set when the row is written.
  A row edited in SQL, or inserted by anyone without the key, no longer matches its hash;
- the **search key**: ``query_hash`` = HMAC-SHA256 of an NHS number a search looked for, so
  the log answers "who searched for this patient?" (hash the number and look) without holding
  the number: an `audit:read` client cannot turn a hash back into a number (there are only
  about 10^9 NHS numbers, which an unkeyed hash would give away in minutes);
- the **notification key**: what a death notification's sender key was sent about (the
  patient, the content), kept as HMACs so that the same key reused for another patient is
  recognised without storing who it was (app.notifications.identity).

The key is read once per process and database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.models import ServiceSecret

AUDIT_KEY_NAME = "audit_key"
GENESIS = "0" * 64

# The columns a row's hash covers, in this order (the chain columns are not content).
CONTENT = (
    "id",
    "occurred_at",
    "client_id",
    "client_name",
    "on_behalf_of",
    "action",
    "resource_type",
    "resource_id",
    "death_id",
    "request_id",
    "outcome",
    "query_hash",
)
# Columns added after the first rows were hashed (migration 0016: who the request was for, as a
# verified user assertion said): covered, name and value, whenever they hold a value, so that a
# row written before them keeps its hash and a row that has them cannot be edited unseen.
LATER_CONTENT = ("on_behalf_of_verified", "on_behalf_of_role", "organisation_id")
# The stored columns a row's hash reads (``death_id`` is derived from ``death_ids``: _death_of).
HASHED_COLUMNS = (*(name for name in CONTENT if name != "death_id"), "death_ids", *LATER_CONTENT)


@dataclass(frozen=True)
class AuditKeys:
    row: bytes
    search: bytes
    chain: bytes
    notification: bytes


def derive_keys(secret: str) -> AuditKeys:
    master = secret.encode()

    def sub(purpose: str) -> bytes:
        return hmac.new(master, f"lfd-audit-{purpose}".encode(), hashlib.sha256).digest()

    return AuditKeys(
        row=sub("row"),
        search=sub("search"),
        chain=sub("chain"),
        notification=sub("notification"),
    )


_keys: dict[str, AuditKeys] = {}


async def audit_keys(session: AsyncSession) -> AuditKeys:
    """The deployment's audit keys (cached per database for the life of the process)."""
    cache_key = session.get_bind().engine.url.render_as_string(hide_password=True)
    keys = _keys.get(cache_key)
    if keys is None:
        secret = get_settings().audit_key or await session.scalar(
            select(ServiceSecret.value).where(ServiceSecret.name == AUDIT_KEY_NAME)
        )
        if secret is None:
            raise RuntimeError("no audit key: run `lfd migrate` (migration 0012 makes one)")
        keys = _keys[cache_key] = derive_keys(secret)
    return keys


def _canonical(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return value


def _death_of(row: dict[str, Any]) -> uuid.UUID | None:
    """The ``death_id`` the hash covers: the row's one patient, or None for none or several.
    Before migration 0025 a row had one ``death_id`` column; since, ``death_ids``, and the
    rows it converted hold their death as a one-element list, so their hashes still match."""
    ids: list[uuid.UUID] = list(row.get("death_ids") or ())
    return ids[0] if len(ids) == 1 else None


def row_hash(keys: AuditKeys, row: dict[str, Any]) -> str:
    """HMAC of the row's content: its columns in a fixed order as one JSON array. A row that
    names several patients (a page) adds ``["death_ids", [...]]`` after the later columns."""
    death = _death_of(row)
    values: list[Any] = [
        _canonical(death if name == "death_id" else row.get(name)) for name in CONTENT
    ]
    values += [[name, _canonical(row[name])] for name in LATER_CONTENT if row.get(name) is not None]
    ids = row.get("death_ids") or ()
    if len(ids) > 1:
        values.append(["death_ids", [_canonical(value) for value in ids]])
    content = json.dumps(values, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(keys.row, content.encode(), hashlib.sha256).hexdigest()


def chain_hash(keys: AuditKeys, previous: str, seq: int, own_row_hash: str) -> str:
    """The link: HMAC over the previous row's chain hash, this row's place and its hash."""
    message = f"{previous}|{seq}|{own_row_hash}".encode()
    return hmac.new(keys.chain, message, hashlib.sha256).hexdigest()


def search_hash(keys: AuditKeys, nhs_number: str) -> str:
    """The keyed hash of a (normalised, 10-digit) NHS number, as audit rows hold it."""
    return hmac.new(keys.search, f"nhs:{nhs_number}".encode(), hashlib.sha256).hexdigest()
