"""What a notification's key was sent about, kept without keeping it: keyed hashes (HMAC-SHA256
under the audit key's notification key, app.audit.integrity) of the patient and of the death
as notified.

The patient is hashed at each kind of identifier the notification gives, always with the date
of birth: the NHS number (kind ``nhs``), the local patient id (``local``) and the names
(``name``). A later notification under the same key is of the same patient when the two agree
at the strongest kind both give (the NHS number when both have one; else the local id; else
the names); a correction that adds an identifier (an NHS number traced since) adds its hash.
The content is
every death field the notification gives (not the message's id or time, which a resend may
change), so a resend of the same death is a replay and anything else a correction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, date, datetime
from typing import Any

from app.models import Death

KINDS = ("nhs", "local", "name")  # strongest first
KEYS = ("source_system", "source_reference")


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _norm(value: Any) -> str:
    return " ".join(str(value).split()).lower() if value else ""


def _identity_text(values: dict[str, Any], kind: str) -> str | None:
    """The patient as one string at this kind of identifier; None when the values lack it
    (names are always there, if empty: the last resort)."""
    born = values.get("date_of_birth")
    if not isinstance(born, date):
        return None
    if kind == "nhs":
        nhs_number = values.get("nhs_number")
        return f"nhs:{nhs_number}|born:{born.isoformat()}" if nhs_number else None
    if kind == "local":
        local = values.get("local_patient_id")
        return f"local:{_norm(local)}|born:{born.isoformat()}" if local else None
    family, given = _norm(values.get("family_name")), _norm(values.get("given_name"))
    return f"name:{family}|{given}|born:{born.isoformat()}"


def patient_keys(key: bytes, values: dict[str, Any]) -> dict[str, str]:
    """The patient hashed at every kind of identifier the values give."""
    texts = {kind: _identity_text(values, kind) for kind in KINDS}
    return {kind: _mac(key, f"patient|{text}") for kind, text in texts.items() if text}


def _same(one: dict[str, str], other: dict[str, str]) -> bool:
    """Compared at the strongest kind both give (the names when neither gives an id)."""
    for kind in KINDS:
        if kind in one and kind in other:
            return one[kind] == other[kind]
    return False


def same_patient(key: bytes, stored: dict[str, str], values: dict[str, Any]) -> bool:
    return _same(stored, patient_keys(key, values))


def merged_keys(key: bytes, stored: dict[str, str], values: dict[str, Any]) -> dict[str, str]:
    """After a correction of the same patient: what it gives now, and what it no longer does."""
    return {**stored, **patient_keys(key, values)}


def death_identity(death: Death) -> dict[str, Any]:
    return {
        name: getattr(death, name)
        for name in ("nhs_number", "local_patient_id", "family_name", "given_name", "date_of_birth")
    }


def same_patient_as_death(values: dict[str, Any], death: Death) -> bool:
    """Whether death values are of the patient a death holds (both in the clear here, so no
    key: the same rule, on the texts)."""
    held = death_identity(death)
    ours = {kind: text for kind in KINDS if (text := _identity_text(values, kind))}
    theirs = {kind: text for kind in KINDS if (text := _identity_text(held, kind))}
    return _same(ours, theirs)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def content_hash(key: bytes, values: dict[str, Any]) -> str:
    """The death as notified (its fields, not the sender's key or the message's id and time)."""
    content = {name: _canonical(value) for name, value in values.items() if name not in KEYS}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return _mac(key, f"content|{text}")
