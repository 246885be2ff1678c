"""The service's access-token signing keys (RS512), `kid`-rotated.

Keys live in the database (`oauth_signing_keys`, made on first need, rotated with
`lfd signing-keys rotate`) so that every worker and replica signs and verifies with the same
set, or one key comes from the configuration (LFD_OAUTH_SIGNING_KEY_PEM). The newest unretired
key signs; a retired key is still published, and still verifies, for one token lifetime after
its retirement, so that tokens it signed keep working until they expire."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.models import SigningKey
from app.models.base import utcnow

ACCESS_TOKEN_ALGORITHM = "RS512"  # noqa: S105 (an algorithm, not a secret)
RELOAD_SECONDS = 60.0
UNKNOWN_KID_RELOAD_SECONDS = 5.0


def new_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def thumbprint(public: rsa.RSAPublicKey) -> str:
    """The RFC 7638 thumbprint of the key, as its kid."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    from cryptography.hazmat.primitives import hashes

    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical.encode())
    return jwt.utils.base64url_encode(digest.finalize()).decode()


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    private: rsa.RSAPrivateKey
    retired: bool

    @property
    def public(self) -> rsa.RSAPublicKey:
        return self.private.public_key()

    def jwk(self) -> dict[str, Any]:
        entry: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(self.public, as_dict=True)
        entry.update({"kid": self.kid, "use": "sig", "alg": ACCESS_TOKEN_ALGORITHM})
        return entry


def _load(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("the signing key must be an RSA private key of 2048 bits or more")
    return key


async def rotate_signing_key(session: AsyncSession) -> str:
    """Retire the signing keys in use and make a new one; returns its kid."""
    now = utcnow()
    await session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=now)
    )
    pem = new_private_pem()
    kid = thumbprint(_load(pem).public_key())
    session.add(SigningKey(kid=kid, private_pem=pem, created_at=now))
    await session.flush()
    return kid


class SigningKeys:
    """The keys, loaded from the database (or the configuration) and kept for a minute."""

    def __init__(self, database: Database, token_seconds: int, pem: str | None = None) -> None:
        self.database = database
        self.token_seconds = token_seconds
        self._configured = pem
        self._keys: list[LoadedKey] = []
        self._loaded_at = -1e9

    async def _reload(self) -> None:
        if self._configured is not None:
            key = _load(self._configured)
            self._keys = [LoadedKey(thumbprint(key.public_key()), key, retired=False)]
            self._loaded_at = time.monotonic()
            return
        horizon = utcnow() - timedelta(seconds=self.token_seconds + 60)
        query = (
            select(SigningKey)
            .where((SigningKey.retired_at.is_(None)) | (SigningKey.retired_at > horizon))
            .order_by(SigningKey.created_at.desc())
        )
        async with self.database.transaction() as session:
            rows = (await session.scalars(query)).all()
            if not any(row.retired_at is None for row in rows):
                await rotate_signing_key(session)
                rows = (await session.scalars(query)).all()
            self._keys = [
                LoadedKey(row.kid, _load(row.private_pem), row.retired_at is not None)
                for row in rows
            ]
        self._loaded_at = time.monotonic()

    async def _fresh(self) -> list[LoadedKey]:
        if time.monotonic() - self._loaded_at > RELOAD_SECONDS or not self._keys:
            await self._reload()
        return self._keys

    async def current(self) -> LoadedKey:
        keys = await self._fresh()
        # Newest first; several unretired keys (two processes made one at once) all verify.
        return next(key for key in keys if not key.retired)

    async def public(self, kid: str) -> rsa.RSAPublicKey | None:
        keys = await self._fresh()
        key = next((k for k in keys if k.kid == kid), None)
        if key is None and time.monotonic() - self._loaded_at > UNKNOWN_KID_RELOAD_SECONDS:
            await self._reload()
            key = next((k for k in self._keys if k.kid == kid), None)
        return key.public if key is not None else None

    async def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in await self._fresh()]}
