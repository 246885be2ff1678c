"""Public keys from PEM text or a JWKS URL, with a cache, for client assertions and user
assertions alike. A JWKS document is fetched with httpx (a bounded time and size) and kept for
``oauth_jwks_cache_seconds``; an unknown `kid` refetches it at most once a minute."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

logger = logging.getLogger("app.auth.oauth.jwks")

ALGORITHMS = ("RS512", "ES256")
MAX_JWKS_BYTES = 256 * 1024
REFETCH_UNKNOWN_KID_SECONDS = 60.0

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Candidate:
    kid: str | None
    key: PublicKey


def fits(key: PublicKey, alg: str) -> bool:
    """Whether `alg` is one this kind of key signs with (never a symmetric algorithm)."""
    if isinstance(key, rsa.RSAPublicKey):
        return alg in {"RS256", "RS384", "RS512"}
    return alg == "ES256"


def parse_public_pem(pem: str) -> PublicKey:
    """An RSA (2048 bits or more) or P-256 public key from PEM text; ValueError otherwise."""
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise ValueError("not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError("an RSA key must have at least 2048 bits")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ValueError("only RSA (for RS512) and P-256 (for ES256) public keys are accepted")


def check_jwks_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        raise ValueError("a JWKS URL must be https, with a host and no user name or password")
    return url


def _keys_of(document: Any) -> list[Candidate]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: list[Candidate] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            jwk = jwt.PyJWK.from_dict(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            continue
        key = jwk.key
        if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            keys.append(
                Candidate(entry.get("kid") if isinstance(entry.get("kid"), str) else None, key)
            )
    return keys


class JwksCache:
    """Fetched key sets by URL. `transport` lets tests stand in for the identity provider."""

    def __init__(
        self,
        ttl_seconds: float,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.timeout_seconds = timeout_seconds
        self.transport = transport
        self._cache: dict[str, tuple[float, list[Candidate]]] = {}

    async def keys(self, url: str, kid: str | None = None) -> list[Candidate]:
        """The URL's keys; refetched when stale, or when `kid` is not among them (at most once
        a minute). An unreachable URL gives the cached keys, or none."""
        now = time.monotonic()
        cached = self._cache.get(url)
        if cached is not None:
            fetched_at, keys = cached
            fresh = now - fetched_at < self.ttl_seconds
            known = kid is None or any(key.kid == kid for key in keys)
            if fresh and (known or now - fetched_at < REFETCH_UNKNOWN_KID_SECONDS):
                return keys
        try:
            keys = await self._fetch(url)
        except (httpx.HTTPError, ValueError) as error:
            logger.warning("jwks fetch failed", extra={"error_type": type(error).__name__})
            return cached[1] if cached is not None else []
        self._cache[url] = (now, keys)
        return keys

    async def _fetch(self, url: str) -> list[Candidate]:
        async with httpx.AsyncClient(
            transport=self.transport, timeout=self.timeout_seconds, follow_redirects=False
        ) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        return _keys_of(response.json())


async def candidates(
    cache: JwksCache,
    pems: Sequence[tuple[str | None, str]],
    urls: Sequence[str],
    kid: str | None,
) -> list[Candidate]:
    """The keys that may have signed a token with header `kid`: PEM keys (those registered
    with another kid are left out) and the keys of each JWKS URL (by kid when the token names
    one)."""
    found: list[Candidate] = []
    for key_kid, pem in pems:
        if kid is not None and key_kid is not None and key_kid != kid:
            continue
        try:
            found.append(Candidate(key_kid, parse_public_pem(pem)))
        except ValueError:
            continue
    for url in urls:
        for key in await cache.keys(url, kid):
            if kid is None or key.kid is None or key.kid == kid:
                found.append(key)
    return found


def verify_with(token: str, keys: list[Candidate], alg: str, **options: Any) -> dict[str, Any]:
    """The claims of `token` verified with the first of `keys` whose type fits `alg`; raises
    jwt.InvalidSignatureError when none does, or the first claim error."""
    claim_error: jwt.PyJWTError | None = None
    for candidate in keys:
        if not fits(candidate.key, alg):
            continue
        try:
            claims: dict[str, Any] = jwt.decode(token, candidate.key, algorithms=[alg], **options)
            return claims
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as error:
            # The signature was good (PyJWT checks it before the claims): the claims are not.
            claim_error = claim_error or error
            break
    if claim_error is not None:
        raise claim_error
    raise jwt.InvalidSignatureError("no registered key verifies the signature")
