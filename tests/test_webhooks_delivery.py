"""Webhook delivery against a real HTTP receiver: signatures, retries on a clock the test
drives (no sleeping out backoffs), 410, 429, redirects, the allow-list at delivery time,
rolled-back changes, replay, test messages, rotation, and two workers at once."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from standardwebhooks import Webhook

from app.auth.scopes import Scope
from app.db import Database
from app.kit.time import now
from app.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.webhooks.addresses import AddressRefused, checked_addresses, is_internal
from app.webhooks.worker import (
    MAX_ATTEMPTS,
    SCHEDULE,
    Finished,
    Outcome,
    attempt_lease,
    book,
    claim_due,
    http_client,
    send_due,
)
from tests.conftest import Api, MakeApi, MakeApp
from tests.factories import idem, screening_body
from tests.kit.waiting import until
from tests.kit.webhook_events import drain, emit_events
from tests.kit.webhooks import forget_endpoints
from tests.webhook_receiver import Answer, Receiver

PATH = "/v1/webhook-endpoints"
THEME_UPDATED = "theme.updated"  # emitted directly by these tests, with made-up resource ids


@dataclass(frozen=True)
class System:
    """Who emits the tests' own events (no client, no request)."""

    client_id: uuid.UUID | None = None
    request_id: str | None = None


@dataclass
class Hooks:
    api: Api
    http: httpx.AsyncClient
    database: Database
    receiver: Receiver
    endpoints: list[str]

    async def register(self, **body: Any) -> dict[str, Any]:
        response = await self.api.post(PATH, json={"url": self.receiver.new_url(), **body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        self.endpoints.append(created["id"])
        return created

    async def deliveries(self, endpoint_id: str) -> list[dict[str, Any]]:
        response = await self.api.get(f"{PATH}/{endpoint_id}/deliveries", params={"limit": 200})
        assert response.status_code == 200
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def delivery(self, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        response = await self.api.get(f"{PATH}/{endpoint_id}/deliveries/{delivery_id}")
        assert response.status_code == 200
        detail: dict[str, Any] = response.json()
        return detail


@pytest.fixture
async def hooks(
    app_factory: MakeApp, make_api: MakeApi, receiver: Receiver
) -> AsyncIterator[Hooks]:
    app, http = await app_factory(
        webhook_allowed_urls=[receiver.allowed], webhook_timeout_seconds=2
    )
    api = await make_api(Scope.admin, client=http)
    hooks = Hooks(api, http, app.state.database, receiver, [])
    # Endpoints other tests registered (their receivers are gone) would otherwise keep the
    # worker busy with their deliveries ahead of ours: switch them off.
    async with hooks.database.transaction() as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.enabled.is_(True))
            .values(enabled=False, disabled_reason="left by an earlier test")
        )
    # Whatever earlier tests left becomes deliveries for their endpoints, not ours.
    await drain(hooks.database)
    yield hooks
    # Later tests must not find this test's endpoints (their receiver is gone).
    await forget_endpoints(hooks.database, receiver)


async def test_a_change_is_delivered_signed_per_standard_webhooks(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=["death.created"])
    body = screening_body()
    posted = await hooks.api.post("/v1/screenings", json=body, headers=idem())
    assert posted.status_code == 201, posted.text
    death_id = posted.json()["death"]["id"]

    await drain(hooks.database)
    await send_due(hooks.database)
    received = hooks.receiver.of_resource(death_id)
    assert len(received) == 1
    request = received[0]
    message = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert message["type"] == "death.created"
    assert message["data"] == {
        "resource_type": "death",
        "resource_id": death_id,
        "death_id": death_id,
        "changed": [],
    }
    assert request.headers["webhook-id"] == message["id"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-signature"].startswith("v1,")
    # Thin: nothing that identifies the patient.
    for value in (body["death"]["nhs_number"], body["death"]["family_name"], "LS1 4AP"):
        assert value.encode() not in request.body
    # Verification fails with another secret or a changed body.
    with pytest.raises(Exception, match="signature"):
        Webhook(f"whsec_{'A' * 44}").verify(request.body, request.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(endpoint["secret"]).verify(
            request.body.replace(b"death", b"dearth"), request.headers
        )

    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["event_id"] == message["id"] and delivery["last_status_code"] == 200
    detail = await hooks.delivery(endpoint["id"], delivery["id"])
    assert [a["attempt"] for a in detail["attempt_log"]] == [1]
    assert detail["attempt_log"][0]["status_code"] == 200


async def test_a_receiver_failing_n_times_gets_the_event_once_more_then_never(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    [resource] = await emit_events(hooks.database, 1)
    hooks.receiver.answer(Answer(500), Answer(503), Answer(502))
    await drain(hooks.database)
    clock = now()
    rng = random.Random(7)
    sent_at = [clock]
    await send_due(hooks.database, at=clock, rng=rng)
    # Not due again before its wait (5 s with up to 10% jitter).
    await send_due(hooks.database, at=clock + SCHEDULE[0] * 0.89, rng=rng)
    assert len(hooks.receiver.of_resource(resource)) == 1
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "failed" and delivery["last_error"] == "http_status"
    wait = datetime.fromisoformat(delivery["next_attempt_at"]) - clock
    assert SCHEDULE[0] * 0.9 <= wait <= SCHEDULE[0] * 1.1
    for step in range(1, 4):
        clock += SCHEDULE[step - 1] * 1.11
        sent_at.append(clock)
        await send_due(hooks.database, at=clock, rng=rng)
    # Three failures, then the fourth attempt succeeded; later passes send nothing more.
    for later in (timedelta(hours=1), timedelta(days=2)):
        await send_due(hooks.database, at=clock + later, rng=rng)
    received = hooks.receiver.of_resource(resource)
    assert len(received) == 4
    assert len({item.headers["webhook-id"] for item in received}) == 1
    assert len({item.body for item in received}) == 1
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4
    detail = await hooks.delivery(endpoint["id"], delivery["id"])
    assert [(a["attempt"], a["status_code"]) for a in detail["attempt_log"]] == [
        (1, 500),
        (2, 503),
        (3, 502),
        (4, 200),
    ]


async def test_a_delivery_is_dead_after_the_last_retry(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    [resource] = await emit_events(hooks.database, 1)
    hooks.receiver.default = Answer(500)
    await drain(hooks.database)
    clock = now()
    await send_due(hooks.database, at=clock)
    for wait in SCHEDULE:
        clock += wait * 1.11
        await send_due(hooks.database, at=clock)
    await send_due(hooks.database, at=clock + timedelta(days=3))
    assert len(hooks.receiver.of_resource(resource)) == MAX_ATTEMPTS == 8
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "dead" and delivery["next_attempt_at"] is None
    dead = await hooks.api.get(f"{PATH}/{endpoint['id']}/deliveries", params={"status": "dead"})
    assert [item["id"] for item in dead.json()["items"]] == [delivery["id"]]

    # A replay is one more attempt now, with the same id and body.
    hooks.receiver.default = Answer(200)
    replay = await hooks.api.post(f"{PATH}/{endpoint['id']}/deliveries/{delivery['id']}/replay")
    assert replay.status_code == 202 and replay.json()["status"] == "pending"
    await send_due(hooks.database)
    received = hooks.receiver.of_resource(resource)
    assert len(received) == 9 and received[-1].body == received[0].body
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 9


async def test_410_disables_the_endpoint(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    [resource] = await emit_events(hooks.database, 1)
    hooks.receiver.answer(Answer(410))
    await drain(hooks.database)
    await send_due(hooks.database)
    shown = (await hooks.api.get(f"{PATH}/{endpoint['id']}")).json()
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "dead" and delivery["last_error"] == "gone"
    # Nothing more is queued or sent while it is disabled; replay and test are refused.
    [later] = await emit_events(hooks.database, 1)
    await drain(hooks.database)
    await send_due(hooks.database, at=now() + timedelta(days=1))
    assert len(await hooks.deliveries(endpoint["id"])) == 1
    assert (
        hooks.receiver.of_resource(later) == [] and len(hooks.receiver.of_resource(resource)) == 1
    )
    replay = await hooks.api.post(f"{PATH}/{endpoint['id']}/deliveries/{delivery['id']}/replay")
    assert replay.status_code == 409
    assert (await hooks.api.post(f"{PATH}/{endpoint['id']}/test")).status_code == 409


async def test_429_waits_as_long_as_retry_after_says(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    await emit_events(hooks.database, 1)
    hooks.receiver.answer(Answer(429, {"Retry-After": "120"}))
    await drain(hooks.database)
    clock = now()
    await send_due(hooks.database, at=clock)
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 429
    assert datetime.fromisoformat(delivery["next_attempt_at"]) == clock + timedelta(seconds=120)


async def test_redirects_are_not_followed(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    [resource] = await emit_events(hooks.database, 1)
    elsewhere = f"{hooks.receiver.allowed}elsewhere"
    hooks.receiver.answer(Answer(307, {"Location": elsewhere}))
    await drain(hooks.database)
    await send_due(hooks.database)
    received = hooks.receiver.of_resource(resource)
    assert len(received) == 1 and not received[0].path.endswith("/elsewhere")
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 307


async def test_a_url_no_longer_allowed_is_not_called(hooks: Hooks, base_settings: Any) -> None:
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    [resource] = await emit_events(hooks.database, 1)
    await drain(hooks.database)
    narrower = Database(
        base_settings.model_copy(update={"webhook_allowed_urls": ["https://icb.example.nhs.uk/"]})
    )
    try:
        await send_due(narrower)
    finally:
        await narrower.dispose()
    assert hooks.receiver.of_resource(resource) == []
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "failed" and delivery["last_error"] == "not_allowed"
    detail = await hooks.delivery(endpoint["id"], delivery["id"])
    assert detail["attempt_log"][0]["error_kind"] == "not_allowed"
    assert detail["attempt_log"][0]["status_code"] is None


async def test_a_host_name_that_resolves_to_an_internal_address_is_not_called(
    app_factory: MakeApp,
    make_api: MakeApi,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A name is allowed, but resolves to loopback: the worker connects nowhere, records why
    and logs each refused attempt (issue 18). (The other tests allow the receiver by its IP
    address, 127.0.0.1, which an administrator may do on purpose; `localhost` itself is
    refused at registration, below.)"""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def resolver(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.internal.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    by_name = f"http://hooks.internal.example:{receiver.port}/hooks/"
    app, http = await app_factory(webhook_allowed_urls=[by_name])
    api = await make_api(Scope.admin, client=http)
    try:
        created = await api.post(
            PATH, json={"url": f"{by_name}{uuid.uuid4().hex}", "event_types": [THEME_UPDATED]}
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        [resource] = await emit_events(app.state.database, 1)
        await drain(app.state.database)
        await send_due(app.state.database)
        assert receiver.of_resource(resource) == []
        [delivery] = (await api.get(f"{PATH}/{endpoint['id']}/deliveries")).json()["items"]
        assert delivery["status"] == "failed" and delivery["last_error"] == "internal_address"
        detail = (await api.get(f"{PATH}/{endpoint['id']}/deliveries/{delivery['id']}")).json()
        [attempt] = detail["attempt_log"]
        assert attempt["error_kind"] == "internal_address" and attempt["status_code"] is None
        refused = [r for r in caplog.records if "internal address" in r.getMessage()]
        assert [getattr(r, "endpoint_id", None) for r in refused] == [endpoint["id"]]
    finally:
        async with app.state.database.transaction() as session:
            await session.execute(
                delete(WebhookEndpoint).where(WebhookEndpoint.url.startswith(by_name))
            )


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "hooks.localhost"])
async def test_localhost_is_refused_at_registration(
    app_factory: MakeApp, make_api: MakeApi, host: str
) -> None:
    """`http://localhost:...` always resolves to this machine, which the worker never
    connects to by name: a 422 at registration that says to write the address (issue 18),
    not an endpoint that is accepted and then never delivered to."""
    allowed = f"http://{host}:9000/hooks/"
    _, http = await app_factory(webhook_allowed_urls=[allowed])
    api = await make_api(Scope.admin, client=http)
    answer = await api.post(PATH, json={"url": f"{allowed}x", "event_types": [THEME_UPDATED]})
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error["pointer"] == "/url" and error["code"] == "internal_address"
    assert "127.0.0.1" in error["detail"]
    # Nothing registered (other tests of the worker's database leave endpoints of their own).
    listed = (await api.get(PATH, params={"limit": 200})).json()["items"]
    assert [e for e in listed if "localhost" in e["url"].lower()] == []


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata services
        ("100.64.0.1", True),  # shared (carrier-grade NAT) space
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("::", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("fec0::1", True),
        ("ff02::1", True),
        ("::ffff:127.0.0.1", True),
        ("2002:7f00:1::1", True),  # 6to4 around 127.0.0.1
        ("2002:808:808::1", False),  # 6to4 around 8.8.8.8
        ("8.8.8.8", False),
        ("81.144.0.1", False),
        ("2a00:1450:4009:81f::200e", False),
    ],
)
def test_internal_addresses(address: str, internal: bool) -> None:
    assert is_internal(ipaddress.ip_address(address)) is internal


async def test_a_name_is_resolved_once_and_checked_before_connecting(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The addresses checked are the ones connected to: a resolver whose second answer would
    differ (DNS rebinding) is asked once per connection, and a name with one internal address
    among public ones is refused whole."""
    loop = asyncio.get_running_loop()
    answers: list[list[str]] = []

    async def resolver(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        addresses = answers.pop(0)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    answers[:] = [["81.144.0.1", "10.0.0.1"]]
    with pytest.raises(AddressRefused):
        await checked_addresses("partner.example", 443)
    answers[:] = [["81.144.0.1", "81.144.0.2", "81.144.0.1"]]
    assert await checked_addresses("partner.example", 443) == ["81.144.0.1", "81.144.0.2"]
    assert await checked_addresses("127.0.0.1", 80) == ["127.0.0.1"]  # a literal: no lookup

    # Through the worker's own HTTP client, 127.0.0.1 standing in for a public address and
    # 10.255.255.1 for an internal one: the name's one answer, checked, is where the request
    # goes; a second lookup (which would answer the internal address) never happens.
    monkeypatch.setattr(
        "app.webhooks.addresses.is_internal", lambda address: str(address) == "10.255.255.1"
    )
    url = f"http://rebind.example:{receiver.port}/hooks/x"
    answers[:] = [["127.0.0.1"], ["10.255.255.1"]]
    async with http_client(2) as client:
        response = await client.post(url, content=b"{}")
        assert response.status_code == 200 and answers == [["10.255.255.1"]]
        with pytest.raises(AddressRefused):
            await client.post(url.replace("rebind", "other"), content=b"{}")
    assert receiver.received[-1].headers["host"] == f"rebind.example:{receiver.port}"


async def test_a_timeout_is_a_failed_attempt(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    await emit_events(hooks.database, 1)
    # The receiver answers only when the test lets it, long after the attempt's timeout.
    released = threading.Event()
    hooks.receiver.answer(Answer(200, hold=released))
    try:
        await drain(hooks.database)
        await send_due(hooks.database)
    finally:
        released.set()
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "failed" and delivery["last_error"] == "timeout"


async def test_a_rolled_back_change_sends_nothing(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    rolled_back = await emit_events(hooks.database, 3, rollback=True)
    committed = await emit_events(hooks.database, 1)
    await drain(hooks.database)
    await send_due(hooks.database)
    for resource in rolled_back:
        assert hooks.receiver.of_resource(resource) == []
    assert len(hooks.receiver.of_resource(committed[0])) == 1
    assert len(await hooks.deliveries(endpoint["id"])) == 1


async def test_types_filter_and_events_before_registration(hooks: Hooks) -> None:
    [before] = await emit_events(hooks.database, 1)
    everything = await hooks.register()
    deaths_only = await hooks.register(event_types=["death.created"])
    themes = await hooks.register(event_types=["theme.*"])
    [after] = await emit_events(hooks.database, 1)
    await drain(hooks.database)
    await send_due(hooks.database)
    assert hooks.receiver.of_resource(before) == []
    received = hooks.receiver.of_resource(after)
    assert sorted(item.path.rsplit("/", 1)[1] for item in received) == sorted(
        endpoint["url"].rsplit("/", 1)[1] for endpoint in (everything, themes)
    )
    assert await hooks.deliveries(deaths_only["id"]) == []


async def test_a_test_message_and_a_rotated_secret(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=["death.created"])
    queued = await hooks.api.post(f"{PATH}/{endpoint['id']}/test")
    assert queued.status_code == 202 and queued.json()["event_type"] == "webhook.test"
    await send_due(hooks.database)
    [test] = [m for m in hooks.receiver.received if m.message["type"] == "webhook.test"]
    assert Webhook(endpoint["secret"]).verify(test.body, test.headers)["data"] == {
        "endpoint_id": endpoint["id"]
    }

    rotated = (await hooks.api.post(f"{PATH}/{endpoint['id']}/rotate-secret")).json()
    assert (await hooks.api.post(f"{PATH}/{endpoint['id']}/test")).status_code == 202
    await send_due(hooks.database)
    tests = [m for m in hooks.receiver.received if m.message["type"] == "webhook.test"]
    assert len(tests) == 2
    latest = tests[-1]
    # Two signatures during the overlap: each secret verifies on its own.
    assert len(latest.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(rotated["secret"]).verify(latest.body, latest.headers)
    assert Webhook(endpoint["secret"]).verify(latest.body, latest.headers)

    # A day later only the new secret signs.
    await send_due(hooks.database)
    assert (await hooks.api.post(f"{PATH}/{endpoint['id']}/test")).status_code == 202
    await send_due(hooks.database, at=now() + timedelta(hours=25))
    final = [m for m in hooks.receiver.received if m.message["type"] == "webhook.test"][-1]
    assert len(final.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(rotated["secret"]).verify(final.body, final.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(endpoint["secret"]).verify(final.body, final.headers)


async def test_two_workers_at_once_send_each_attempt_once(hooks: Hooks, base_settings: Any) -> None:
    endpoints = [await hooks.register(event_types=[THEME_UPDATED]) for _ in range(2)]
    resources = await emit_events(hooks.database, 60)
    # Every message fails once, then succeeds: two attempts each, never three.
    await drain(hooks.database)
    # 120 failures in a row would open the endpoints' circuit breakers (issue 11, defect 6)
    # and hold the rest back: this test is about claims, so the threshold is out of reach.
    settings = hooks.database.settings.model_copy(
        update={"webhook_concurrency": 4, "webhook_circuit_failures": 100}
    )
    workers = [Database(settings) for _ in range(3)]
    try:
        clock = now()
        hooks.receiver.answer(*[Answer(500) for _ in range(120)])
        await asyncio.gather(*(send_due(w, at=clock, batch=7, max_batches=1000) for w in workers))
        later = clock + SCHEDULE[0] * 1.11
        await asyncio.gather(*(send_due(w, at=later, batch=7, max_batches=1000) for w in workers))
    finally:
        for worker in workers:
            await worker.dispose()
    by_message: dict[tuple[str, str], int] = {}
    for item in hooks.receiver.received:
        if item.message.get("data", {}).get("resource_id") in {str(r) for r in resources}:
            key = (item.path, item.headers["webhook-id"])
            by_message[key] = by_message.get(key, 0) + 1
    assert len(by_message) == 2 * len(resources)
    assert set(by_message.values()) == {2}
    async with hooks.database.transaction() as session:
        rows = (
            await session.scalars(
                select(WebhookDelivery).where(
                    WebhookDelivery.endpoint_id.in_([uuid.UUID(e["id"]) for e in endpoints])
                )
            )
        ).all()
    assert len(rows) == 120 and {row.status for row in rows} == {"delivered"}
    assert {row.attempts for row in rows} == {2}


async def test_a_live_lease_is_never_claimed_twice(hooks: Hooks) -> None:
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    await emit_events(hooks.database, 1)
    await drain(hooks.database)
    clock = now()
    rng = random.Random()
    lease = attempt_lease(hooks.database.settings.webhook_timeout_seconds)
    first = await claim_due(hooks.database, "worker-a", clock)
    [mine] = [c for c in first if str(c.endpoint_id) == endpoint["id"]]
    again = await claim_due(hooks.database, "worker-b", clock + timedelta(seconds=30))
    assert [c for c in again if str(c.endpoint_id) == endpoint["id"]] == []
    # Worker A starts its attempt: the number is taken and the lease renewed from then.
    started = await book(hooks.database, "worker-a", [], [mine], clock, rng, lease)
    assert started.started == {mine.delivery_id: 1}
    # Worker A stalls past that lease: B claims the delivery and takes the next number.
    expired = clock + lease + timedelta(seconds=1)
    [taken] = [
        c
        for c in await claim_due(hooks.database, "worker-b", expired)
        if str(c.endpoint_id) == endpoint["id"]
    ]
    assert (await book(hooks.database, "worker-b", [], [taken], expired, rng, lease)).started == {
        taken.delivery_id: 2
    }
    # A's late result is logged (the request was made) but settles nothing: B's attempt decides.
    late = Finished(replace(mine, attempt=1), Outcome(clock, expired, 1, 200, None), expired)
    assert (await book(hooks.database, "worker-a", [late], [], expired, rng, lease)).settled == (
        frozenset()
    )
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "pending" and delivery["attempts"] == 2
    detail = await hooks.delivery(endpoint["id"], delivery["id"])
    assert [(a["attempt"], a["status_code"]) for a in detail["attempt_log"]] == [(1, 200)]
    # B's attempt ends: settled, logged, next to A's.
    done = Finished(replace(taken, attempt=2), Outcome(expired, expired, 1, 503, None), expired)
    booked = await book(hooks.database, "worker-b", [done], [], expired, rng, lease)
    assert booked.settled == {taken.delivery_id}
    detail = await hooks.delivery(endpoint["id"], delivery["id"])
    assert detail["status"] == "failed" and detail["attempts"] == 2
    assert [(a["attempt"], a["status_code"]) for a in detail["attempt_log"]] == [
        (1, 200),
        (2, 503),
    ]


async def test_a_claim_that_lapsed_before_its_attempt_is_not_sent(hooks: Hooks) -> None:
    """A worker whose claim ran out before it reached a delivery does not send it if another
    worker has claimed it since, and takes no attempt number for it."""
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    await emit_events(hooks.database, 1)
    await drain(hooks.database)
    clock = now()
    rng = random.Random()
    lease = attempt_lease(hooks.database.settings.webhook_timeout_seconds)
    short = timedelta(seconds=1)
    [mine] = [
        c
        for c in await claim_due(hooks.database, "worker-a", clock, lease=short)
        if str(c.endpoint_id) == endpoint["id"]
    ]
    later = clock + short * 2
    [theirs] = [
        c
        for c in await claim_due(hooks.database, "worker-b", later)
        if str(c.endpoint_id) == endpoint["id"]
    ]
    assert (await book(hooks.database, "worker-a", [], [mine], later, rng, lease)).started == {}
    assert (await book(hooks.database, "worker-b", [], [theirs], later, rng, lease)).started == {
        theirs.delivery_id: 1
    }


async def test_a_slow_batch_that_outlives_its_claim_is_sent_once_and_logged(
    hooks: Hooks,
) -> None:
    """Two workers, a slow receiver and a claim lease shorter than a batch takes to send:
    worker B claims what worker A had claimed but not yet started once A's lease has run out,
    and A, reaching those, skips them; yet every message is sent once and every attempt is in
    the log (issue 5: several workers never deliver the same attempt twice). No real time
    decides it: the workers' clocks are the test's (B's is past A's claim lease), and the
    receiver holds A's first two attempts until B has claimed the rest and begun sending."""
    endpoint = await hooks.register(event_types=[THEME_UPDATED])
    resources = await emit_events(hooks.database, 20)
    await drain(hooks.database)
    held = threading.Event()
    hooks.receiver.default = Answer(200, hold=held)
    # A's batch of 20 in 2 lanes: its first two attempts are held at the receiver.
    settings = hooks.database.settings.model_copy(
        update={"webhook_concurrency": 2, "webhook_timeout_seconds": 60}
    )
    a, b = Database(settings), Database(settings)
    short = timedelta(seconds=0.5)
    start = now()

    def requests() -> int:
        return sum(len(hooks.receiver.of_resource(resource)) for resource in resources)

    try:
        first = asyncio.create_task(send_due(a, at=start, batch=20, max_batches=100, lease=short))
        await until(lambda: requests() >= 2 or first.done(), "A sends its first two")
        hooks.receiver.default = Answer(200)
        # B's clock is past A's claim lease, which has lapsed with 18 of A's batch not started.
        second = asyncio.create_task(
            send_due(b, at=start + short * 2, batch=20, max_batches=100, lease=short)
        )
        await until(lambda: requests() >= 3 or second.done(), "B sends what A had claimed")
        held.set()
        made = [await second, await first]
    finally:
        held.set()
        await a.dispose()
        await b.dispose()
    assert sum(made) == len(resources) and min(made) > 0
    for resource in resources:
        assert len(hooks.receiver.of_resource(resource)) == 1
    deliveries = await hooks.deliveries(endpoint["id"])
    assert len(deliveries) == len(resources)
    assert {(d["status"], d["attempts"]) for d in deliveries} == {("delivered", 1)}
    async with hooks.database.transaction() as session:
        logged = (
            await session.execute(
                select(WebhookAttempt.attempt, WebhookAttempt.status_code).where(
                    WebhookAttempt.delivery_id.in_([uuid.UUID(d["id"]) for d in deliveries])
                )
            )
        ).all()
    assert sorted(logged) == [(1, 200)] * len(resources)


async def test_the_app_delivers_by_itself_inside_serve(
    app_factory: MakeApp, make_api: MakeApi, receiver: Receiver
) -> None:
    """`lfd serve` runs the webhook loop in its lifespan (every second by default): a screening
    posted to the running app reaches the receiver with no one calling the worker."""
    app, http = await app_factory(
        webhook_allowed_urls=[receiver.allowed],
        run_worker_in_serve=True,
        webhook_worker_interval_seconds=0.2,
    )
    api = await make_api(Scope.admin, client=http)
    try:
        async with app.router.lifespan_context(app):
            assert app.state.webhook_worker.running
            created = await api.post(
                PATH,
                json={"url": f"{receiver.allowed}serve", "event_types": ["death.created"]},
            )
            assert created.status_code == 201
            posted = await api.post("/v1/screenings", json=screening_body(), headers=idem())
            death_id = posted.json()["death"]["id"]
            for _ in range(3000):  # waits on the loop (and, on PostgreSQL, the feed's horizon)
                if receiver.of_resource(death_id):
                    break
                await asyncio.sleep(0.05)
            [received] = receiver.of_resource(death_id)
            assert Webhook(created.json()["secret"]).verify(received.body, received.headers)
        assert not app.state.webhook_worker.running
    finally:
        await forget_endpoints(app.state.database, receiver)
