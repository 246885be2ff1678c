"""The access tokens the service issues: JWTs signed RS512 with the current signing key,
`kid` in the header, carrying the client's id and the scopes granted."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from app.auth.oauth.signing import ACCESS_TOKEN_ALGORITHM
from app.auth.oauth.state import OAuthState


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    scope: str


def looks_like_jwt(credential: str) -> bool:
    return credential.startswith("eyJ") and credential.count(".") == 2


async def issue_access_token(state: OAuthState, client_id: str, scopes: list[str]) -> AccessToken:
    key = await state.signing_keys.current()
    now = int(time.time())
    lifetime = state.settings.oauth_access_token_seconds
    scope = " ".join(sorted(scopes))
    claims = {
        "iss": state.settings.oauth_issuer,
        "aud": state.settings.oauth_issuer,
        "sub": client_id,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    token = jwt.encode(
        claims, key.private, algorithm=ACCESS_TOKEN_ALGORITHM, headers={"kid": key.kid}
    )
    return AccessToken(token=token, expires_in=lifetime, scope=scope)


async def verify_access_token(state: OAuthState, token: str) -> dict[str, Any] | None:
    """The token's claims if the service signed it and it is in date; None otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    kid = header.get("kid")
    if header.get("alg") != ACCESS_TOKEN_ALGORITHM or not isinstance(kid, str):
        return None
    public = await state.signing_keys.public(kid)
    if public is None:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            public,
            algorithms=[ACCESS_TOKEN_ALGORITHM],
            audience=state.settings.oauth_issuer,
            issuer=state.settings.oauth_issuer,
            leeway=state.settings.oauth_leeway_seconds,
            options={"require": ["exp", "iat", "sub", "scope"]},
        )
    except jwt.PyJWTError:
        return None
    if not isinstance(claims.get("scope"), str) or not isinstance(claims.get("sub"), str):
        return None
    return claims
