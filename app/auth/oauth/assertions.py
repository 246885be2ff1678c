"""The client assertion of RFC 7523 (`private_key_jwt`): a JWT the client signs with its
private key, `iss` = `sub` = its client id, `aud` = the token URL, short-lived, with a `jti`
the service accepts once only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.auth.oauth.errors import OAuthError
from app.auth.oauth.jwks import ALGORITHMS, candidates, verify_with
from app.auth.oauth.state import OAuthState
from app.db import Database
from app.models import ApiClient, ClientPublicKey, UsedAssertion
from app.models.base import utcnow

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_BYTES = 16 * 1024


def client_is_active(client: ApiClient | None, now: datetime) -> bool:
    return (
        client is not None
        and client.revoked_at is None
        and (client.expires_at is None or client.expires_at > now)
    )


def _refused(description: str) -> OAuthError:
    return OAuthError("invalid_client", description)


async def authenticate_client(
    state: OAuthState,
    database: Database,
    assertion: str,
    token_url: str,
    accept: Callable[[ApiClient], None] | None = None,
) -> ApiClient:
    """The client the assertion authenticates, its `jti` now spent; OAuthError otherwise.
    ``accept`` checks the rest of the request against the client (it raises OAuthError) before
    the jti is spent, so that a refused request spends nothing."""
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise _refused("The client assertion is too large.")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _refused("The client assertion is not a signed JWT.") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise _refused("The client assertion must be signed with RS512 or ES256.")
    issuer, subject = unverified.get("iss"), unverified.get("sub")
    if not isinstance(issuer, str) or issuer != subject:
        raise _refused("The assertion's iss and sub must both be the client id.")
    try:
        client_id = uuid.UUID(issuer)
    except ValueError:
        raise _refused("The assertion's iss is not a client id.") from None
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    now = utcnow()
    async with database.autocommit() as session:
        client = await session.get(ApiClient, client_id)
        rows = (
            await session.scalars(
                select(ClientPublicKey).where(ClientPublicKey.client_id == client_id)
            )
        ).all()
    if client is None or not client_is_active(client, now):
        raise _refused("Unknown, revoked or expired client.")
    live = [row for row in rows if row.expires_at is None or row.expires_at > now]
    if not live:
        raise _refused("The client has no public key registered.")
    keys = await candidates(
        state.jwks,
        [(row.kid, row.pem) for row in live if row.pem],
        [row.jwks_url for row in live if row.jwks_url],
        kid,
    )
    settings = state.settings
    try:
        claims = verify_with(
            assertion,
            keys,
            str(alg),
            audience=token_url,
            issuer=issuer,
            leeway=settings.oauth_leeway_seconds,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise _refused("The client assertion has expired.") from None
    except jwt.ImmatureSignatureError:
        raise _refused("The client assertion is not valid yet (nbf or iat).") from None
    except jwt.InvalidAudienceError:
        raise _refused(f"The assertion's aud must be the token URL, {token_url}.") from None
    except jwt.MissingRequiredClaimError as error:
        raise _refused(f"The client assertion has no {error.claim} claim.") from None
    except jwt.InvalidSignatureError:
        raise _refused("No public key registered for the client verifies the signature.") from None
    except jwt.PyJWTError:
        raise _refused("The client assertion's claims are not valid.") from None
    expires = _expiry(claims, settings.oauth_assertion_max_seconds, settings.oauth_leeway_seconds)
    if accept is not None:
        accept(client)
    await _spend(database, client_id, claims["jti"], expires)
    return client


def _expiry(claims: dict[str, Any], max_seconds: int, leeway: int) -> datetime:
    exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 200:
        raise _refused("The assertion's jti must be a string of 1 to 200 characters.")
    now = utcnow().timestamp()
    if not isinstance(exp, int | float) or exp - now > max_seconds + leeway:
        raise _refused(f"The assertion's exp is more than {max_seconds} seconds ahead.")
    if isinstance(iat, int | float) and exp - iat > max_seconds + leeway:
        raise _refused(f"The assertion lives longer than {max_seconds} seconds (exp - iat).")
    # Kept while the assertion could still be accepted: its exp plus the clock leeway granted
    # when checking it (a jti forgotten at exp could be replayed within the leeway).
    return datetime.fromtimestamp(exp + leeway, UTC)


async def _spend(database: Database, client_id: uuid.UUID, jti: str, expires: datetime) -> None:
    """Record the jti, refusing it if it was used before; forget spent ids past their expiry
    (an expired assertion is refused by its exp anyway)."""
    try:
        async with database.transaction() as session:
            await session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < utcnow()))
            session.add(UsedAssertion(client_id=client_id, jti=jti, expires_at=expires))
            await session.flush()
    except IntegrityError:
        raise _refused("The client assertion's jti has been used before (replay).") from None
