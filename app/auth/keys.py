"""API keys: ``lfd_<prefix>_<secret>``. The prefix finds the client; only a SHA-256 of the whole
key is stored (a key has 192 bits of randomness, so a slow hash would add nothing but latency)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "lfd"


def generate_key() -> tuple[str, str]:
    """Return (prefix, full key)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    return prefix, f"{KEY_PREFIX}_{prefix}_{secret}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def split_key(key: str) -> str | None:
    """The prefix of a well-formed key, or None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)
