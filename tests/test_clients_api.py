"""Clients managed over the API (scope admin; issue 18): create, list, expire, rotate the API
key with a grace period, register and retire public keys, revoke; every change audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.auth.scopes import Scope


def pem_of(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


async def audit_actions(api, client_id: str) -> list[str]:
    # One client's trail (the log also holds every other test's rows on this database).
    answer = await api.get("/v1/audit-events", params={"resource_id": client_id, "limit": 200})
    assert answer.status_code == 200, answer.text
    return [
        item["action"]
        for item in answer.json()["items"]
        if item.get("resource_id") == client_id and item["action"].startswith("client.")
    ]


async def test_admin_manages_a_client_and_every_change_is_audited(api, http):
    created = await api.post(
        "/v1/clients", json={"name": "Review tool", "scopes": ["deaths:read", "reviews:write"]}
    )
    assert created.status_code == 201, created.text
    client = created.json()
    key, client_id = client["key"], client["id"]
    use = {"Authorization": f"Bearer {key}"}
    assert (await http.get("/v1/deaths", headers=use)).status_code == 200

    read = await api.get(f"/v1/clients/{client_id}")
    tag = read.headers["ETag"]
    unchanged = await api.get(f"/v1/clients/{client_id}", headers={"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b""

    listed = (await api.get("/v1/clients")).json()["items"]
    assert client_id in {c["id"] for c in listed}
    assert all("key" not in c and "key_hash" not in c for c in listed)

    rotated = await api.post(f"/v1/clients/{client_id}/rotate-key", json={"grace_seconds": 3600})
    assert rotated.status_code == 200
    new_key = rotated.json()["key"]
    changed = await api.get(f"/v1/clients/{client_id}", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    # Both keys work during the grace period.
    assert (await http.get("/v1/deaths", headers=use)).status_code == 200
    new_use = {"Authorization": f"Bearer {new_key}"}
    assert (await http.get("/v1/deaths", headers=new_use)).status_code == 200
    # A second rotation with no grace ends both older keys.
    third = await api.post(f"/v1/clients/{client_id}/rotate-key", json={"grace_seconds": 0})
    assert third.status_code == 200
    assert (await http.get("/v1/deaths", headers=use)).status_code == 401
    assert (await http.get("/v1/deaths", headers=new_use)).status_code == 401
    last = {"Authorization": f"Bearer {third.json()['key']}"}
    assert (await http.get("/v1/deaths", headers=last)).status_code == 200

    key_body = {"pem": pem_of(ec.generate_private_key(ec.SECP256R1())), "kid": "k1"}
    added = await api.post(f"/v1/clients/{client_id}/public-keys", json=key_body)
    assert added.status_code == 201, added.text
    retired = await api.post(
        f"/v1/clients/{client_id}/public-keys/{added.json()['id']}/retire",
        json={"grace_seconds": 60},
    )
    assert retired.status_code == 200 and retired.json()["expires_at"]

    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    expired = await api.post(f"/v1/clients/{client_id}/expire", json={"expires_at": past})
    assert expired.status_code == 200
    assert (await http.get("/v1/deaths", headers=last)).status_code == 401
    revoked = await api.post(f"/v1/clients/{client_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    again = await api.post(f"/v1/clients/{client_id}/rotate-key", json={"grace_seconds": 0})
    assert again.status_code == 409

    assert sorted(await audit_actions(api, client_id)) == sorted(
        [
            "client.create",
            "client.rotate_key",
            "client.rotate_key",
            "client.add_public_key",
            "client.retire_public_key",
            "client.expire",
            "client.revoke",
        ]
    )


async def test_bad_input_is_a_problem_and_nothing_is_stored(api):
    before = len((await api.get("/v1/clients", params={"include_revoked": "true"})).json()["items"])
    cases = [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["no:such"]},
        {"name": "x", "scopes": ["reviews:write"], "pseudonymised": True},
        {"name": "x", "scopes": ["deaths:read"], "expires_at": "2027-01-01T00:00:00"},
        {"name": "x", "scopes": ["deaths:read"], "extra": 1},
    ]
    for body in cases:
        answer = await api.post("/v1/clients", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    after = len((await api.get("/v1/clients", params={"include_revoked": "true"})).json()["items"])
    assert after == before

    client_id = (
        await api.post("/v1/clients", json={"name": "k", "scopes": ["deaths:read"]})
    ).json()["id"]
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    for body in (
        {"pem": "not a key"},
        {"pem": pem_of(weak)},
        {"jwks_url": "http://insecure.example/jwks.json"},
        {},
        {"pem": pem_of(ec.generate_private_key(ec.SECP256R1())), "jwks_url": "https://a.b/j"},
    ):
        answer = await api.post(f"/v1/clients/{client_id}/public-keys", json=body)
        assert answer.status_code == 422, (body, answer.text)
    keys = await api.get(f"/v1/clients/{client_id}/public-keys")
    assert keys.json()["items"] == []
    missing = await api.get("/v1/clients/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


async def test_only_admin_manages_clients(make_api):
    reader = await make_api(Scope.deaths_read)
    answer = await reader.post("/v1/clients", json={"name": "x", "scopes": ["admin"]})
    assert answer.status_code == 403
    assert (await reader.get("/v1/clients")).status_code == 403


def test_clients_create_help_lists_one_scope_a_line(capsys):
    import pytest

    from app.cli import main

    with pytest.raises(SystemExit):
        main(["clients", "create", "--help"])
    out = capsys.readouterr().out
    lines = out[out.index("\nscopes:\n") :].splitlines()
    for scope in Scope:
        assert sum(1 for line in lines if line.split()[:1] == [scope.value]) == 1, scope
