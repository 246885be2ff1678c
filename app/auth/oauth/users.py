"""Who a client acts for: a verified user, from a JWT the trust's identity provider signed
(NHS CIS2 and the like) sent as `X-User-Assertion`, or free text in `X-On-Behalf-Of`, which
the audit marks unverified. Each client's identity provider is configured on the client
(`user_assertion`: issuer, audience, JWKS URL or PEM, the claims naming the user and role)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from app.auth.oauth.jwks import candidates, verify_with
from app.auth.oauth.state import OAuthState
from app.errors import BadRequest, Unauthorized
from app.models import ApiClient

USER_ALGORITHMS = frozenset({"RS256", "RS512", "ES256"})
MAX_USER_ASSERTION_BYTES = 8 * 1024
MAX_CLAIM_LENGTH = 200


@dataclass(frozen=True)
class OnBehalfOf:
    name: str | None
    verified: bool | None  # None: no one named
    role: str | None = None


def _claim(claims: dict[str, Any], name: str) -> str | None:
    """A claim as text: a string, or the first string of a list (CIS2 sends role lists)."""
    value = claims.get(name)
    if isinstance(value, list):
        value = next((item for item in value if isinstance(item, str)), None)
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        return None
    return value.strip()[:MAX_CLAIM_LENGTH]


async def resolve_on_behalf_of(
    state: OAuthState, client: ApiClient, free_text: str | None, assertion: str | None
) -> OnBehalfOf:
    config = client.user_assertion
    if assertion is not None:
        if config is None:
            raise BadRequest(
                "X-User-Assertion was sent but this client has no identity provider configured."
            )
        return await _verified(state, config, assertion)
    if config is not None and config.get("required"):
        raise Unauthorized(
            "This client must name its user with X-User-Assertion (a signed JWT from the "
            "identity provider).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if free_text is None:
        return OnBehalfOf(None, None)
    if not client.allow_unverified_on_behalf_of:
        raise BadRequest(
            "This client may not name its user in X-On-Behalf-Of; send X-User-Assertion."
        )
    if not free_text.strip() or not free_text.isprintable():
        raise BadRequest("X-On-Behalf-Of must be a printable, non-empty name.")
    return OnBehalfOf(free_text.strip(), verified=False)


async def _verified(state: OAuthState, config: dict[str, Any], assertion: str) -> OnBehalfOf:
    def refused(why: str) -> Unauthorized:
        return Unauthorized(
            f"The X-User-Assertion is not accepted: {why}", headers={"WWW-Authenticate": "Bearer"}
        )

    if len(assertion) > MAX_USER_ASSERTION_BYTES:
        raise refused("it is too large.")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise refused("it is not a signed JWT.") from None
    alg = header.get("alg")
    if alg not in USER_ALGORITHMS:
        raise refused("it must be signed with RS256, RS512 or ES256.")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    pems = [(None, config["pem"])] if config.get("pem") else []
    urls = [config["jwks_url"]] if config.get("jwks_url") else []
    keys = await candidates(state.jwks, pems, urls, kid)
    try:
        claims = verify_with(
            assertion,
            keys,
            str(alg),
            audience=config["audience"],
            issuer=config["issuer"],
            leeway=state.settings.oauth_leeway_seconds,
            options={"require": ["iss", "aud", "exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise refused("it has expired.") from None
    except jwt.InvalidAudienceError:
        raise refused("its aud is not this client's.") from None
    except jwt.InvalidIssuerError:
        raise refused("its iss is not the configured identity provider.") from None
    except jwt.InvalidSignatureError:
        raise refused("no key of the identity provider verifies its signature.") from None
    except jwt.PyJWTError:
        raise refused("its claims are not valid.") from None
    user = _claim(claims, config.get("user_claim") or "sub")
    if user is None:
        raise refused("it names no user.")
    role_claim = config.get("role_claim")
    role = _claim(claims, role_claim) if role_claim else None
    return OnBehalfOf(user, verified=True, role=role)
