"""Secrets and signatures (Standard Webhooks): `whsec_` + base64 of 32 random bytes; each
message signed as `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`,
one signature per secret still valid, space-separated in `webhook-signature`."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(
    message_id: str, at: datetime, body: str, secrets_: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers plus the content type."""
    at = at.astimezone(UTC)  # sign() reads the clock face as UTC
    signatures = " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body) for secret in secrets_
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
