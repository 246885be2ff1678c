"""Idempotency-Key on POST /v1/screenings: a retry never records a death twice.

Same key and same body replays the first response; same key and another body is a 422; a key
still in flight is a 409 with Retry-After; a request that failed leaves its key free; keys
belong to one client; a record past its retention is forgotten. On PostgreSQL, real concurrent
requests (several connections, two app instances) record exactly one death.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update

from app.auth.scopes import Scope
from app.db import Database
from app.idempotency import service as idempotency_service
from app.idempotency.service import fingerprint
from app.jobs import BACKGROUND_JOBS
from app.models import IdempotencyRecord, OutboxEvent
from app.screenings import service as screening_service
from app.screenings.intake import ScreeningCreate
from app.worker import Worker
from tests.factories import deaths_with_source, idem, screening_body

IN_FLIGHT_TYPE = "/idempotency-in-flight"
REUSED_TYPE = "/idempotency-key-reused"


async def death_created_events(database: Database, death_id: str) -> int:
    async with database.transaction() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.type == "death.created",
                OutboxEvent.resource_id == uuid.UUID(death_id),
            )
        )
    return int(count or 0)


def reordered(value: Any) -> Any:
    """The same JSON with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {name: reordered(value[name]) for name in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(element) for element in value]
    return value


def is_problem(response: httpx.Response, status: int, type_suffix: str) -> bool:
    return (
        response.status_code == status
        and response.headers["content-type"].startswith("application/problem+json")
        and response.json()["type"].endswith(type_suffix)
    )


# --- replay and mismatch ----------------------------------------------------------------------


async def test_a_retry_with_the_same_key_and_body_replays_the_first_response(api, database) -> None:
    body = screening_body()
    headers = idem()
    first = await api.post("/v1/screenings", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    retry = await api.post("/v1/screenings", json=body, headers=headers)

    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["etag"] == first.headers["etag"]
    death_id = first.json()["death_id"]
    assert [death["id"] for death in await deaths_with_source(api, body)] == [death_id]
    assert await death_created_events(database, death_id) == 1


async def test_the_same_body_with_its_keys_in_another_order_is_a_replay(api, database) -> None:
    body = screening_body()
    headers = idem()
    first = await api.post("/v1/screenings", json=body, headers=headers)
    assert first.status_code == 201, first.text

    retry = await api.post(
        "/v1/screenings",
        content=json.dumps(reordered(body), indent=2),
        headers={**headers, "Content-Type": "application/json"},
    )

    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]
    assert len(await deaths_with_source(api, body)) == 1
    assert await death_created_events(database, first.json()["death_id"]) == 1


async def test_the_same_key_with_another_body_is_refused_and_writes_nothing(api) -> None:
    body = screening_body()
    headers = idem()
    first = await api.post("/v1/screenings", json=body, headers=headers)
    assert first.status_code == 201, first.text

    other = screening_body()  # another death altogether
    reused = await api.post("/v1/screenings", json=other, headers=headers)
    assert is_problem(reused, 422, REUSED_TYPE), reused.text
    edited = screening_body(death={**body["death"], "ward": "Ward 9"})
    reused_again = await api.post("/v1/screenings", json=edited, headers=headers)
    assert is_problem(reused_again, 422, REUSED_TYPE), reused_again.text

    assert await deaths_with_source(api, other) == []
    [death] = await deaths_with_source(api, body)
    assert death["ward"] == "Ward 7"
    # The key still stands for the first request.
    retry = await api.post("/v1/screenings", json=body, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]


async def test_keys_belong_to_one_client(make_api) -> None:
    office_a = await make_api(Scope.screenings_write, Scope.deaths_read)
    office_b = await make_api(Scope.screenings_write, Scope.deaths_read)
    headers = idem()
    body_a, body_b = screening_body(), screening_body()

    created_a = await office_a.post("/v1/screenings", json=body_a, headers=headers)
    created_b = await office_b.post("/v1/screenings", json=body_b, headers=headers)

    assert created_a.status_code == 201, created_a.text
    assert created_b.status_code == 201, created_b.text
    assert "idempotent-replayed" not in created_b.headers
    assert created_a.json()["death_id"] != created_b.json()["death_id"]
    assert len(await deaths_with_source(office_a, body_a)) == 1
    assert len(await deaths_with_source(office_b, body_b)) == 1


# --- failures do not burn the key ---------------------------------------------------------------


async def test_a_screening_refused_for_its_dates_leaves_its_key_free(api, database) -> None:
    body = screening_body()
    died_at = datetime.fromisoformat(body["death"]["died_at"])
    body["screening"]["screened_at"] = (died_at - timedelta(hours=1)).isoformat()
    headers = idem()

    refused = await api.post("/v1/screenings", json=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/screening/screened_at"]
    assert await deaths_with_source(api, body) == []

    body["screening"]["screened_at"] = (died_at + timedelta(hours=1)).isoformat()
    fixed = await api.post("/v1/screenings", json=body, headers=headers)

    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    assert [death["id"] for death in await deaths_with_source(api, body)] == [
        fixed.json()["death_id"]
    ]
    assert await death_created_events(database, fixed.json()["death_id"]) == 1


async def test_a_duplicate_death_refused_with_409_leaves_its_key_free(api) -> None:
    existing = screening_body()
    recorded = await api.post("/v1/screenings", json=existing, headers=idem())
    assert recorded.status_code == 201, recorded.text
    duplicate = screening_body(death={"source_reference": existing["death"]["source_reference"]})
    headers = idem()

    conflict = await api.post("/v1/screenings", json=duplicate, headers=headers)
    assert is_problem(conflict, 409, "/conflict"), conflict.text
    assert conflict.json()["existing"]["death_id"] == recorded.json()["death_id"]
    assert conflict.json()["existing"]["screening_id"] == recorded.json()["id"]

    duplicate["death"]["source_reference"] = f"ME-{uuid.uuid4().hex[:12]}"
    fixed = await api.post("/v1/screenings", json=duplicate, headers=headers)

    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    assert fixed.json()["death_id"] != recorded.json()["death_id"]
    assert len(await deaths_with_source(api, existing)) == 1
    assert len(await deaths_with_source(api, duplicate)) == 1


# --- in flight, taken over, expired -----------------------------------------------------------


async def _claim_in_flight(
    database: Database, client_id: uuid.UUID, key: str, body: dict[str, Any]
) -> None:
    """Leave the key claimed, as another worker does while it is still recording the same
    request."""
    payload = ScreeningCreate.model_validate(body).model_dump(mode="json")
    moment = datetime.now(UTC)
    async with database.transaction() as session:
        session.add(
            IdempotencyRecord(
                client_id=client_id,
                key=key,
                fingerprint=fingerprint("POST", "/v1/screenings", payload),
                state="in_flight",
                locked_until=moment + timedelta(minutes=5),
                created_at=moment,
                expires_at=moment + timedelta(hours=1),
            )
        )


async def _set_record(database: Database, client_id: uuid.UUID, key: str, **values: Any) -> None:
    async with database.transaction() as session:
        result = await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.client_id == client_id, IdempotencyRecord.key == key)
            .values(**values)
        )
        assert getattr(result, "rowcount", None) == 1


async def test_a_key_in_flight_is_409_with_retry_after_until_its_lock_lapses(api, database) -> None:
    body = screening_body()
    key = uuid.uuid4().hex
    await _claim_in_flight(database, api.client_id, key, body)

    busy = await api.post("/v1/screenings", json=body, headers={"Idempotency-Key": key})

    assert is_problem(busy, 409, IN_FLIGHT_TYPE), busy.text
    assert int(busy.headers["retry-after"]) >= 1
    assert await deaths_with_source(api, body) == []

    # The worker that claimed the key died: once its lock lapses, the key is taken over.
    await _set_record(
        database, api.client_id, key, locked_until=datetime.now(UTC) - timedelta(seconds=1)
    )
    taken_over = await api.post("/v1/screenings", json=body, headers={"Idempotency-Key": key})

    assert taken_over.status_code == 201, taken_over.text
    assert "idempotent-replayed" not in taken_over.headers
    assert [death["id"] for death in await deaths_with_source(api, body)] == [
        taken_over.json()["death_id"]
    ]
    retry = await api.post("/v1/screenings", json=body, headers={"Idempotency-Key": key})
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == taken_over.json()["id"]


async def test_a_key_in_flight_with_another_body_is_refused_as_reused(api, database) -> None:
    body = screening_body()
    key = uuid.uuid4().hex
    await _claim_in_flight(database, api.client_id, key, body)

    other = screening_body()
    reused = await api.post("/v1/screenings", json=other, headers={"Idempotency-Key": key})

    assert is_problem(reused, 422, REUSED_TYPE), reused.text
    assert await deaths_with_source(api, other) == []


async def test_an_expired_response_is_not_replayed(api, database) -> None:
    body = screening_body()
    headers = idem()
    first = await api.post("/v1/screenings", json=body, headers=headers)
    assert first.status_code == 201, first.text
    await _set_record(
        database,
        api.client_id,
        headers["Idempotency-Key"],
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )

    late = await api.post("/v1/screenings", json=body, headers=headers)

    # Processed afresh: the death is found by its source reference, so still no second death.
    assert is_problem(late, 409, "/conflict"), late.text
    assert "idempotent-replayed" not in late.headers
    assert late.json()["existing"]["death_id"] == first.json()["death_id"]
    assert len(await deaths_with_source(api, body)) == 1
    assert await death_created_events(database, first.json()["death_id"]) == 1


async def test_an_expired_key_may_be_used_for_a_new_request(api, database) -> None:
    headers = idem()
    first = await api.post("/v1/screenings", json=screening_body(), headers=headers)
    assert first.status_code == 201, first.text
    await _set_record(
        database,
        api.client_id,
        headers["Idempotency-Key"],
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )

    body = screening_body()
    reused = await api.post("/v1/screenings", json=body, headers=headers)

    assert reused.status_code == 201, reused.text
    assert "idempotent-replayed" not in reused.headers
    assert reused.json()["death_id"] != first.json()["death_id"]
    assert len(await deaths_with_source(api, body)) == 1


# --- real concurrency (PostgreSQL) ------------------------------------------------------------


class Gate:
    """Holds the first request to record a screening inside its open transaction (its death
    row inserted, not yet committed) until the test lets it go."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.recorded = 0


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate()
    record = screening_service.record_screening

    async def held(*args: Any, **kwargs: Any) -> Any:
        recorded = await record(*args, **kwargs)
        gate.recorded += 1
        if not gate.entered.is_set():
            gate.entered.set()
            await asyncio.wait_for(gate.release.wait(), timeout=30)
        return recorded

    monkeypatch.setattr(screening_service, "record_screening", held)
    return gate


async def two_apps(api: Any, app_factory: Any) -> list[httpx.AsyncClient]:
    """The test's app and a second instance with its own connection pool, as two workers."""
    _, other = await app_factory()
    return [api.http, other]


async def lock_waiters(database: Database) -> int:
    async with database.engine.connect() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(count or 0)


def assert_no_server_error(responses: list[httpx.Response]) -> None:
    assert all(r.status_code < 500 for r in responses), [(r.status_code, r.text) for r in responses]


@pytest.mark.postgres_only
@pytest.mark.parametrize("racers", [2, 10])
async def test_concurrent_requests_with_one_key_record_one_death(
    api, app_factory, database, gate, racers
) -> None:
    apps = await two_apps(api, app_factory)
    body = screening_body()
    headers = {**api.headers, **idem()}
    tasks = [
        asyncio.create_task(apps[n % 2].post("/v1/screenings", json=body, headers=headers))
        for n in range(racers)
    ]
    await asyncio.wait_for(gate.entered.wait(), timeout=30)
    # Every other request answers while the first is still recording.
    async with asyncio.timeout(30):
        while sum(task.done() for task in tasks) < racers - 1:
            await asyncio.wait(
                [task for task in tasks if not task.done()], return_when=asyncio.FIRST_COMPLETED
            )
    gate.release.set()
    responses = list(await asyncio.gather(*tasks))

    assert_no_server_error(responses)
    created = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(created) == 1, [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response is created[0]:
            continue
        replayed = (
            response.status_code == 201 and response.headers.get("idempotent-replayed") == "true"
        )
        assert replayed or is_problem(response, 409, IN_FLIGHT_TYPE), response.text
        if replayed:
            assert response.json() == created[0].json()
        else:
            assert response.headers["retry-after"]
    assert gate.recorded == 1
    death_id = created[0].json()["death_id"]
    assert [death["id"] for death in await deaths_with_source(api, body)] == [death_id]
    assert await death_created_events(database, death_id) == 1
    retry = await apps[1].post("/v1/screenings", json=body, headers=headers)
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == created[0].json()


@pytest.mark.postgres_only
async def test_a_burst_of_retries_with_one_key_records_one_death(
    api, app_factory, database
) -> None:
    apps = await two_apps(api, app_factory)
    body = screening_body()
    headers = {**api.headers, **idem()}

    responses = list(
        await asyncio.gather(
            *(apps[n % 2].post("/v1/screenings", json=body, headers=headers) for n in range(10))
        )
    )

    assert_no_server_error(responses)
    created = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(created) == 1, [(r.status_code, r.text) for r in responses]
    others = [r for r in responses if r is not created[0]]
    for response in others:
        if response.status_code == 201:
            assert response.headers["idempotent-replayed"] == "true"
            assert response.json() == created[0].json()
        else:
            assert is_problem(response, 409, IN_FLIGHT_TYPE), response.text
    death_id = created[0].json()["death_id"]
    assert [death["id"] for death in await deaths_with_source(api, body)] == [death_id]
    assert await death_created_events(database, death_id) == 1


@pytest.mark.postgres_only
async def test_concurrent_screenings_of_one_death_under_different_keys_record_it_once(
    api, app_factory, database, gate
) -> None:
    racers = 10
    apps = await two_apps(api, app_factory)
    body = screening_body()
    tasks = [
        asyncio.create_task(
            apps[n % 2].post("/v1/screenings", json=body, headers={**api.headers, **idem()})
        )
        for n in range(racers)
    ]
    await asyncio.wait_for(gate.entered.wait(), timeout=30)

    # Let the first commit only once every other request has collided with its death row
    # (waiting on its lock) or has already answered. The lock waits are PostgreSQL's, so there
    # is no event to await: poll pg_stat_activity (a synchronisation point, not a timing).
    async def all_collided() -> bool:
        answered = sum(task.done() for task in tasks)
        return answered + await lock_waiters(database) >= racers - 1

    async with asyncio.timeout(30):
        while not await all_collided():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    gate.release.set()
    responses = list(await asyncio.gather(*tasks))

    assert_no_server_error(responses)
    assert sorted(r.status_code for r in responses) == [201] + [409] * (racers - 1), [
        (r.status_code, r.text) for r in responses
    ]
    [created] = [r for r in responses if r.status_code == 201]
    death_id = created.json()["death_id"]
    for response in responses:
        if response is not created:
            assert is_problem(response, 409, "/conflict"), response.text
            assert response.json()["existing"]["death_id"] == death_id
    assert [death["id"] for death in await deaths_with_source(api, body)] == [death_id]
    assert await death_created_events(database, death_id) == 1


async def _records_for(database: Database, client_id: uuid.UUID) -> set[str]:
    async with database.transaction() as session:
        keys = await session.scalars(
            select(IdempotencyRecord.key).where(IdempotencyRecord.client_id == client_id)
        )
        return set(keys)


async def test_the_background_runner_purges_expired_records_and_keeps_the_rest(
    api, database
) -> None:
    kept, expired = idem(), idem()
    for headers in (kept, expired):
        response = await api.post("/v1/screenings", json=screening_body(), headers=headers)
        assert response.status_code == 201, response.text
    await _set_record(
        database,
        api.client_id,
        expired["Idempotency-Key"],
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )

    worker = Worker(database, 0, BACKGROUND_JOBS)
    done = await worker.run_once()

    assert done["idempotency_purge"] >= 1
    assert await _records_for(database, api.client_id) == {kept["Idempotency-Key"]}


async def test_a_purge_backlog_is_cleared_in_batches(api, database, monkeypatch) -> None:
    keys = [idem() for _ in range(5)]
    for headers in keys:
        response = await api.post("/v1/screenings", json=screening_body(), headers=headers)
        assert response.status_code == 201, response.text
        await _set_record(
            database,
            api.client_id,
            headers["Idempotency-Key"],
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
    monkeypatch.setattr(idempotency_service, "PURGE_BATCH", 2)

    assert await idempotency_service.purge_expired_records(database) >= 5
    assert await _records_for(database, api.client_id) == set()
