"""schemathesis hooks for ./scripts/fuzz: serializers for the request bodies that are not JSON
(schemathesis has none of its own for them), so that every operation is fuzzed.

- application/x-ndjson: a history bundle (POST /v1/history/imports), one JSON value a line;
- application/hl7-v2: an HL7 v2 message (POST /v1/hl7v2/adt), sent as the text generated.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


def _text(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    if isinstance(value, list):
        return b"".join(_text(item) + b"\n" for item in value)
    return _text(value) + b"\n"


@schemathesis.serializer("application/hl7-v2")
def hl7_v2(ctx: Any, value: Any) -> bytes:
    return _text(value)
