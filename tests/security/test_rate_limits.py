"""Issue 11, defect 8: rate limits, throttled authentication failures, slow clients.

- A client over its rate gets 429 with `Retry-After` and `RateLimit-*` headers; a route with
  its own limit refuses on its own; other clients are not affected.
- Wrong keys are throttled per source address and per key prefix, without locking the real
  key's holder out from another address; the same bad key twice costs one lookup.
- A body that trickles is cut off (408); a connection trickling its headers is closed (the
  `lfd serve` protocol classes, app.http_guard).

Each test builds its own app with low limits (the defaults are far above what tests send).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest
import uvicorn

from app.auth.scopes import Scope

PROBLEM_JSON = "application/problem+json"
BOUND_SECONDS = 30  # a bound on a scenario, far above the timeouts under test


def client_at(app: Any, address: str) -> httpx.AsyncClient:
    """An httpx client whose requests come from ``address``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 4321)),
        base_url="http://testserver",
    )


def assert_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["type"].endswith("/too-many-requests")
    assert int(response.headers["retry-after"]) >= 1


def wrong_secret(key: str) -> str:
    prefix = key.split("_")[1]
    return f"lfd_{prefix}_{secrets.token_urlsafe(24)}"


async def test_a_client_over_its_rate_gets_429_with_ratelimit_headers(
    app_factory, make_api
) -> None:
    _, http = await app_factory(rate_limit_per_second=0.01, rate_limit_burst=3)
    api = await make_api(Scope.admin, client=http)
    other = await make_api(Scope.admin, client=http)
    remaining = []
    for _ in range(3):
        response = await api.get("/v1/deaths")
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-limit"] == "3"
        remaining.append(int(response.headers["ratelimit-remaining"]))
        assert int(response.headers["ratelimit-reset"]) >= 1
    assert remaining == [2, 1, 0]
    refused = await api.get("/v1/deaths")
    assert_429(refused)
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-limit"] == "3"
    # Another client has its own bucket.
    assert (await other.get("/v1/deaths")).status_code == 200


async def test_a_route_with_its_own_limit_refuses_on_its_own(app_factory, make_api) -> None:
    _, http = await app_factory(rate_limit_routes={"GET /v1/reports": (0.01, 2)})
    api = await make_api(Scope.admin, client=http)
    for _ in range(2):
        response = await api.get("/v1/reports/themes")
        assert response.status_code != 429, response.text
    assert_429(await api.get("/v1/reports/care-quality"))
    assert (await api.get("/v1/deaths")).status_code == 200


async def test_failed_keys_throttle_the_source_not_the_real_key_holder(
    app_factory, make_api
) -> None:
    app, http = await app_factory(auth_failure_burst=3, auth_failure_refill_per_minute=0.1)
    real = await make_api(Scope.admin, client=http)
    attacker = client_at(app, "203.0.113.66")
    holder = client_at(app, "198.51.100.7")
    elsewhere = client_at(app, "192.0.2.44")
    try:
        guesses = [
            await attacker.get(
                "/v1/deaths", headers={"Authorization": f"Bearer {wrong_secret(real.key)}"}
            )
            for _ in range(3)
        ]
        assert [g.status_code for g in guesses] == [401, 401, 401]
        # The source has used up its failures: refused, whatever key it sends.
        assert_429(
            await attacker.get(
                "/v1/deaths", headers={"Authorization": f"Bearer {wrong_secret(real.key)}"}
            )
        )
        assert_429(await attacker.get("/v1/deaths", headers=real.headers))
        # The real key's holder, from its own address, is not locked out...
        assert (await holder.get("/v1/deaths", headers=real.headers)).status_code == 200
        # ...while further wrong secrets for the prefix, from anywhere, are throttled.
        assert_429(
            await elsewhere.get(
                "/v1/deaths", headers={"Authorization": f"Bearer {wrong_secret(real.key)}"}
            )
        )
        assert (await elsewhere.get("/v1/deaths", headers=real.headers)).status_code == 200
    finally:
        for client in (attacker, holder, elsewhere):
            await client.aclose()


async def test_a_bad_key_does_not_always_cost_a_lookup(app_factory, make_api, monkeypatch) -> None:
    from app.auth.oauth import bearer as deps

    # Without the credential cache (issue 19; tests/test_credential_cache.py has its own
    # tests): on PostgreSQL it serves a real key's later requests once its listener is live,
    # which made the count below depend on timing.
    _, http = await app_factory(auth_cache_seconds=0)
    real = await make_api(Scope.admin, client=http)
    lookups: list[str] = []
    original = deps.find_active_client

    async def counted(session: Any, key: str) -> Any:
        lookups.append(key)
        return await original(session, key)

    monkeypatch.setattr(deps, "find_active_client", counted)
    bad = {"Authorization": f"Bearer {wrong_secret(real.key)}"}
    for _ in range(5):
        assert (await http.get("/v1/deaths", headers=bad)).status_code == 401
    assert len(lookups) == 1
    malformed = {"Authorization": "Bearer not-a-key"}
    assert (await http.get("/v1/deaths", headers=malformed)).status_code == 401
    assert len(lookups) == 1
    # The real key is looked up every time (a revocation takes effect at once).
    assert (await http.get("/v1/deaths", headers=real.headers)).status_code == 200
    assert (await http.get("/v1/deaths", headers=real.headers)).status_code == 200
    assert len(lookups) == 3


async def test_a_body_that_trickles_is_cut_off_with_408(app_factory, make_api) -> None:
    app, http = await app_factory(body_read_timeout_seconds=0.3)
    api = await make_api(Scope.screenings_write, client=http)
    sent: list[dict[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"death": ', "more_body": True}
        await asyncio.sleep(3600)  # the rest never comes
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/screenings",
        "raw_path": b"/v1/screenings",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {api.key}".encode()),
            (b"idempotency-key", b"trickle-1"),
        ],
        "client": ("203.0.113.9", 5555),
        "server": ("testserver", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), BOUND_SECONDS)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 408


async def listening_port(server: uvicorn.Server) -> int:
    for _ in range(BOUND_SECONDS * 20):
        if server.started:
            port: int = server.servers[0].sockets[0].getsockname()[1]
            return port
        await asyncio.sleep(0.05)
    raise AssertionError("the server did not start")


def _guarded_classes() -> list[Any]:
    from app import http_guard

    classes: list[Any] = [http_guard.GuardedH11Protocol]
    if http_guard.HttpToolsProtocol is not None:
        classes.append(http_guard.GuardedHttpToolsProtocol)
    return classes


@pytest.mark.parametrize("protocol_index", [0, 1])
async def test_a_connection_trickling_its_headers_is_closed(app_factory, protocol_index) -> None:
    classes = _guarded_classes()
    # Both guarded protocol classes exist: httptools comes with uvicorn[standard], a
    # dependency, so a missing one is a broken install, never a reason to skip.
    assert len(classes) == 2, classes
    base = classes[protocol_index]

    class Quick(base):  # type: ignore[misc,valid-type]
        def _guard_init(self) -> None:
            super()._guard_init()
            self.header_timeout = 0.5

    app, _ = await app_factory()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=Quick, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        port = await listening_port(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        # A healthy request on the connection first: the guard must not touch it.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND_SECONDS)
        assert head.startswith(b"HTTP/1.1 200")

        async def trickle(
            reader: asyncio.StreamReader = reader, writer: asyncio.StreamWriter = writer
        ) -> bytes:
            """One header line every 0.1 s until the server ends the connection; what it
            answered (the connection may be reset before the answer is read)."""
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            for n in range(10_000):
                try:
                    writer.write(b"X-Slow-%d: y\r\n" % n)
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(0.1)
                if reader.at_eof():
                    break
            try:
                return await reader.read()
            except ConnectionError:
                return b""

        # Without the guard the loop runs on (1,000 s) and the bound fails the test.
        answer = await asyncio.wait_for(trickle(), BOUND_SECONDS)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]
        writer.close()
        # And on a fresh connection that trickles from its first byte.
        fresh_reader, fresh_writer = await asyncio.open_connection("127.0.0.1", port)
        answer = await asyncio.wait_for(trickle(fresh_reader, fresh_writer), BOUND_SECONDS)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]
        writer = fresh_writer
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, BOUND_SECONDS)


async def test_headers_over_the_cap_are_431(app_factory) -> None:
    classes = _guarded_classes()
    assert len(classes) == 2, classes  # httptools comes with uvicorn[standard]

    class Small(classes[1]):  # type: ignore[misc,valid-type]
        def _guard_init(self) -> None:
            super()._guard_init()
            self.max_header_bytes = 4096

    app, _ = await app_factory()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=Small, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        port = await listening_port(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 8000 + b"\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), BOUND_SECONDS)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, BOUND_SECONDS)
