"""OAuth 2.0 client credentials with a signed JWT (RFC 7523; docs/authentication.md): the
token endpoint's checks, the access token at the API, and signing-key rotation."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import func, select

from app.auth.oauth.signing import rotate_signing_key
from app.auth.scopes import Scope
from app.clients.service import add_public_key, list_public_keys, retire_public_key
from app.models import UsedAssertion
from tests.conftest import new_client

TOKEN_URL = "http://testserver/oauth2/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def assertion(
    key: Any, client_id: uuid.UUID, alg: str = "RS512", kid: str | None = None, **claims: Any
) -> str:
    now = int(time.time())
    body = {
        "iss": str(client_id),
        "sub": str(client_id),
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    headers = {"kid": kid} if kid else None
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, alg, headers=headers)


def form(signed: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": signed,
        **extra,
    }


async def registered(database, *scopes: Scope, key: Any = None, kid: str | None = None):
    _, client_id = await new_client(database, list(scopes) or [Scope.deaths_read], name="jwt")
    key = key or rsa_key()
    async with database.transaction() as session:
        await add_public_key(session, client_id, pem=public_pem(key), kid=kid)
    return client_id, key


async def token_for(http: httpx.AsyncClient, signed: str, **extra: str) -> httpx.Response:
    return await http.post("/oauth2/token", data=form(signed, **extra))


async def test_valid_assertion_gets_a_token_the_api_accepts(database, http):
    client_id, key = await registered(database, Scope.deaths_read)
    answer = await token_for(http, assertion(key, client_id))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "deaths:read"
    assert body["expires_in"] == 600
    assert answer.headers["cache-control"] == "no-store"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await http.get("/v1/deaths", headers=headers)).status_code == 200
    # The token carries only the client's scopes.
    assert (await http.get("/v1/audit-events", headers=headers)).status_code == 403
    # Its kid is published.
    kid = jwt.get_unverified_header(body["access_token"])["kid"]
    published = (await http.get("/.well-known/jwks.json")).json()["keys"]
    assert kid in {k["kid"] for k in published}
    assert all("d" not in k for k in published)  # never the private part


async def test_es256_keys_are_accepted(database, http):
    key = ec.generate_private_key(ec.SECP256R1())
    client_id, _ = await registered(database, key=key)
    answer = await token_for(http, assertion(key, client_id, alg="ES256"))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"exp": int(time.time()) - 600}, "expired"),
        ({"aud": "https://elsewhere.example/oauth2/token"}, "aud"),
        ({"exp": int(time.time()) + 3600, "iat": int(time.time())}, "ahead"),
        ({"jti": None}, "jti"),
    ],
)
async def test_refused_assertions_are_invalid_client(database, http, claims, words):
    client_id, key = await registered(database)
    answer = await token_for(http, assertion(key, client_id, **claims))
    assert answer.status_code == 401
    body = answer.json()
    assert body["error"] == "invalid_client"
    assert words in body["error_description"]


async def test_wrong_key_is_refused(database, http):
    client_id, _ = await registered(database)
    answer = await token_for(http, assertion(rsa_key(), client_id))
    assert answer.status_code == 401
    assert "signature" in answer.json()["error_description"]


async def test_replayed_jti_is_refused(database, http):
    client_id, key = await registered(database)
    signed = assertion(key, client_id)
    assert (await token_for(http, signed)).status_code == 200
    again = await token_for(http, signed)
    assert again.status_code == 401
    assert "replay" in again.json()["error_description"]


def hand_signed(alg: str, claims: dict[str, Any], secret: bytes) -> str:
    """A JWT made without PyJWT's guard: HS256 keyed with the client's public key (the
    classic algorithm confusion attack), or alg none."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = (
        f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}"
    )
    signature = (
        b"" if alg == "none" else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{b64(signature)}"


async def test_symmetric_and_unsigned_algorithms_are_refused(database, http):
    client_id, key = await registered(database)
    now = int(time.time())
    claims = {"iss": str(client_id), "sub": str(client_id), "aud": TOKEN_URL}
    claims |= {"exp": now + 60, "jti": uuid.uuid4().hex}
    for alg in ("HS256", "none"):
        answer = await token_for(http, hand_signed(alg, claims, public_pem(key).encode()))
        assert answer.status_code == 401, alg
        assert "RS512 or ES256" in answer.json()["error_description"]


async def test_rotated_client_key(database, http):
    """A new key works at once; the retired one until its grace period ends."""
    client_id, old = await registered(database, kid="k1")
    new = rsa_key()
    async with database.transaction() as session:
        await add_public_key(session, client_id, pem=public_pem(new), kid="k2")
    assert (await token_for(http, assertion(new, client_id, kid="k2"))).status_code == 200
    assert (await token_for(http, assertion(old, client_id, kid="k1"))).status_code == 200
    async with database.transaction() as session:
        keys = await list_public_keys(session, client_id)
        first = next(k for k in keys if k.kid == "k1")
        await retire_public_key(session, client_id, first.id, grace_seconds=0)
    assert (await token_for(http, assertion(old, client_id, kid="k1"))).status_code == 401
    assert (await token_for(http, assertion(new, client_id, kid="k2"))).status_code == 200


async def test_rotated_signing_key_keeps_old_tokens_valid(database, http):
    client_id, key = await registered(database)
    first = (await token_for(http, assertion(key, client_id))).json()["access_token"]
    async with database.transaction() as session:
        new_kid = await rotate_signing_key(session)
    # Another process rotated: this one picks the new key up when it reloads.
    http_app = http._transport.app  # type: ignore[attr-defined]
    http_app.state.oauth.signing_keys._loaded_at = -1e9
    second = (await token_for(http, assertion(key, client_id))).json()["access_token"]
    assert jwt.get_unverified_header(second)["kid"] == new_kid
    assert jwt.get_unverified_header(first)["kid"] != new_kid
    for token in (first, second):
        answer = await http.get("/v1/deaths", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200


async def test_bad_requests_are_rfc6749_errors(database, http):
    client_id, key = await registered(database)
    signed = assertion(key, client_id)
    cases = [
        ({**form(signed), "grant_type": "password"}, 400, "unsupported_grant_type"),
        ({**form(signed), "client_assertion_type": "x"}, 400, "invalid_request"),
        (
            {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER},
            400,
            "invalid_request",
        ),
        (form(assertion(key, client_id), scope="admin"), 400, "invalid_scope"),
        (form("not-a-jwt"), 401, "invalid_client"),
        (form(assertion(key, uuid.uuid4())), 401, "invalid_client"),
    ]
    for data, status, error in cases:
        answer = await http.post("/oauth2/token", data=data)
        assert answer.status_code == status, (data, answer.text)
        assert answer.json()["error"] == error
    as_json = await http.post("/oauth2/token", json=form(signed))
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    # None of the refusals spent the assertion.
    assert (await token_for(http, signed)).status_code == 200


async def test_forged_and_foreign_access_tokens_are_refused(database, http):
    client_id, _ = await registered(database)
    now = int(time.time())
    forged = jwt.encode(
        {
            "iss": "urn:nhs:lfd-service",
            "aud": "urn:nhs:lfd-service",
            "sub": str(client_id),
            "scope": "admin",
            "iat": now,
            "exp": now + 60,
        },
        rsa_key(),
        "RS512",
        headers={"kid": "made-up"},
    )
    answer = await http.get("/v1/deaths", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


async def test_revoked_client_token_stops_working(database, http, api):
    client_id, key = await registered(database)
    token = (await token_for(http, assertion(key, client_id))).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/v1/deaths", headers=headers)).status_code == 200
    from app.auth.service import revoke_client

    async with database.transaction() as session:
        await revoke_client(session, client_id)
    assert (await http.get("/v1/deaths", headers=headers)).status_code == 401


async def test_each_method_can_be_disabled(database, app_factory):
    client_id, key = await registered(database)
    api_key, _ = await new_client(database, [Scope.deaths_read])
    _, no_keys = await app_factory(auth_api_keys_enabled=False)
    refused = await no_keys.get("/v1/deaths", headers={"Authorization": f"Bearer {api_key}"})
    assert refused.status_code == 401 and "/oauth2/token" in refused.json()["detail"]
    token = (await token_for(no_keys, assertion(key, client_id))).json()["access_token"]
    accepted = await no_keys.get("/v1/deaths", headers={"Authorization": f"Bearer {token}"})
    assert accepted.status_code == 200
    _, no_tokens = await app_factory(auth_access_tokens_enabled=False)
    answer = await token_for(no_tokens, assertion(key, client_id))
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"
    refused = await no_tokens.get("/v1/deaths", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401


async def test_configured_token_url_is_the_audience(database, app_factory):
    client_id, key = await registered(database)
    public = "https://lfd.trust.nhs.uk/oauth2/token"
    _, http = await app_factory(oauth_token_url=public)
    assert (await token_for(http, assertion(key, client_id))).status_code == 401
    assert (await token_for(http, assertion(key, client_id, aud=public))).status_code == 200


async def test_a_spent_jti_is_kept_while_the_leeway_still_accepts_its_assertion(database, http):
    """An assertion past its exp is still accepted within the clock leeway (30 s), so its spent
    jti must be kept that long: a later token request that clears expired jtis must not let
    it be replayed (review of issue 18)."""
    client_id, key = await registered(database)
    signed = assertion(key, client_id, exp=int(time.time()) + 2)
    assert (await token_for(http, signed)).status_code == 200
    async with database.transaction() as session:
        spent = await session.scalar(
            select(UsedAssertion.expires_at).where(UsedAssertion.client_id == client_id)
        )
    assert spent is not None and spent.timestamp() >= time.time() + 25
    other_id, other_key = await registered(database)
    assert (await token_for(http, assertion(other_key, other_id))).status_code == 200
    again = await token_for(http, signed)
    assert again.status_code == 401 and "replay" in again.json()["error_description"]


async def test_a_refused_request_spends_nothing(database, http):
    """A request refused after the assertion was checked (another client's id, a scope the
    client does not hold) leaves the jti unspent: the same assertion then works."""
    client_id, key = await registered(database, Scope.deaths_read)
    signed = assertion(key, client_id)
    wrong_client = await token_for(http, signed, client_id=str(uuid.uuid4()))
    assert wrong_client.status_code == 401, wrong_client.text
    wrong_scope = await token_for(http, signed, scope="audit:read")
    assert wrong_scope.status_code == 400 and wrong_scope.json()["error"] == "invalid_scope"
    async with database.transaction() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(UsedAssertion)
            .where(UsedAssertion.client_id == client_id)
        )
    assert stored == 0
    assert (await token_for(http, signed)).status_code == 200


async def test_failed_assertions_are_throttled_per_address(database, app_factory):
    """The token endpoint's failed client authentications count against the source address as
    failed API keys do: past the burst, 429 with Retry-After before any check (review of issue
    18: the token endpoint had no throttle)."""
    _, http = await app_factory(auth_failure_burst=2, auth_failure_refill_per_minute=1.0)
    client_id, _key = await registered(database)
    forged = assertion(rsa_key(), client_id)  # signed with a key nobody registered
    answers = [await token_for(http, forged) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [401, 401]
    assert answers[2].status_code == 429 and answers[2].headers["retry-after"].isdigit()
