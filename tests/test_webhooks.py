"""Webhook endpoints through the API: registration against the allow-list, the secret shown
once, ownership, conditional requests, rotation, deletion, validation problems."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.auth.scopes import Scope
from app.webhooks.urls import UrlRefused, check_url, is_allowed
from tests.conftest import Api, MakeApi, MakeApp
from tests.factories import idem
from tests.kit.webhooks import forget_endpoints
from tests.webhook_receiver import Receiver

PATH = "/v1/webhook-endpoints"


@dataclass
class Hooks:
    api: Api
    http: httpx.AsyncClient
    app: Any
    receiver: Receiver

    @property
    def url(self) -> str:
        return self.receiver.new_url()


@pytest.fixture
async def hooks(
    app_factory: MakeApp, make_api: MakeApi, receiver: Receiver
) -> AsyncIterator[Hooks]:
    app, http = await app_factory(webhook_allowed_urls=[receiver.allowed])
    api = await make_api(Scope.webhooks_manage, client=http)
    yield Hooks(api, http, app, receiver)
    await forget_endpoints(app.state.database, receiver)


async def register(hooks: Hooks, **body: Any) -> dict[str, Any]:
    response = await hooks.api.post(PATH, json={"url": hooks.url, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_the_secret_is_shown_on_create_and_never_again(hooks: Hooks) -> None:
    response = await hooks.api.post(
        PATH, json={"url": hooks.url, "description": "ICB sync", "event_types": ["death.created"]}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) >= 6 + 44
    assert response.headers["Location"] == f"{PATH}/{created['id']}"
    assert created["event_types"] == ["death.created"] and created["enabled"] is True

    shown = await hooks.api.get(f"{PATH}/{created['id']}")
    assert shown.status_code == 200 and "secret" not in shown.json()
    assert created["secret"] not in shown.text
    listed = await hooks.api.get(PATH, params={"limit": 200})
    assert created["secret"] not in listed.text
    assert created["id"] in {item["id"] for item in listed.json()["items"]}


async def test_an_idempotent_create_replays_the_first_answer(hooks: Hooks) -> None:
    key = idem()
    body = {"url": hooks.url}
    first = await hooks.api.post(PATH, json=body, headers=key)
    again = await hooks.api.post(PATH, json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    other_body = await hooks.api.post(PATH, json={"url": hooks.url}, headers=key)
    assert other_body.status_code == 422


async def test_no_allow_list_means_no_webhooks(app_factory: MakeApp, make_api: MakeApi) -> None:
    _, http = await app_factory(webhook_allowed_urls=[])
    api = await make_api(Scope.webhooks_manage, client=http)
    response = await api.post(PATH, json={"url": "https://icb.example.nhs.uk/hooks"})
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["pointer"] == "/url" and error["code"] == "url_not_allowed"
    assert "LFD_WEBHOOK_ALLOWED_URLS" in error["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:{port}/hooks/x",
        "http://user:pass@127.0.0.1:{port}/hooks/x",
        "http://127.0.0.1:{port}/other/x",
        "http://127.0.0.1:{port}/hooksmith",
        "http://127.0.0.1:{port}/hooks/../admin",
        "http://127.0.0.1:{port}/hooks/%2e%2e/admin",
        "http://127.0.0.1:{port}/hooks/..%2f..%2fadmin",
        "http://127.0.0.1:{port}/hooks/a%2Fb",
        "http://127.0.0.1:{port}/hooks/a%5cb",
        "http://127.0.0.1:{port}/hooks/..%5C..%5Cadmin",
        "http://127.0.0.1:{port}/hooks/a\\b",
        "http://127.0.0.1:1/hooks/x",
        "https://127.0.0.1:{port}/hooks/x",
        "http://localhost:{port}/hooks/x",
        "http://127.0.0.1:{port}/hooks/x#fragment",
        "not a url",
    ],
)
async def test_urls_outside_the_allow_list_are_refused(hooks: Hooks, url: str) -> None:
    response = await hooks.api.post(PATH, json={"url": url.format(port=hooks.receiver.port)})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/url"


def test_prefixes_match_by_host_port_and_path_segments() -> None:
    allowed = ["https://icb.example.nhs.uk", "http://127.0.0.1:8081/hooks"]
    assert is_allowed("https://ICB.example.nhs.uk/anything", allowed)
    assert is_allowed("https://icb.example.nhs.uk:443/x", allowed)
    assert not is_allowed("https://icb.example.nhs.uk.evil.example/x", allowed)
    assert not is_allowed("https://icb.example.nhs.uk:8443/x", allowed)
    assert is_allowed("http://127.0.0.1:8081/hooks", allowed)
    assert is_allowed("http://127.0.0.1:8081/hooks/a?b=c", allowed)
    assert is_allowed("http://127.0.0.1:8081/hooks/a?next=%2Fx", allowed)  # a query may
    assert not is_allowed("http://127.0.0.1:8081/hooksx", allowed)
    assert not is_allowed("http://127.0.0.1:8082/hooks/a", allowed)
    with pytest.raises(UrlRefused, match="allows no webhook URLs"):
        check_url("https://icb.example.nhs.uk/", [])


async def test_event_types_are_checked(hooks: Hooks) -> None:
    response = await hooks.api.post(
        PATH, json={"url": hooks.url, "event_types": ["death.created", "death.exploded"]}
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["pointer"] == "/event_types" and "death.exploded" in error["detail"]
    wildcard = await hooks.api.post(PATH, json={"url": hooks.url, "event_types": ["nothing.*"]})
    assert wildcard.status_code == 422
    whole = await hooks.api.post(PATH, json={"url": hooks.url, "event_types": ["referral.*"]})
    assert whole.status_code == 201 and whole.json()["event_types"] == ["referral.*"]
    extra = await hooks.api.post(PATH, json={"url": hooks.url, "secret": "mine"})
    assert extra.status_code == 422


async def test_another_clients_endpoint_is_not_found(hooks: Hooks, make_api: MakeApi) -> None:
    created = await register(hooks)
    other = await make_api(Scope.webhooks_manage, client=hooks.http)
    one = f"{PATH}/{created['id']}"
    assert (await other.get(one)).status_code == 404
    assert (
        await other.patch(one, json={"enabled": False}, headers={"If-Match": "*"})
    ).status_code == 404
    assert (await other.post(f"{one}/rotate-secret")).status_code == 404
    assert (await other.post(f"{one}/test")).status_code == 404
    assert (await other.get(f"{one}/deliveries")).status_code == 404
    assert (await other.request("DELETE", one)).status_code == 404
    listed = await other.get(PATH, params={"limit": 200})
    assert created["id"] not in {item["id"] for item in listed.json()["items"]}
    admin = await make_api(Scope.admin, client=hooks.http)
    assert (await admin.get(one)).status_code == 200


async def test_conditional_read_and_update(hooks: Hooks) -> None:
    created = await register(hooks)
    one = f"{PATH}/{created['id']}"
    first = await hooks.api.get(one)
    tag = first.headers["ETag"]
    unchanged = await hooks.api.get(one, headers={"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == tag

    assert (await hooks.api.patch(one, json={"description": "x"})).status_code == 428
    disabled = await hooks.api.patch(one, json={"enabled": False}, headers={"If-Match": tag})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["enabled"] is False
    assert disabled.json()["disabled_reason"] == "disabled by a client"
    stale = await hooks.api.patch(one, json={"description": "late"}, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert (await hooks.api.get(one, headers={"If-None-Match": tag})).status_code == 200

    again = await hooks.api.patch(
        one,
        json={"enabled": True, "event_types": ["referral.created", "referral.created"]},
        headers={"If-Match": disabled.headers["ETag"]},
    )
    assert again.status_code == 200
    body = again.json()
    assert body["enabled"] is True and body["disabled_reason"] is None
    assert body["event_types"] == ["referral.created"]
    moved = await hooks.api.patch(
        one, json={"url": "http://10.0.0.1/hooks/x"}, headers={"If-Match": again.headers["ETag"]}
    )
    assert moved.status_code == 422 and moved.json()["errors"][0]["pointer"] == "/url"
    cleared = await hooks.api.patch(
        one, json={"url": None}, headers={"If-Match": again.headers["ETag"]}
    )
    assert cleared.status_code == 422


async def test_rotation_shows_a_new_secret_and_keeps_the_old_one_a_day(hooks: Hooks) -> None:
    created = await register(hooks)
    rotated = await hooks.api.post(f"{PATH}/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    assert body["previous_secret_expires_at"] is not None and body["version"] == 2
    shown = await hooks.api.get(f"{PATH}/{created['id']}")
    assert body["secret"] not in shown.text and created["secret"] not in shown.text


async def test_delete_removes_the_endpoint(hooks: Hooks) -> None:
    created = await register(hooks)
    one = f"{PATH}/{created['id']}"
    assert (
        await hooks.api.request("DELETE", one, headers={"If-Match": '"0.1"'})
    ).status_code == 412
    assert (await hooks.api.request("DELETE", one)).status_code == 204
    assert (await hooks.api.get(one)).status_code == 404
    assert (await hooks.api.request("DELETE", one)).status_code == 404


async def test_the_delivery_log_of_an_unknown_delivery_is_not_found(hooks: Hooks) -> None:
    created = await register(hooks)
    one = f"{PATH}/{created['id']}"
    assert (await hooks.api.get(f"{one}/deliveries/{uuid.uuid4()}")).status_code == 404
    assert (await hooks.api.post(f"{one}/deliveries/{uuid.uuid4()}/replay")).status_code == 404
    assert (await hooks.api.get(f"{one}/deliveries", params={"status": "lost"})).status_code == 422
    assert (
        await hooks.api.get(f"{one}/deliveries", params={"cursor": "nonsense"})
    ).status_code == 400
    empty = await hooks.api.get(f"{one}/deliveries")
    assert empty.status_code == 200 and empty.json() == {"items": [], "next_cursor": None}


async def test_the_endpoints_list_pages(hooks: Hooks, make_api: MakeApi) -> None:
    api = await make_api(Scope.webhooks_manage, client=hooks.http)
    for _ in range(3):
        assert (await api.post(PATH, json={"url": hooks.url})).status_code == 201
    first = await api.get(PATH, params={"limit": 2})
    assert len(first.json()["items"]) == 2 and first.json()["next_cursor"]
    second = await api.get(PATH, params={"limit": 2, "cursor": first.json()["next_cursor"]})
    assert len(second.json()["items"]) == 1 and second.json()["next_cursor"] is None


async def test_a_client_without_the_scope_is_refused(hooks: Hooks, make_api: MakeApi) -> None:
    reader = await make_api(Scope.deaths_read, client=hooks.http)
    assert (await reader.get(PATH)).status_code == 403
    assert (await reader.post(PATH, json={"url": hooks.url})).status_code == 403


@pytest.mark.parametrize("value", ["yes", "true", "1", 1, 0, None])
async def test_enabled_is_a_strict_boolean(hooks: Hooks, value: object) -> None:
    created = await hooks.api.post(PATH, json={"url": hooks.url, "enabled": value})
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["pointer"] == "/enabled"
    endpoint = await register(hooks)
    one = f"{PATH}/{endpoint['id']}"
    tag = (await hooks.api.get(one)).headers["ETag"]
    patched = await hooks.api.patch(one, json={"enabled": value}, headers={"If-Match": tag})
    assert patched.status_code == 422, patched.text
    assert patched.json()["errors"][0]["pointer"] == "/enabled"
    assert (await hooks.api.get(one)).json()["enabled"] is True
    off = await hooks.api.patch(one, json={"enabled": False}, headers={"If-Match": tag})
    assert off.status_code == 200 and off.json()["enabled"] is False
