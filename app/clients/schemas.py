"""Request and response bodies of the client administration API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.auth.scopes import Scope
from app.kit.schemas import RequestModel, ResponseModel, Timestamp

GRACE = Field(
    default=86400,
    ge=0,
    le=30 * 86400,
    description="Seconds the old credential keeps working (0: it stops now).",
)


class ClientCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200, description="What the client is.")
    scopes: list[Scope] = Field(min_length=1, description="The scopes the client holds.")
    pseudonymised: bool = Field(
        default=False,
        description="A commissioner's client: pseudonyms instead of patient identifiers.",
    )
    expires_at: Timestamp | None = Field(
        default=None, description="When its credentials stop working; none: never."
    )
    organisation_id: uuid.UUID | None = Field(
        default=None,
        description="The organisation the client acts for (issue 16): it sees that "
        "organisation's deaths (a pseudonymised client also its members'). Default: the "
        "administrator's own organisation (the default organisation for a deployment-level "
        "administrator). An organisation's administrator creates clients only within its reach.",
    )

    model_config = {
        "json_schema_extra": {
            "examples": [{"name": "Review tool", "scopes": ["deaths:read", "reviews:write"]}]
        }
    }


class ClientOut(ResponseModel):
    id: uuid.UUID = Field(description="The client id (the `iss` of its client assertions).")
    name: str = Field(description="What the client is.")
    scopes: list[str] = Field(description="The scopes it holds.")
    pseudonymised: bool = Field(description="Whether it sees pseudonyms only.")
    organisation_id: uuid.UUID | None = Field(
        description="The organisation it acts for; null: a deployment-level client, which "
        "manages organisations and clients but reads no patient data."
    )
    key_prefix: str = Field(description="The public part of its current API key.")
    created_at: datetime = Field(description="When it was created.")
    expires_at: datetime | None = Field(description="When its credentials stop working.")
    revoked_at: datetime | None = Field(description="When it was revoked.")
    previous_key_expires_at: datetime | None = Field(
        description="When the API key it had before the last rotation stops working."
    )
    allow_unverified_on_behalf_of: bool = Field(
        description="Whether free-text X-On-Behalf-Of is accepted (audited as unverified)."
    )
    user_assertion: IdentityProviderOut | None = Field(
        description="The identity provider of its X-User-Assertion headers."
    )


class ClientWithKey(ClientOut):
    key: str = Field(description="The API key: shown this once, stored only as a hash.")


class ClientList(ResponseModel):
    items: list[ClientOut] = Field(description="The clients, oldest first.")


class Expiry(RequestModel):
    expires_at: Timestamp | None = Field(
        description="When the client's credentials stop working (now or later); null: never."
    )

    model_config = {"json_schema_extra": {"examples": [{"expires_at": "2027-03-31T23:59:59Z"}]}}


class Rotation(RequestModel):
    grace_seconds: int = GRACE

    model_config = {"json_schema_extra": {"examples": [{"grace_seconds": 86400}]}}


class PublicKeyCreate(RequestModel):
    pem: str | None = Field(
        default=None,
        max_length=10_000,
        description="A PEM public key: RSA 2048 bits or more (RS512) or P-256 (ES256).",
    )
    jwks_url: str | None = Field(
        default=None, max_length=2000, description="An https URL serving the client's JWKS."
    )
    kid: str | None = Field(
        default=None, max_length=200, description="The kid its assertions name (PEM keys)."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [{"jwks_url": "https://review-tool.trust.nhs.uk/.well-known/jwks.json"}]
        }
    }


class PublicKeyOut(ResponseModel):
    id: uuid.UUID = Field(description="The key's id.")
    kid: str | None = Field(description="The kid its assertions name.")
    pem: str | None = Field(description="The PEM public key.")
    jwks_url: str | None = Field(description="The JWKS URL.")
    created_at: datetime = Field(description="When it was registered.")
    expires_at: datetime | None = Field(description="When it stops verifying assertions.")


class PublicKeyList(ResponseModel):
    items: list[PublicKeyOut] = Field(description="The client's keys, oldest first.")


class IdentityProvider(RequestModel):
    issuer: str = Field(min_length=1, max_length=500, description="The assertions' `iss`.")
    audience: str = Field(min_length=1, max_length=500, description="The assertions' `aud`.")
    jwks_url: str | None = Field(
        default=None, max_length=2000, description="The provider's JWKS (https)."
    )
    pem: str | None = Field(
        default=None, max_length=10_000, description="Or the provider's PEM public key."
    )
    user_claim: str = Field(default="sub", max_length=100, description="The claim naming the user.")
    role_claim: str | None = Field(
        default=None, max_length=100, description="The claim naming the user's role."
    )
    required: bool = Field(
        default=False, description="Whether every request must carry X-User-Assertion."
    )


class IdentityProviderOut(ResponseModel):
    issuer: str = Field(description="The assertions' `iss`.")
    audience: str = Field(description="The assertions' `aud`.")
    jwks_url: str | None = Field(default=None, description="The provider's JWKS URL.")
    pem: str | None = Field(default=None, description="The provider's PEM public key.")
    user_claim: str = Field(description="The claim naming the user.")
    role_claim: str | None = Field(default=None, description="The claim naming the role.")
    required: bool = Field(description="Whether every request must carry X-User-Assertion.")


class UsersPolicy(RequestModel):
    identity_provider: IdentityProvider | None = Field(
        description="Where the client's user assertions come from; null: none."
    )
    allow_unverified_on_behalf_of: bool = Field(
        default=True,
        description="Whether free-text X-On-Behalf-Of stays accepted (marked unverified).",
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "identity_provider": {
                        "issuer": "https://am.nhsidentity.spineservices.nhs.uk/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare",
                        "audience": "lfd-review-tool",
                        "jwks_url": "https://am.nhsidentity.spineservices.nhs.uk/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare/connect/jwk_uri",
                        "role_claim": "selected_roleid",
                        "required": True,
                    },
                    "allow_unverified_on_behalf_of": False,
                }
            ]
        }
    }


ClientOut.model_rebuild()
