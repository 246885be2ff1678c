"""The change feed (GET /v1/events): every committed event exactly once, in a stable order that
follows each resource's own history, even while transactions commit late and out of order.

The PostgreSQL tests hold a transaction open while others commit after it, and run eight
writers against a polling consumer. The horizon is server-wide, so a transaction in another
database on the same server can delay (never break) the feed: the tests poll with a deadline
rather than expecting events at once.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from app.auth.scopes import Scope
from app.db import Database
from app.events.feed import MAX_SEQ, Position, decode_position, encode_position
from app.events.service import Change, emit
from app.events.types import EVENT_TYPES
from app.kit.cursor import encode_cursor
from app.models import OutboxEvent
from tests.conftest import Api, MakeApi
from tests.factories import record, record_unexpected, screening_body, walk_pages
from tests.kit.feed import drain, drain_until, read

APP = Path(__file__).resolve().parent.parent / "app"


@dataclass(frozen=True)
class Actor:
    client_id: uuid.UUID | None
    request_id: str | None


async def head(api: Api) -> str:
    response = await api.get("/v1/events", params={"start": "now"})
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
    cursor: str = response.json()["next_cursor"]
    return cursor


def ids_of(events: list[dict[str, Any]]) -> set[str]:
    return {event["id"] for event in events}


def resources_of(events: list[dict[str, Any]]) -> set[str]:
    return {event["resource"]["id"] for event in events}


def death_id_of(screening: dict[str, Any]) -> str:
    value: str = screening["death"]["id"] if "death" in screening else screening["death_id"]
    return value


async def test_a_consumer_from_now_sees_each_new_event_once_with_thin_payloads(
    api: Api, make_api: MakeApi
) -> None:
    consumer = await make_api(Scope.events_read)
    cursor = await head(consumer)
    screening = await record_unexpected(api)
    death_id = death_id_of(screening)

    def recorded(events: list[dict[str, Any]]) -> bool:
        return any(e["type"] == "screening.recorded" and e["death_id"] == death_id for e in events)

    everything, _ = await drain_until(consumer, cursor, recorded)
    ours = [item for item in everything if item["death_id"] == death_id]
    types = Counter(item["type"] for item in ours)
    assert types["death.created"] == 1
    assert types["screening.recorded"] == 1
    assert types["referral.created"] >= 1  # an unexpected death is referred for an SJR
    assert len({item["id"] for item in everything}) == len(everything)

    death_event = next(item for item in ours if item["type"] == "death.created")
    assert death_event["resource"] == {
        "type": "death",
        "id": death_id,
        "path": f"/v1/deaths/{death_id}",
    }
    assert set(death_event) == {
        "id",
        "type",
        "resource",
        "death_id",
        "changed",
        "occurred_at",
        "position",
    }
    # Thin: no patient data, whatever the event.
    text = str(everything)
    for value in screening_body()["death"].values():
        if isinstance(value, str) and value.startswith("999"):
            assert value not in text
    assert "Testfamily" not in text and "LS1 4AP" not in text

    # One event per page gives the same events in the same order.
    one_by_one: list[dict[str, Any]] = []
    page_cursor = cursor
    while True:
        items, page_cursor = await read(consumer, page_cursor, limit=1)
        if not items:
            break
        assert len(items) == 1
        one_by_one.extend(items)
    assert [item["id"] for item in one_by_one] == [item["id"] for item in everything]

    # An event's position resumes the feed just after it.
    middle = len(everything) // 2
    resumed, _ = await drain(consumer, everything[middle]["position"])
    assert [item["id"] for item in resumed] == [item["id"] for item in everything[middle + 1 :]]


async def test_positions_only_grow_and_an_idle_cursor_keeps_up(api: Api, make_api: MakeApi) -> None:
    consumer = await make_api(Scope.events_read)
    first, cursor = await read(consumer, await head(consumer))
    assert first == []
    death_id = death_id_of(await record_unexpected(api))
    items, after = await drain_until(
        consumer, cursor, lambda events: any(e["death_id"] == death_id for e in events)
    )
    positions = [decode_position(item["position"]) for item in items]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert decode_position(after) >= positions[-1]
    # Nothing new: an empty page and a cursor that does not go backwards.
    again, cursor_again = await read(consumer, after)
    assert again == []
    assert decode_position(cursor_again) >= decode_position(after)


async def test_from_the_beginning_the_feed_is_in_position_order(make_api: MakeApi) -> None:
    consumer = await make_api(Scope.events_read)
    response = await consumer.get("/v1/events", params={"limit": 50})
    assert response.status_code == 200
    items = response.json()["items"]
    positions = [decode_position(item["position"]) for item in items]
    assert positions == sorted(positions)
    # Explicitly asking for the beginning is the same as not saying.
    same = await consumer.get("/v1/events", params={"limit": 50, "start": "beginning"})
    assert [i["id"] for i in same.json()["items"]][: len(items)] == [i["id"] for i in items]


async def test_types_filter_exact_and_whole_resources(api: Api, make_api: MakeApi) -> None:
    consumer = await make_api(Scope.events_read)
    cursor = await head(consumer)
    death_id = death_id_of(await record_unexpected(api))

    def about_it(events: list[dict[str, Any]]) -> bool:
        return any(e["death_id"] == death_id for e in events)

    deaths, _ = await drain_until(consumer, cursor, about_it, types="death.created")
    assert [i["type"] for i in deaths if i["death_id"] == death_id] == ["death.created"]
    referrals, _ = await drain_until(consumer, cursor, about_it, types="referral.*")
    ours = [i for i in referrals if i["death_id"] == death_id]
    assert ours and {i["type"] for i in ours} == {"referral.created"}
    both = await consumer.get(
        "/v1/events",
        params=[("cursor", cursor), ("types", "death.*,screening.recorded"), ("limit", 1000)],
    )
    assert {i["type"] for i in both.json()["items"] if i["death_id"] == death_id} == {
        "death.created",
        "screening.recorded",
    }


@given(st.integers(0, MAX_SEQ), st.integers(0, MAX_SEQ))
def test_positions_are_the_cursors_the_feed_has_always_issued(txid: int, seq: int) -> None:
    # Stored cursors keep working across releases: a position is still the base64url of the
    # compact JSON ["f1", txid, seq], and decodes back to its place.
    position = Position(txid, seq)
    assert encode_position(position) == encode_cursor(["f1", txid, seq])
    assert decode_position(encode_position(position)) == position


async def test_each_event_is_shown_as_its_outbox_row(database: Database, make_api: MakeApi) -> None:
    """Every field of a served event against the row it comes from: ids as strings, the
    changed names as written, the time in UTC with a Z (microseconds only when there are
    some), the position as the cursor of the row's place."""
    consumer = await make_api(Scope.events_read, Scope.screenings_write)
    # A real death of the consumer's organisation: an event naming a death is shown to whoever
    # sees the death (app.scoping.event_rule), and once another test of the worker's database
    # has added organisations, a death that does not exist is nobody's.
    death = uuid.UUID((await record(consumer))["death_id"])
    cursor = await head(consumer)
    marker = f"feed-shape-{uuid.uuid4().hex[:8]}"
    referral, theme = uuid.uuid4(), uuid.uuid4()
    async with database.transaction() as session:
        await emit(
            session,
            Actor(None, marker),
            [Change("referral.claimed", "referral", referral, death, ["status", "lease"])],
            at=datetime(2026, 11, 23, 19, 2, 11, 412345, tzinfo=UTC),
        )
        await emit(
            session,
            Actor(None, marker),
            [Change("theme.updated", "theme", theme, None)],
            at=datetime(2026, 11, 23, 19, 2, 12, tzinfo=UTC),
        )
    seen, _ = await drain_until(consumer, cursor, lambda events: str(theme) in resources_of(events))
    served = {item["resource"]["id"]: item for item in seen}
    async with database.transaction() as session:
        rows = {
            str(row.resource_id): row
            for row in await session.scalars(
                select(OutboxEvent).where(OutboxEvent.request_id == marker)
            )
        }
    assert served[str(referral)] == {
        "id": str(rows[str(referral)].id),
        "type": "referral.claimed",
        "resource": {"type": "referral", "id": str(referral), "path": f"/v1/referrals/{referral}"},
        "death_id": str(death),
        "changed": ["lease", "status"],
        "occurred_at": "2026-11-23T19:02:11.412345Z",
        "position": encode_cursor(["f1", rows[str(referral)].txid, rows[str(referral)].seq]),
    }
    assert served[str(theme)] == {
        "id": str(rows[str(theme)].id),
        "type": "theme.updated",
        "resource": {"type": "theme", "id": str(theme), "path": f"/v1/themes/{theme}"},
        "death_id": None,
        "changed": [],
        "occurred_at": "2026-11-23T19:02:12Z",
        "position": encode_cursor(["f1", rows[str(theme)].txid, rows[str(theme)].seq]),
    }


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"types": "death.creatd"}, 422),
        ({"types": "nothing.*"}, 422),
        ({"types": "death.created,,  ,bogus"}, 422),
        ({"cursor": "not-a-cursor"}, 400),
        ({"cursor": encode_cursor(["f9", 1, 2])}, 400),
        ({"cursor": encode_cursor(["f1", -1, 2])}, 400),
        ({"cursor": encode_cursor(["f1", "1", 2])}, 400),
        ({"cursor": encode_cursor(["f1", 1.5, 2])}, 400),
        ({"cursor": encode_cursor(["f1", 1])}, 400),
        ({"limit": 0}, 422),
        ({"limit": 1001}, 422),
        ({"start": "yesterday"}, 422),
        ({"start": "now", "cursor": encode_cursor(["f1", 1, 2])}, 400),
        ({"start": "beginning", "cursor": encode_cursor(["f1", 1, 2])}, 400),
    ],
)
async def test_bad_feed_requests_are_problems(
    make_api: MakeApi, params: dict[str, Any], status: int
) -> None:
    consumer = await make_api(Scope.events_read)
    response = await consumer.get("/v1/events", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_rolled_back_change_never_reaches_the_feed(
    database: Database, make_api: MakeApi
) -> None:
    consumer = await make_api(Scope.events_read)
    cursor = await head(consumer)
    lost, kept = uuid.uuid4(), uuid.uuid4()
    marker = f"feed-test-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await emit(session, Actor(None, marker), [Change("theme.updated", "theme", lost, None)])
            raise RuntimeError("the change fails after its event was written")
    async with database.transaction() as session:
        await emit(session, Actor(None, marker), [Change("theme.updated", "theme", kept, None)])
    seen, _ = await drain_until(consumer, cursor, lambda events: str(kept) in resources_of(events))
    assert str(lost) not in resources_of(seen)


def emitted_types() -> set[str]:
    """Every event type a string literal in app/ emits."""
    found: set[str] = set()
    patterns = [
        re.compile(r'Change\(\s*"([a-z_]+\.[a-z_]+)"'),
        re.compile(r'event="([a-z_]+\.[a-z_]+)"'),
        re.compile(r'^EVENT_TYPE = "([a-z_]+\.[a-z_]+)"', re.MULTILINE),
        re.compile(r'"[a-z]+": "(referral\.[a-z_]+)"'),
    ]
    for path in APP.rglob("*.py"):
        if path.name == "types.py":
            continue
        source = path.read_text()
        for pattern in patterns:
            found.update(pattern.findall(source))
    return found


async def test_every_emitted_event_type_is_published(make_api: MakeApi) -> None:
    emitted = emitted_types()
    assert len(emitted) >= 20  # the scan itself works
    assert emitted - set(EVENT_TYPES) == set()
    consumer = await make_api(Scope.events_read)
    response = await consumer.get("/v1/events/types")
    assert response.status_code == 200
    assert {item["type"] for item in response.json()} == set(EVENT_TYPES)


@pytest.mark.postgres_only
async def test_a_late_commit_is_held_back_then_delivered_before_later_events(
    database: Database, make_api: MakeApi
) -> None:
    consumer = await make_api(Scope.events_read)
    cursor = await head(consumer)
    early, late = uuid.uuid4(), uuid.uuid4()
    actor = Actor(None, "feed-late-commit")
    async with database.transaction() as slow:
        # The slow transaction writes first (the lower transaction id) but commits last.
        await emit(slow, actor, [Change("theme.updated", "theme", early, None)])
        async with database.transaction() as quick:
            await emit(quick, actor, [Change("theme.updated", "theme", late, None)])
        # Committed, but not handed out: an earlier transaction is still running.
        waiting, cursor = await drain(consumer, cursor)
        assert str(late) not in {item["resource"]["id"] for item in waiting}
    seen, _ = await drain_until(consumer, cursor, lambda events: str(late) in resources_of(events))
    order = [
        item["resource"]["id"] for item in seen if item["resource"]["id"] in {str(early), str(late)}
    ]
    assert order == [str(early), str(late)]


WRITER_TURNS = 25  # each concurrent writer's screenings and claims, together


@pytest.mark.postgres_only
async def test_concurrent_writers_and_a_polling_consumer_see_every_event_exactly_once(
    database: Database, make_api: MakeApi
) -> None:
    """Eight writers post screenings, claim and release referrals (WRITER_TURNS turns each,
    a seeded mix), and a ninth holds transactions open while the others commit; the consumer
    polls throughout. The amount of work is fixed, not the time it runs for.
    Afterwards it has seen every one of their events exactly once, and each resource's events
    in the order they happened."""
    specialty = f"Feed {uuid.uuid4().hex[:8]}"
    writers = [
        await make_api(Scope.screenings_write, Scope.referrals_claim, Scope.referrals_read)
        for _ in range(8)
    ]
    consumer = await make_api(Scope.events_read)
    cursor = await head(consumer)
    marker = f"feed-slow-{uuid.uuid4().hex[:8]}"
    written = asyncio.Event()
    slow_resources: list[uuid.UUID] = []

    async def write(api: Api, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(WRITER_TURNS):
            if rng.random() < 0.5:
                await record_unexpected(api, specialty)
                continue
            response = await api.post(
                "/v1/referrals/claim",
                json={"route": "sjr", "specialty": specialty, "count": rng.randint(1, 3)},
                headers={"X-On-Behalf-Of": f"reviewer-{seed}"},
            )
            assert response.status_code == 200, response.text
            for item in response.json()["items"]:
                if rng.random() < 0.8:
                    released = await api.post(
                        f"/v1/referrals/{item['id']}/release",
                        json={"lease_id": item["lease_id"]},
                    )
                    assert released.status_code == 200, released.text

    async def write_slowly() -> None:
        while not written.is_set():
            resource = uuid.uuid4()
            slow_resources.append(resource)
            async with database.transaction() as session:
                await emit(
                    session, Actor(None, marker), [Change("theme.updated", "theme", resource, None)]
                )
                await asyncio.sleep(random.uniform(0.05, 0.3))

    seen: list[dict[str, Any]] = []

    async def consume() -> None:
        nonlocal cursor
        while not written.is_set():
            items, cursor = await drain(consumer, cursor)
            seen.extend(items)
            await asyncio.sleep(0.01)

    async def all_write() -> None:
        try:
            await asyncio.gather(*(write(api, n) for n, api in enumerate(writers)))
        finally:
            written.set()  # the slow writer and the consumer stop, whatever happened

    await asyncio.gather(all_write(), write_slowly(), consume())

    client_ids = [api.client_id for api in writers]
    async with database.transaction() as session:
        expected_rows = (
            await session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.client_id.in_(client_ids) | (OutboxEvent.request_id == marker)
                )
            )
        ).all()
    expected = {str(row.id) for row in expected_rows}
    assert len(expected) > 100  # the writers really wrote
    assert Counter(row.type for row in expected_rows)["referral.claimed"] > 10
    missing = expected - ids_of(seen)
    rest, _ = await drain_until(consumer, cursor, lambda events: missing <= ids_of(events))
    seen.extend(rest)

    counts = Counter(item["id"] for item in seen)
    assert [event_id for event_id, n in counts.items() if n > 1] == []
    assert expected <= set(counts)
    assert {str(r) for r in slow_resources} <= {item["resource"]["id"] for item in seen}

    # Each resource's events arrive in the order they happened: by the time each was written
    # (under the resource's lock), then by its number within its transaction.
    happened: dict[str, list[str]] = defaultdict(list)
    for row in sorted(expected_rows, key=lambda row: (row.occurred_at, row.seq)):
        happened[str(row.resource_id)].append(str(row.id))
    arrived: dict[str, list[str]] = defaultdict(list)
    for item in seen:
        if item["id"] in expected:
            arrived[item["resource"]["id"]].append(item["id"])
    assert arrived == happened
    # And the claims really contended for the same referrals.
    referrals, _ = await walk_pages(
        writers[0], "/v1/referrals", {"specialty": specialty, "limit": 200}, max_pages=50
    )
    assert referrals
