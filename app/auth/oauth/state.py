"""What the OAuth code keeps per app: the signing keys and the JWKS cache."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.auth.oauth.jwks import JwksCache
from app.auth.oauth.signing import SigningKeys
from app.config import Settings
from app.db import Database


@dataclass
class OAuthState:
    settings: Settings
    signing_keys: SigningKeys
    jwks: JwksCache


def make_state(settings: Settings, database: Database) -> OAuthState:
    return OAuthState(
        settings=settings,
        signing_keys=SigningKeys(
            database, settings.oauth_access_token_seconds, settings.oauth_signing_key_pem
        ),
        jwks=JwksCache(settings.oauth_jwks_cache_seconds, settings.oauth_jwks_timeout_seconds),
    )


def oauth_state(request: Request) -> OAuthState:
    """The app's state, made on first use (create_app need not know of it)."""
    state: OAuthState | None = getattr(request.app.state, "oauth", None)
    if state is None:
        state = make_state(request.app.state.settings, request.app.state.database)
        request.app.state.oauth = state
    return state
