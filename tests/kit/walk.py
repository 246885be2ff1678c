"""What the walks over every operation share (tests/test_pseudonymised.py: every GET as a
commissioner; tests/test_organisation_walk.py: every operation as another organisation): the
values of path parameters, the filters that make a list show the seeded patient, and reading
an answer whole (every part of an XLSX, decoded cursors)."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from typing import Any

SEEDED_YEAR = "2018-19"  # the financial year of DIED_AT
WEBHOOK_PREFIX = "http://127.0.0.1:9/hooks/"


# Path parameters the walk knows how to fill: name -> the seeded id's key. A new GET route
# with another parameter fails the walk until it is added here (or in PATH_OVERRIDES).
PATH_VALUES = {
    "death_id": "death_id",
    "notification_id": "notification_id",
    "screening_id": "screening_id",
    "referral_id": "referral_id",
    "review_id": "review_id",
    "finding_id": "finding_id",
    "theme_id": "theme_id",
    "plan_id": "plan_id",
    "action_id": "action_id",
    "task_id": "referral_id",  # FHIR Task = referral
    "patient_id": "death_id",  # FHIR Patient = death
    "endpoint_id": "endpoint_id",  # the pseudonymised client's own webhook endpoint
    "delivery_id": "delivery_id",  # its test delivery
    "client_id": "client_id",  # the client administration routes (admin only: a 403 here)
    "import_id": "import_id",  # a history import (administrators only)
    "organisation_id": "organisation_id",  # the registry (any client: no patient data)
    # Only in paths the walk of every operation calls (tests/test_organisation_walk.py):
    "share_id": "share_id",  # a share of the death with another organisation (issue 16)
    "key_id": "key_id",  # a client's public key
    "programme_id": "programme_id",  # a review programme (issue 17) holding the patient
    "case_id": "case_id",  # the patient's case in it
    "mapping_id": "mapping_id",  # a theme mapping
}
# Query parameters that make a list show the seeded patient (lists are newest first), and the
# seeded id the answer must then hold.
LIST_FILTERS: dict[str, tuple[dict[str, str], str]] = {
    "/v1/deaths": ({"case_reference": "{case_reference}"}, "death_id"),
    "/v1/referrals": ({"death_id": "{death_id}"}, "referral_id"),
    "/v1/findings": ({"death_id": "{death_id}"}, "finding_id"),
    "/v1/actions": ({"plan_id": "{plan_id}"}, "action_id"),
    "/fhir/r4/Task": ({"patient": "Patient/{death_id}"}, "referral_id"),
    # The comparison's other programme (required): the same one.
    "/v1/reports/programmes/{programme_id}/comparison": ({"other": "{programme_id}"}, None),
}
# Routes that refuse a pseudonymised client by design, and their status: the FHIR Patient
# search needs an NHS number, which such a client may not search by.
REFUSED = {"/fhir/r4/Patient": 400}


def _body_text(response: Any) -> str:
    content: bytes = response.content
    if content[:2] == b"PK":  # XLSX: every part of the zip
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            parts = [archive.read(name).decode("utf-8", "replace") for name in archive.namelist()]
        text = "\n".join(parts)
    else:
        text = content.decode("utf-8", "replace")
    return text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


CURSOR_KEYS = {"next_cursor", "position", "cursor"}


def _tokens(value: Any) -> list[str]:
    """Every cursor-like value in a JSON body (next_cursor, an event's position)."""
    if isinstance(value, dict):
        return [
            token
            for key, item in value.items()
            for token in ([item] if key in CURSOR_KEYS and isinstance(item, str) else [])
            + _tokens(item)
        ]
    if isinstance(value, list):
        return [token for item in value for token in _tokens(item)]
    return []


def _decoded_cursors(response: Any) -> str:
    """The opaque cursors a response hands out, decoded (base64 JSON), and the `_cursor` of
    FHIR Bundle links: what a curious client would read in them."""
    if not response.headers.get("content-type", "").endswith("json"):
        return ""
    tokens = _tokens(response.json()) + re.findall(r"_cursor=([A-Za-z0-9_-]+)", response.text)
    decoded = []
    for token in tokens:
        try:
            decoded.append(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
        except (ValueError, UnicodeDecodeError):
            continue
    return "\n".join(decoded)


def _leaks(text: str, needles: list[str]) -> list[str]:
    lowered = text.lower()
    return [needle for needle in needles if needle.lower() in lowered]


def _variants(spec: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, str]]:
    """One call per value of a `format` parameter (JSON, CSV, XLSX, HTML ...)."""
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "format" and parameter["in"] == "query":
            schema = parameter["schema"]
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            return [{"format": value} for value in schema.get("enum", [])] or [{}]
    return [{}]
