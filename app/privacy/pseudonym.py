"""Pseudonymisation primitives (DESIGN.md section 8, issue 5).

A pseudonymised client never sees a name, an NHS number, a local patient id, a date of birth,
a full postcode or an exact date of death. In their place it gets:

- a **pseudonym** per patient: HMAC-SHA256 of the NHS number (or, without one, of the death's
  id) under a key held by the deployment. Stable across calls and across the whole API, so
  that an ICB can join its own extracts; different per deployment, so two trusts' pseudonyms
  cannot be joined; not reversible without the key.
- an **age band** of ten years (`0-9` … `80-89`, `90+`),
- the **month of death** (`YYYY-MM`, in UK local time),
- the **postcode district** (the outward code: `LS1 4AP` → `LS1`).

The key comes from `LFD_PSEUDONYM_KEY` when that is set (e.g. to share pseudonyms between a
trust's test and live deployments), otherwise from the `service_secrets` row that `lfd migrate`
generated for this deployment. It is read once per process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.time import LONDON
from app.models import ServiceSecret

PSEUDONYM_KEY_NAME = "pseudonym_key"

_keys: dict[str, bytes] = {}


async def pseudonym_key(session: AsyncSession, override: str | None = None) -> bytes:
    """The deployment's pseudonym key (cached per database for the life of the process)."""
    if override:
        return override.encode()
    cache_key = session.get_bind().engine.url.render_as_string(hide_password=True)
    key = _keys.get(cache_key)
    if key is None:
        value = await session.scalar(
            select(ServiceSecret.value).where(ServiceSecret.name == PSEUDONYM_KEY_NAME)
        )
        if value is None:
            raise RuntimeError("no pseudonym key: run `lfd migrate` (migration 0004 makes one)")
        key = _keys[cache_key] = value.encode()
    return key


def pseudonym(key: bytes, nhs_number: str | None, death_id: uuid.UUID) -> str:
    """`P-` and 26 base32 characters (130 bits of the HMAC): the same patient, the same
    pseudonym, on every route."""
    subject = f"nhs:{nhs_number}" if nhs_number else f"death:{death_id}"
    digest = hmac.new(key, subject.encode(), hashlib.sha256).digest()
    return "P-" + base64.b32encode(digest).decode()[:26]


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    if age >= 90:
        return "90+"
    low = (age // 10) * 10
    return f"{low}-{low + 9}"


def month_of_death(died_at: datetime | None) -> str | None:
    if died_at is None:
        return None
    return died_at.astimezone(LONDON).strftime("%Y-%m")


def postcode_district(postcode: str | None) -> str | None:
    """The outward code: everything before the last three characters (the inward code) of a
    UK postcode, whatever its spacing. None for anything too short to be a postcode."""
    if not postcode:
        return None
    compact = "".join(postcode.split()).upper()
    if len(compact) < 5:
        return None
    return compact[:-3]


def month(moment: datetime) -> str:
    """An instant as its month in UK local time, ``YYYY-MM``."""
    return moment.astimezone(LONDON).strftime("%Y-%m")


def raised(text: str | None) -> bool:
    """Whether a free-text concern was written, without the text."""
    return text is not None
