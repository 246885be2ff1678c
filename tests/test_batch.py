"""POST /v1/screenings/batch: item by item, one bad item never loses the others, and a retried
batch (same Idempotency-Key) creates nothing twice."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta
from typing import Any

from tests.factories import deaths_with_source, idem, screening_body

BATCH = "/v1/screenings/batch"


def screened_before_death() -> dict[str, Any]:
    body = screening_body()
    died_at = datetime.fromisoformat(body["death"]["died_at"])
    body["screening"]["screened_at"] = (died_at - timedelta(hours=2)).isoformat()
    return body


def pointers(item: dict[str, Any]) -> list[str]:
    return [error["pointer"] for error in item["problem"]["errors"]]


async def test_a_mixed_batch_answers_item_by_item_and_records_the_good_ones(api) -> None:
    existing = screening_body()
    recorded = await api.post("/v1/screenings", json=existing, headers=idem())
    assert recorded.status_code == 201, recorded.text
    good = [screening_body(), screening_body()]
    bad_nhs_number = screening_body(death={"nhs_number": "9434765918"})  # wrong check digit
    bad_dates = screened_before_death()
    duplicate = screening_body(death={"source_reference": existing["death"]["source_reference"]})
    screenings = [good[0], bad_nhs_number, bad_dates, duplicate, good[1]]

    response = await api.post(BATCH, json={"screenings": screenings}, headers=idem())

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["created"], result["replayed"], result["failed"]) == (2, 0, 3)
    items = result["items"]
    assert [item["index"] for item in items] == [0, 1, 2, 3, 4]
    assert [item["outcome"] for item in items] == [
        "created",
        "failed",
        "failed",
        "failed",
        "created",
    ]
    assert [item["status"] for item in items] == [201, 422, 422, 409, 201]

    assert items[1]["problem"]["type"].endswith("/validation-error")
    assert items[1]["problem"]["status"] == 422
    assert pointers(items[1]) == ["/screenings/1/death/nhs_number"]
    assert items[2]["problem"]["type"].endswith("/validation-error")
    assert pointers(items[2]) == ["/screenings/2/screening/screened_at"]
    assert items[3]["problem"]["type"].endswith("/conflict")
    assert items[3]["problem"]["existing"]["death_id"] == recorded.json()["death_id"]
    for item in (items[1], items[2], items[3]):
        assert item["screening_id"] is None
        assert item["death_id"] is None

    for index, body in ((0, good[0]), (4, good[1])):
        [death] = await deaths_with_source(api, body)
        assert death["id"] == items[index]["death_id"]
        detail = await api.get(f"/v1/deaths/{death['id']}")
        assert detail.json()["screening"]["id"] == items[index]["screening_id"]
        assert items[index]["problem"] is None
    assert await deaths_with_source(api, bad_nhs_number) == []
    assert await deaths_with_source(api, bad_dates) == []
    assert len(await deaths_with_source(api, existing)) == 1


async def test_a_retried_batch_replays_what_was_recorded_and_retries_what_failed(api) -> None:
    good = [screening_body(), screening_body()]
    bad_dates = screened_before_death()
    screenings = [good[0], bad_dates, good[1]]
    headers = idem()
    first = await api.post(BATCH, json={"screenings": screenings}, headers=headers)
    assert first.status_code == 200, first.text
    first_items = first.json()["items"]
    assert [item["outcome"] for item in first_items] == ["created", "failed", "created"]

    again = await api.post(BATCH, json={"screenings": screenings}, headers=headers)

    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["replayed"], again.json()["failed"]) == (0, 2, 1)
    again_items = again.json()["items"]
    assert [item["outcome"] for item in again_items] == ["replayed", "failed", "replayed"]
    for index in (0, 2):
        assert again_items[index]["screening_id"] == first_items[index]["screening_id"]
        assert again_items[index]["death_id"] == first_items[index]["death_id"]
    assert pointers(again_items[1]) == ["/screenings/1/screening/screened_at"]
    for body in good:
        assert len(await deaths_with_source(api, body)) == 1

    fixed = copy.deepcopy(screenings)
    died_at = datetime.fromisoformat(bad_dates["death"]["died_at"])
    fixed[1]["screening"]["screened_at"] = (died_at + timedelta(hours=2)).isoformat()
    retried = await api.post(BATCH, json={"screenings": fixed}, headers=headers)

    assert retried.status_code == 200, retried.text
    retried_items = retried.json()["items"]
    assert [item["outcome"] for item in retried_items] == ["replayed", "created", "replayed"]
    [death] = await deaths_with_source(api, bad_dates)
    assert death["id"] == retried_items[1]["death_id"]
    for index, body in ((0, good[0]), (2, good[1])):
        assert [d["id"] for d in await deaths_with_source(api, body)] == [
            first_items[index]["death_id"]
        ]


async def test_a_retried_batch_with_an_item_changed_refuses_that_item(api) -> None:
    screenings = [screening_body(), screening_body()]
    headers = idem()
    first = await api.post(BATCH, json={"screenings": screenings}, headers=headers)
    assert [item["outcome"] for item in first.json()["items"]] == ["created", "created"]

    changed = copy.deepcopy(screenings)
    changed[0]["death"]["ward"] = "Ward 12"
    again = await api.post(BATCH, json={"screenings": changed}, headers=headers)

    items = again.json()["items"]
    assert [item["outcome"] for item in items] == ["failed", "replayed"]
    assert items[0]["status"] == 422
    assert items[0]["problem"]["type"].endswith("/idempotency-key-reused")
    [death] = await deaths_with_source(api, screenings[0])
    assert death["ward"] == "Ward 7"


async def test_items_that_are_not_objects_fail_on_their_own(api) -> None:
    good = screening_body()
    screenings: list[Any] = [42, good, "a screening", None]

    response = await api.post(BATCH, json={"screenings": screenings}, headers=idem())

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["outcome"] for item in items] == ["failed", "created", "failed", "failed"]
    for index in (0, 2, 3):
        assert items[index]["status"] == 422
        assert items[index]["problem"]["type"].endswith("/validation-error")
        assert pointers(items[index]) == [f"/screenings/{index}"]
    [death] = await deaths_with_source(api, good)
    assert death["id"] == items[1]["death_id"]


async def test_a_batch_over_the_limit_is_413_and_writes_nothing(api, app_factory) -> None:
    _, small = await app_factory(batch_max_items=3)
    screenings = [screening_body() for _ in range(4)]

    response = await small.post(
        BATCH, json={"screenings": screenings}, headers={**api.headers, **idem()}
    )

    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/payload-too-large")
    for body in screenings:
        assert await deaths_with_source(api, body) == []
    at_limit = await small.post(
        BATCH, json={"screenings": screenings[:3]}, headers={**api.headers, **idem()}
    )
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["created"] == 3


async def test_an_empty_batch_is_422(api) -> None:
    response = await api.post(BATCH, json={"screenings": []}, headers=idem())

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["pointer"] for error in response.json()["errors"]] == ["/screenings"]


async def test_a_batch_without_an_idempotency_key_is_400_and_writes_nothing(api) -> None:
    body = screening_body()

    response = await api.post(BATCH, json={"screenings": [body]})

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Idempotency-Key" in response.json()["detail"]
    assert await deaths_with_source(api, body) == []


async def test_a_batch_key_and_a_single_screening_key_do_not_collide(api) -> None:
    """The batch's key is its own: a single POST may use the same key for another death."""
    key = {"Idempotency-Key": uuid.uuid4().hex}
    single = screening_body()
    posted = await api.post("/v1/screenings", json=single, headers=key)
    assert posted.status_code == 201, posted.text

    batch = [screening_body()]
    response = await api.post(BATCH, json={"screenings": batch}, headers=key)

    assert [item["outcome"] for item in response.json()["items"]] == ["created"]
    assert len(await deaths_with_source(api, batch[0])) == 1
    assert len(await deaths_with_source(api, single)) == 1
