"""Claims under contention: concurrent claimers never receive the same referral, an expired
lease goes to the next claimer and the old holder's lease is refused, the stage-1 reviewer never
receives the stage-2 review, and concurrent submissions of one review complete it once.

The PostgreSQL tests run their claimers as separate app instances (each with its own engine
and connection pool, like separate worker processes) and check from the pools that the
requests really were in flight together on separate connections. Each test queues referrals
under a specialty of its own, so other tests' referrals never mix in.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update

from app.auth.scopes import Scope
from app.db import Database
from app.kit.time import now
from app.models import Referral, ReferralTransition, Review
from tests.conftest import Api, MakeApi, MakeApp
from tests.factories import idem, screening_body, walk_pages
from tests.kit.reviews import problem_sjr

SCOPES = (
    Scope.screenings_write,
    Scope.referrals_read,
    Scope.referrals_claim,
    Scope.reviews_write,
    Scope.deaths_read,
)


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


async def queue_sjrs(api: Api, specialty: str, count: int) -> list[dict[str, Any]]:
    """``count`` unexpected deaths in ``specialty`` through the screening batch: one ready
    stage-1 SJR each, returned in queue order."""
    bodies = [
        screening_body(
            death={"specialty_at_death": specialty, "admitting_specialty": specialty},
            screening={"death_expected": False},
        )
        for _ in range(count)
    ]
    for start in range(0, count, 100):
        chunk = bodies[start : start + 100]
        response = await api.post(
            "/v1/screenings/batch", json={"screenings": chunk}, headers=idem()
        )
        assert response.status_code == 200, response.text
        assert response.json()["created"] == len(chunk), response.text
    referrals, _ = await walk_pages(
        api, "/v1/referrals", {"route": "sjr", "specialty": specialty, "limit": 200}
    )
    assert len(referrals) == count
    assert {(r["status"], r["stage"]) for r in referrals} == {("ready", 1)}
    return referrals


async def claim(
    api: Api, specialty: str, reviewer: str, *, in_body: bool = False, **body: Any
) -> httpx.Response:
    """POST /v1/referrals/claim for an SJR of ``specialty``, naming the reviewer in the body
    or (the default) in X-On-Behalf-Of."""
    payload: dict[str, Any] = {"route": "sjr", "specialty": specialty, **body}
    headers: dict[str, str] = {}
    if in_body:
        payload["reviewer"] = reviewer
    else:
        headers["X-On-Behalf-Of"] = reviewer
    return await api.post("/v1/referrals/claim", json=payload, headers=headers)


async def claim_until_empty(
    api: Api, specialty: str, reviewer: str, seed: int, **body: Any
) -> list[dict[str, Any]]:
    """Claim 1-5 at a time until a claim comes back empty; every claim must answer 200."""
    rng = random.Random(seed)
    claimed: list[dict[str, Any]] = []
    while True:
        count = rng.randint(1, 5)
        response = await claim(api, specialty, reviewer, count=count, **body)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        assert len(items) <= count
        if not items:
            return claimed
        claimed.extend(items)


def assert_claimed_once(
    claims: list[list[dict[str, Any]]], expected: list[dict[str, Any]]
) -> list[str]:
    """No referral went to two claimers (or twice to one), and every one was claimed; each
    with its own live lease."""
    ids = [item["id"] for batch in claims for item in batch]
    twice = [rid for rid, n in Counter(ids).items() if n > 1]
    assert not twice, f"{len(twice)} claimed more than once, e.g. {twice[:5]}"
    assert set(ids) == {r["id"] for r in expected}
    leases = [item["lease_id"] for batch in claims for item in batch]
    assert all(leases) and len(set(leases)) == len(leases)
    assert {item["status"] for batch in claims for item in batch} == {"claimed"}
    return ids


@contextmanager
def connections_in_use(databases: list[Database]) -> Iterator[dict[str, int]]:
    """The most database connections the apps' pools had checked out at one moment."""
    gauge = {"now": 0, "peak": 0}

    def checkout(*_: Any) -> None:
        gauge["now"] += 1
        gauge["peak"] = max(gauge["peak"], gauge["now"])

    def checkin(*_: Any) -> None:
        gauge["now"] -= 1

    pools = [database.engine.sync_engine.pool for database in databases]
    for pool in pools:
        event.listen(pool, "checkout", checkout)
        event.listen(pool, "checkin", checkin)
    try:
        yield gauge
    finally:
        for pool in pools:
            event.remove(pool, "checkout", checkout)
            event.remove(pool, "checkin", checkin)


@pytest.fixture
async def app_and_http(app_factory: MakeApp) -> tuple[Any, Any]:
    """This module's app waits long for a connection and a lock: its races test that claims
    and reviews take turns and never double, and forty at once on a loaded two-core CI machine
    can outlast the defaults (3 s for a pooled connection, 2 s for a lock), whose refusals
    (503, 409) are tested on their own in tests/security/test_db_timeouts.py."""
    return await app_factory(database_pool_timeout_seconds=30, database_lock_timeout_ms=30_000)


async def workers(app_factory: MakeApp, make_api: MakeApi, n: int) -> list[tuple[Api, Database]]:
    """``n`` separate app instances (own engine and pool each), each with its own API client.
    Their lock timeout is long: these races test that writers take turns on a row, and eight
    turns on a loaded CI machine can outlast the default's 2 s (that refusal, a 409 record-busy,
    has tests of its own in tests/security/test_db_timeouts.py)."""
    made = []
    for _ in range(n):
        app, http = await app_factory(database_lock_timeout_ms=30_000)
        made.append((await make_api(*SCOPES, client=http), app.state.database))
    return made


async def claim_transitions(database: Database, referral_ids: list[str]) -> Counter[str]:
    """How many `claim` transitions each referral recorded."""
    async with database.transaction() as session:
        rows = await session.execute(
            select(ReferralTransition.referral_id, func.count())
            .where(
                ReferralTransition.referral_id.in_([uuid.UUID(r) for r in referral_ids]),
                ReferralTransition.action == "claim",
            )
            .group_by(ReferralTransition.referral_id)
        )
        return Counter({str(referral_id): n for referral_id, n in rows.all()})


@pytest.mark.postgres_only
async def test_sixteen_concurrent_claimers_take_every_referral_exactly_once(
    make_api: MakeApi, app_factory: MakeApp, database: Database
) -> None:
    api = await make_api(*SCOPES)
    specialty = unique("Claims Race")
    queued = await queue_sjrs(api, specialty, 300)
    claimers = await workers(app_factory, make_api, 16)

    with connections_in_use([db for _, db in claimers]) as gauge:
        claims = await asyncio.gather(
            *(
                claim_until_empty(worker, specialty, f"Dr Racer {n}", seed=n)
                for n, (worker, _) in enumerate(claimers)
            )
        )

    # The 16 claimers were in flight together, each on its own connection.
    assert gauge["peak"] >= 8, gauge
    ids = assert_claimed_once(claims, queued)
    assert len(ids) == 300
    for n, batch in enumerate(claims):
        assert {item["leased_to"] for item in batch} <= {f"Dr Racer {n}"}
    # Every referral recorded exactly one claim, and the queue now reads as all claimed.
    assert await claim_transitions(database, ids) == Counter(ids)
    left = await api.get(
        "/v1/referrals", params={"route": "sjr", "specialty": specialty, "status": "ready"}
    )
    assert left.json()["items"] == []
    held, _ = await walk_pages(
        api,
        "/v1/referrals",
        {"route": "sjr", "specialty": specialty, "status": "claimed", "limit": 200},
    )
    assert len(held) == 300


async def test_claimers_taking_turns_never_get_the_same_referral(make_api: MakeApi) -> None:
    """The same contract without concurrency (SQLite serialises writers): four reviewers
    claiming 1-5 at a time in turn share the queue out with nothing given twice."""
    api = await make_api(*SCOPES)
    specialty = unique("Claims Turns")
    queued = await queue_sjrs(api, specialty, 30)
    rng = random.Random(7)
    claims: list[list[dict[str, Any]]] = [[] for _ in range(4)]
    finished: set[int] = set()
    while len(finished) < 4:
        for n in range(4):
            if n in finished:
                continue
            response = await claim(api, specialty, f"Dr Turn {n}", count=rng.randint(1, 5))
            assert response.status_code == 200, response.text
            items = response.json()["items"]
            if not items:
                finished.add(n)
            claims[n].extend(items)

    assert_claimed_once(claims, queued)
    assert all(claims), "every reviewer got some of the queue"
    # Queue order: the first claim took the head of the queue.
    assert claims[0][0]["id"] == queued[0]["id"]


async def expire_lease(database: Database, referral_id: str) -> None:
    """Move a lease's expiry into the past, as if its time had run out."""
    async with database.transaction() as session:
        await session.execute(
            update(Referral)
            .where(Referral.id == uuid.UUID(referral_id))
            .values(lease_expires_at=now() - timedelta(seconds=1))
        )


async def test_an_expired_lease_goes_to_the_next_claimer_and_the_old_one_is_refused(
    make_api: MakeApi, app_factory: MakeApp, database: Database
) -> None:
    (first, _), (second, _) = await workers(app_factory, make_api, 2)
    specialty = unique("Claims Expiry")
    (queued,) = await queue_sjrs(first, specialty, 1)

    (held,) = (await claim(first, specialty, "Dr First")).json()["items"]
    assert held["id"] == queued["id"] and held["leased_to"] == "Dr First"
    # While the lease is live nobody else can take it.
    assert (await claim(second, specialty, "Dr Second")).json()["items"] == []

    await expire_lease(database, held["id"])
    shown = (await second.get(f"/v1/referrals/{held['id']}")).json()
    assert shown["status"] == "ready" and shown["lease_id"] is None

    response = await claim(second, specialty, "Dr Second")
    assert response.status_code == 200, response.text
    (taken,) = response.json()["items"]
    assert taken["id"] == held["id"]
    assert taken["leased_to"] == "Dr Second" and taken["lease_id"] != held["lease_id"]

    # The first holder's lease is dead: renew, release and review are all refused.
    old = {"lease_id": held["lease_id"]}
    refused = [
        await first.post(f"/v1/referrals/{held['id']}/renew", json=old),
        await first.post(f"/v1/referrals/{held['id']}/release", json=old),
        await first.post(
            f"/v1/referrals/{held['id']}/review",
            json={**old, "review": problem_sjr("Dr First", overall=4, avoidability=6)},
        ),
    ]
    for response in refused:
        assert response.status_code == 409, response.text
        assert response.json()["current_status"] == "claimed"
    now_shown = (await second.get(f"/v1/referrals/{held['id']}")).json()
    assert now_shown["leased_to"] == "Dr Second" and now_shown["lease_id"] == taken["lease_id"]
    assert (await second.get(f"/v1/deaths/{queued['death_id']}")).json()["reviews"] == []

    # The new holder's lease works.
    posted = await second.post(
        f"/v1/referrals/{held['id']}/review",
        json={
            "lease_id": taken["lease_id"],
            "review": problem_sjr("Dr Second", overall=4, avoidability=6),
        },
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["reviewer"] == "Dr Second"


@pytest.mark.postgres_only
async def test_stage_one_reviewers_never_receive_their_own_stage_two_under_contention(
    make_api: MakeApi, app_factory: MakeApp
) -> None:
    api = await make_api(*SCOPES)
    specialty = unique("Claims Stage")
    first, second = unique("Dr Alpha"), unique("Dr Beta")
    queued = await queue_sjrs(api, specialty, 40)

    # Each reviewer takes half the stage-1 SJRs and rates care poor: 40 stage-2 SJRs, 20
    # excluding each of them.
    mine = {
        first: (await claim(api, specialty, first, count=20, stage=1)).json()["items"],
        second: (await claim(api, specialty, second, count=20, stage=1)).json()["items"],
    }
    assert sorted(r["id"] for held in mine.values() for r in held) == sorted(
        r["id"] for r in queued
    )
    posted = await asyncio.gather(
        *(
            api.post(
                f"/v1/referrals/{r['id']}/review",
                json={
                    "lease_id": r["lease_id"],
                    "review": problem_sjr(name, overall=2, avoidability=4),
                },
            )
            for name, held in mine.items()
            for r in held
        )
    )
    refused = {p.json().get("detail") for p in posted if p.status_code != 201}
    assert [p.status_code for p in posted] == [201] * 40, refused
    stage_two, _ = await walk_pages(
        api,
        "/v1/referrals",
        {"route": "sjr", "specialty": specialty, "stage": 2, "status": "ready", "limit": 200},
    )
    assert Counter(r["excluded_reviewer"] for r in stage_two) == {first: 20, second: 20}

    # Sixteen claimers, eight for each reviewer (names in any case, in the header or the
    # body), all after the stage-2 queue at once.
    claimers = await workers(app_factory, make_api, 16)
    names = [first, first.upper(), first.lower(), second, second.upper(), second.lower()]
    as_whom = [names[n % len(names)] if n < 12 else (first, second)[n % 2] for n in range(16)]
    claims = await asyncio.gather(
        *(
            claim_until_empty(worker, specialty, as_whom[n], seed=n, stage=2, in_body=n % 2 == 0)
            for n, (worker, _) in enumerate(claimers)
        )
    )

    assert_claimed_once(claims, stage_two)
    for n, batch in enumerate(claims):
        reviewer = as_whom[n].casefold()
        assert all(item["excluded_reviewer"].casefold() != reviewer for item in batch), n
    # So each reviewer's claimers took exactly the other reviewer's stage-2 reviews.
    took = Counter(
        (as_whom[n].casefold(), item["excluded_reviewer"])
        for n, batch in enumerate(claims)
        for item in batch
    )
    assert took == {(first.casefold(), second): 20, (second.casefold(), first): 20}

    # Released back to the queue, a reviewer's own stage-2 reviews stay out of their reach
    # however many of their claimers ask at once; anyone else can take them.
    # (Each by the client that claimed it: a lease is its holder's alone, issue 11.)
    own = [
        (claimers[n][0], item)
        for n, batch in enumerate(claims)
        for item in batch
        if item["excluded_reviewer"] == first
    ]
    for holder, item in own:
        released = await holder.post(
            f"/v1/referrals/{item['id']}/release", json={"lease_id": item["lease_id"]}
        )
        assert released.status_code == 200, released.text
    again = await asyncio.gather(
        *(
            claim(worker, specialty, as_whom[n], count=50, stage=2)
            for n, (worker, _) in enumerate(claimers)
            if as_whom[n].casefold() == first.casefold()
        )
    )
    assert [r.status_code for r in again] == [200] * 8
    assert [r.json()["items"] for r in again] == [[]] * 8
    retaken = (await claim(api, specialty, unique("Dr Gamma"), count=50, stage=2)).json()
    assert sorted(r["id"] for r in retaken["items"]) == sorted(item["id"] for _, item in own)


@pytest.mark.postgres_only
@pytest.mark.parametrize("submit", [True, False], ids=["submitted", "drafts"])
async def test_concurrent_reviews_under_one_lease_make_one_review(
    make_api: MakeApi, app_factory: MakeApp, database: Database, submit: bool
) -> None:
    """Eight identical review posts race under the same lease. The referral row is locked for
    the review, so they run one after another: a submission completes the referral and the
    others find it completed (409); drafts each update the one review (one 201, then 200s).
    Never two reviews, never two stage-2 referrals."""
    racers = await workers(app_factory, make_api, 8)
    specialty = unique("Claims Review Race")
    (queued,) = await queue_sjrs(racers[0][0], specialty, 1)
    (held,) = (await claim(racers[0][0], specialty, "Dr Racer")).json()["items"]
    body = {
        "lease_id": held["lease_id"],
        "submit": submit,
        "review": problem_sjr("Dr Racer", overall=2, avoidability=4),
    }

    # All as the client holding the lease (a lease is its holder's alone, issue 11), each
    # through its own app instance and pool.
    holder = racers[0][0]
    as_holder = [Api(worker.http, holder.key, holder.client_id) for worker, _ in racers]
    with connections_in_use([db for _, db in racers]) as gauge:
        responses = await asyncio.gather(
            *(worker.post(f"/v1/referrals/{held['id']}/review", json=body) for worker in as_holder)
        )

    assert gauge["peak"] >= 4, gauge
    statuses = Counter(r.status_code for r in responses)
    if submit:
        assert statuses == {201: 1, 409: 7}, [r.text for r in responses]
        for response in responses:
            if response.status_code == 409:
                assert response.json()["current_status"] == "completed"
    else:
        assert statuses == {201: 1, 200: 7}, [r.text for r in responses]
        assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    async with database.transaction() as session:
        reviews = (
            await session.scalars(select(Review).where(Review.referral_id == uuid.UUID(held["id"])))
        ).all()
    assert len(reviews) == 1
    assert reviews[0].version == (1 if submit else 8)

    death = (await racers[0][0].get(f"/v1/deaths/{queued['death_id']}")).json()
    assert len(death["reviews"]) == 1
    sjrs = sorted((r["stage"], r["status"]) for r in death["referrals"] if r["route"] == "sjr")
    if submit:
        assert sjrs == [(1, "completed"), (2, "ready")]
    else:
        assert sjrs == [(1, "in_progress")]
