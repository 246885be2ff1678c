"""Verified users (issue 18): a client configured with its trust's identity provider sends a
signed X-User-Assertion; the audit records the verified user and role. Free-text
X-On-Behalf-Of stays possible where allowed, marked unverified."""

from __future__ import annotations

import time

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.auth.oauth.jwks import JwksCache
from tests.factories import idem, screening_body

ISSUER = "https://idp.trust.example/realms/Healthcare"
AUDIENCE = "lfd-review-tool"


def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def user_token(key, **claims) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "555123456789", "iat": now, "exp": now + 300}
    body |= {"selected_roleid": "R8000:G8000:R8003"}
    body.update(claims)
    return jwt.encode(body, key, "RS256", headers={"kid": "idp-1"})


async def configured_client(api, idp, *, required: bool, allow_unverified: bool, **provider):
    created = await api.post("/v1/clients", json={"name": "Tool", "scopes": ["deaths:read"]})
    client = created.json()
    config = {"issuer": ISSUER, "audience": AUDIENCE, "role_claim": "selected_roleid"}
    config |= provider or {"pem": pem_of(idp)}
    config["required"] = required
    answer = await api.post(
        f"/v1/clients/{client['id']}/users",
        json={"identity_provider": config, "allow_unverified_on_behalf_of": allow_unverified},
    )
    assert answer.status_code == 200, answer.text
    return client


async def a_death(api) -> str:
    created = await api.post("/v1/screenings", json=screening_body(), headers=idem())
    assert created.status_code == 201, created.text
    return str(created.json()["death_id"])


async def last_audit(api, client_id: str) -> dict:
    # That client's own rows (the log holds every other test's rows on this database too).
    answer = await api.get("/v1/audit-events", params={"client_id": client_id, "limit": 200})
    assert answer.status_code == 200, answer.text
    return max(answer.json()["items"], key=lambda row: row["occurred_at"])


async def test_verified_user_is_recorded_with_role(api, http):
    idp = idp_key()
    client = await configured_client(api, idp, required=True, allow_unverified=False)
    death_id = await a_death(api)
    headers = {"Authorization": f"Bearer {client['key']}", "X-User-Assertion": user_token(idp)}
    answer = await http.get(f"/v1/deaths/{death_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    row = await last_audit(api, client["id"])
    assert row["on_behalf_of"] == "555123456789"
    assert row["on_behalf_of_verified"] is True
    assert row["on_behalf_of_role"] == "R8000:G8000:R8003"


async def test_bad_user_assertions_are_refused(api, http):
    idp = idp_key()
    client = await configured_client(api, idp, required=True, allow_unverified=False)
    auth = {"Authorization": f"Bearer {client['key']}"}
    cases = {
        "expired": user_token(idp, exp=int(time.time()) - 600),
        "aud": user_token(idp, aud="someone-else"),
        "iss": user_token(idp, iss="https://evil.example"),
        "signature": user_token(idp_key()),
        "not a signed JWT": "garbage",
    }
    for words, token in cases.items():
        answer = await http.get("/v1/deaths", headers={**auth, "X-User-Assertion": token})
        assert answer.status_code == 401, words
        assert words in answer.json()["detail"], (words, answer.json()["detail"])
    # Required: neither nothing nor free text will do.
    assert (await http.get("/v1/deaths", headers=auth)).status_code == 401
    free = await http.get("/v1/deaths", headers={**auth, "X-On-Behalf-Of": "Dr Who"})
    assert free.status_code == 401


async def test_free_text_is_marked_unverified_where_allowed(api, http):
    idp = idp_key()
    client = await configured_client(api, idp, required=False, allow_unverified=True)
    auth = {"Authorization": f"Bearer {client['key']}"}
    death_id = await a_death(api)
    answer = await http.get(
        f"/v1/deaths/{death_id}", headers={**auth, "X-On-Behalf-Of": "Dr A Smith"}
    )
    assert answer.status_code == 200
    row = await last_audit(api, client["id"])
    assert row["on_behalf_of"] == "Dr A Smith" and row["on_behalf_of_verified"] is False
    assert row["on_behalf_of_role"] is None


async def test_free_text_refused_where_not_allowed(api, http):
    idp = idp_key()
    client = await configured_client(api, idp, required=False, allow_unverified=False)
    auth = {"Authorization": f"Bearer {client['key']}"}
    answer = await http.get("/v1/deaths", headers={**auth, "X-On-Behalf-Of": "Dr A Smith"})
    assert answer.status_code == 400
    assert (await http.get("/v1/deaths", headers=auth)).status_code == 200


async def test_assertion_without_a_configured_provider_is_refused(api, http):
    idp = idp_key()
    answer = await api.get("/v1/deaths", headers={"X-User-Assertion": user_token(idp)})
    assert answer.status_code == 400


async def test_identity_provider_keys_from_a_jwks_url(api, app_and_http):
    app, http = app_and_http
    idp = idp_key()
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(idp.public_key(), as_dict=True)
    jwks = {"keys": [{**jwk, "kid": "idp-1", "use": "sig"}]}
    fetched: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, json=jwks)

    url = "https://idp.trust.example/jwks"
    client = await configured_client(api, idp, required=True, allow_unverified=False, jwks_url=url)
    # The identity provider stands in through the JWKS cache's transport.
    from app.auth.oauth.state import make_state

    state = make_state(app.state.settings, app.state.database)
    state.jwks = JwksCache(300, 5, transport=httpx.MockTransport(serve))
    app.state.oauth = state
    headers = {"Authorization": f"Bearer {client['key']}"}
    for _ in range(2):
        answer = await http.get(
            "/v1/deaths", headers={**headers, "X-User-Assertion": user_token(idp)}
        )
        assert answer.status_code == 200, answer.text
    assert fetched == [url]  # cached
    forged = user_token(idp_key())
    answer = await http.get("/v1/deaths", headers={**headers, "X-User-Assertion": forged})
    assert answer.status_code == 401
