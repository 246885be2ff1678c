"""The referral lifecycle as a property-based state machine, through the HTTP API.

Hypothesis drives sequences of claims (three reviewers, by header or by body), renewals and
releases with the right lease and with stale or made-up ones, leases that expire (set in the
past in the database, never by sleeping), assignments, declines, holds, resumes, cancellations,
drafts and submitted reviews, over a small pool of referrals: three unexpected deaths (one SJR
each), a coroner referral, and a death with a learning disability (an SJR and a LeDeR
referral), plus whatever the submitted reviews raise (second-stage SJRs, PSIIs).

The machine models what each request should do. After every step the queue as a user reads it
and the database must agree with the model: statuses and leases; no referral under two live
leases, nor handed out while its lease is live; nothing leaves `completed`, `declined` or
`cancelled`; every successful transition leaves exactly one outbox event and one
`referral_transitions` row for its referral, and a refused one (409 naming the current state,
never a 5xx) leaves none.

Hypothesis's stateful tests are synchronous, so the machine runs the app on its own event loop
in a background thread, with its own engine, and waits for each call.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.scopes import Scope
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.models import OutboxEvent, Referral, ReferralTransition
from tests.conftest import Api, new_client, owner_url
from tests.factories import idem, screening_body

T = TypeVar("T")

REVIEWERS = ("Dr Ash", "Dr Birch", "Dr Cedar")
CLAIMERS = (*REVIEWERS, "DR BIRCH", None)  # None: a claim that names no reviewer
ASSIGNEES = (*REVIEWERS, "dr ash", None)  # None: unassign
CLAIMABLE = frozenset({"ready", "in_progress"})
OPEN = CLAIMABLE | {"on_hold"}
FINAL = frozenset({"completed", "declined", "cancelled"})
LEASES = st.sampled_from(("current", "current", "stale", "made_up"))
LEASES_OR_NONE = st.sampled_from(("current", "current", "stale", "made_up", "none"))
REFERRALS = st.tuples(st.sampled_from(("fit", "fit", "any")), st.integers(0, 63))

# The pool: what each screening in it refers.
DEATHS: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (
    ({}, {"death_expected": False}),  # sjr
    ({}, {"death_expected": False}),  # sjr
    ({}, {"death_expected": False}),  # sjr
    ({}, {"coroner_notified": True, "coroner_reason": "cause_unknown"}),  # coroner
    ({"learning_disability": True}, {}),  # leder + sjr
)


class Harness:
    """The app, an httpx client and an admin API client on an event loop in its own thread."""

    def __init__(self, app_settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self._start(app_settings))

    async def _start(self, app_settings: Settings) -> None:
        self.app = create_app(app_settings)
        self.database: Database = self.app.state.database
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
            base_url="http://testserver",
        )
        key, client_id = await new_client(self.database, [Scope.admin], "lifecycle machine")
        self.api = Api(self.http, key, client_id)
        # The machine's own reads, outside the app (and, on SQLite, without taking the write
        # lock the app's transactions take up front).
        self.reader = create_async_engine(owner_url(app_settings.database_url))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def close(self) -> None:
        async def stop() -> None:
            await self.http.aclose()
            await self.database.dispose()
            await self.reader.dispose()

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()


@dataclass
class Modelled:
    """What the machine expects of one referral."""

    id: str
    death_id: str
    route: str
    stage: int | None
    queue_key: tuple[int, datetime, datetime, str]
    status: str = "ready"  # as stored: never `claimed`
    lease: str | None = None  # the live lease
    leased_to: str | None = None
    stale: list[str] = field(default_factory=list)  # leases that ended
    assigned_to: str | None = None
    excluded: str | None = None
    has_review: bool = False
    events: int = 0
    transitions: int = 0

    @property
    def effective(self) -> str:
        return "claimed" if self.status == "ready" and self.lease else self.status

    def lease_accepted(self, presented: str | None) -> bool:
        """A live lease must be presented; a presented lease must be the live one."""
        if presented is None:
            return self.lease is None
        return self.lease is not None and presented == self.lease

    def claimable_by(self, reviewer: str | None) -> bool:
        if self.status not in CLAIMABLE or self.lease is not None:
            return False
        if reviewer is None:
            return self.assigned_to is None and self.excluded is None
        folded = reviewer.casefold()
        return (self.assigned_to is None or self.assigned_to.casefold() == folded) and (
            self.excluded is None or self.excluded.casefold() != folded
        )

    def end_lease(self) -> None:
        if self.lease is not None:
            self.stale.append(self.lease)
        self.lease = self.leased_to = None

    def transitioned(self) -> None:
        self.events += 1
        self.transitions += 1


def leased(referral: Modelled) -> bool:
    return referral.lease is not None


def is_open(referral: Modelled) -> bool:
    return referral.status in OPEN


def claimable(referral: Modelled) -> bool:
    return referral.status in CLAIMABLE


def held(referral: Modelled) -> bool:
    return referral.status == "on_hold"


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


class ReferralLifecycle(RuleBasedStateMachine):
    def __init__(self, harness: Harness) -> None:
        super().__init__()
        self.harness = harness
        self.specialty = f"Lifecycle {uuid.uuid4().hex[:12]}"
        self.pool: dict[str, Modelled] = {}
        self.died_at: dict[str, datetime] = {}
        self.final: dict[str, str] = {}  # referral id -> the final status first seen
        self.leases_seen: set[str] = set()
        for death, screening in DEATHS:
            body = screening_body(
                death={
                    "specialty_at_death": self.specialty,
                    "admitting_specialty": self.specialty,
                    **death,
                },
                screening=screening,
            )
            recorded = self.call("POST", "/v1/screenings", json=body, headers=idem())
            assert recorded.status_code == 201, recorded.text
            self.died_at[recorded.json()["death_id"]] = parse(body["death"]["died_at"])
        found = self.discover()
        assert sorted((m.route, m.stage) for m in found) == [
            ("coroner", None),
            ("leder", None),
            *[("sjr", 1)] * 4,
        ]

    # -- plumbing ---------------------------------------------------------------------------

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.harness.run(self.harness.api.request(method, url, **kwargs))
        assert response.status_code < 500, f"{method} {url}: {response.text}"
        return response

    def queue(self) -> dict[str, dict[str, Any]]:
        response = self.call(
            "GET", "/v1/referrals", params={"specialty": self.specialty, "limit": 200}
        )
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        return {item["id"]: item for item in response.json()["items"]}

    def discover(self) -> list[Modelled]:
        """Referrals in the queue that the model does not know yet (new follow-ons)."""
        found = []
        for item in self.queue().values():
            if item["id"] in self.pool:
                continue
            assert item["status"] == "ready" and item["lease_id"] is None
            modelled = Modelled(
                id=item["id"],
                death_id=item["death_id"],
                route=item["route"],
                stage=item["stage"],
                queue_key=(
                    item["priority"],
                    parse(item["due_at"]),
                    parse(item["created_at"]),
                    item["id"],
                ),
                assigned_to=item["assigned_to"],
                excluded=item["excluded_reviewer"],
            )
            self.pool[modelled.id] = modelled
            found.append(modelled)
        if found:
            _, events, transitions = self.harness.run(self.stored([m.id for m in found]))
            for modelled in found:
                # A new referral has its `referral.created` event and no transition yet.
                assert events.get(modelled.id, 0) == 1
                assert transitions.get(modelled.id, 0) == 0
                modelled.events = 1
        return found

    async def stored(self, ids: list[str]) -> tuple[dict[str, Any], dict[str, int], dict[str, int]]:
        """The referrals' rows, and how many outbox events and transitions each has."""
        keys = [uuid.UUID(i) for i in ids]
        async with self.harness.reader.connect() as connection:
            rows = await connection.execute(
                select(
                    Referral.id, Referral.status, Referral.lease_id, Referral.lease_expires_at
                ).where(Referral.id.in_(keys))
            )
            events = await connection.execute(
                select(OutboxEvent.resource_id, func.count())
                .where(OutboxEvent.resource_type == "referral", OutboxEvent.resource_id.in_(keys))
                .group_by(OutboxEvent.resource_id)
            )
            transitions = await connection.execute(
                select(ReferralTransition.referral_id, func.count())
                .where(ReferralTransition.referral_id.in_(keys))
                .group_by(ReferralTransition.referral_id)
            )
            return (
                {str(row.id): row for row in rows},
                {str(key): count for key, count in events},
                {str(key): count for key, count in transitions},
            )

    async def set_expired(self, referral_id: str) -> None:
        past = datetime.now(UTC) - timedelta(minutes=1)
        async with self.harness.database.transaction() as session:
            await session.execute(
                update(Referral)
                .where(Referral.id == uuid.UUID(referral_id))
                .values(lease_expires_at=past)
            )

    def pick(self, ref: tuple[str, int], fit: Callable[[Modelled], bool]) -> Modelled:
        """A referral the action fits (when there is one), or any referral at all, so that
        both what is allowed and what is refused get tried."""
        kind, index = ref
        everything = list(self.pool.values())
        choices = everything
        if kind == "fit":
            choices = [m for m in everything if fit(m)] or everything
        return choices[index % len(choices)]

    def lease_for(self, referral: Modelled, which: str) -> str | None:
        if which == "current":
            return referral.lease
        if which == "stale" and referral.stale:
            return referral.stale[-1]
        if which == "none":
            return None
        return str(uuid.uuid4())

    def expect(
        self, response: httpx.Response, referral: Modelled, allowed: bool, ok: int = 200
    ) -> bool:
        """The answer the model calls for: `ok`, or 409 naming the current state."""
        if allowed:
            assert response.status_code == ok, response.text
            return True
        assert response.status_code == 409, response.text
        assert response.json()["current_status"] == referral.effective, response.text
        return False

    def shows(self, response: httpx.Response, referral: Modelled) -> None:
        body = response.json()
        assert body["status"] == referral.effective
        assert body["lease_id"] == referral.lease
        assert body["assigned_to"] == referral.assigned_to

    def review_body(self, referral: Modelled, submit: bool, **sjr: Any) -> dict[str, Any]:
        if referral.route == "sjr":
            if not submit:
                return {
                    "instrument": "sjr",
                    "phases": [{"phase": "admission_initial", "rating": 3}],
                }
            return {
                "instrument": "sjr",
                "reviewer": {"name": sjr["reviewer"]},
                "phases": [
                    {"phase": "ongoing", "rating": 3, "narrative": "Reviewed daily."},
                    {"phase": "overall", "rating": sjr["overall"], "narrative": "Overall."},
                ],
                "quality_of_records": 3,
                "avoidability": sjr["avoidability"],
                "patient_safety_incident_suspected": sjr["safety"],
            }
        noted = (self.died_at[referral.death_id] + timedelta(hours=1)).isoformat()
        if referral.route == "leder":
            return {"instrument": "leder", "notified_at": noted, "leder_reference": "LD-1"}
        return {
            "instrument": "external",
            "reference": "EXT-1",
            "organisation": "HM Coroner" if referral.route == "coroner" else "Safety team",
            "referred_at": noted,
            "status": "referred",
        }

    def follow_ons(self, referral: Modelled, **sjr: Any) -> list[tuple[str, int | None, Any]]:
        """What a submitted review should raise: (route, stage, excluded reviewer), never a
        second of a route and stage the death has open or done."""
        if referral.route != "sjr":
            return []
        wanted: list[tuple[str, int | None, Any]] = []
        avoidable = sjr["avoidability"] <= 3
        if referral.stage != 2 and (avoidable or sjr["overall"] <= 2):
            wanted.append(("sjr", 2, sjr["reviewer"]))
        if referral.stage == 2 and avoidable:
            wanted.append(("psii", None, None))
        if sjr["safety"]:
            wanted.append(("psii", None, None))
        live = {
            (m.route, m.stage)
            for m in self.pool.values()
            if m.death_id == referral.death_id and m.status not in {"cancelled", "declined"}
        }
        raised = []
        for route, stage, excluded in wanted:
            if (route, stage) not in live:
                live.add((route, stage))
                raised.append((route, stage, excluded))
        return raised

    # -- rules --------------------------------------------------------------------------------

    @rule(
        reviewer=st.sampled_from(CLAIMERS),
        named_by=st.sampled_from(("header", "body", "both")),
        count=st.integers(min_value=1, max_value=3),
        stage=st.sampled_from((None, None, 1, 2)),
        lease_seconds=st.sampled_from((None, 600, 3600)),
    )
    def claim_sjr(
        self,
        reviewer: str | None,
        named_by: str,
        count: int,
        stage: int | None,
        lease_seconds: int | None,
    ) -> None:
        self.claim("sjr", reviewer, named_by, count, stage, lease_seconds)

    @rule(
        route=st.sampled_from(("coroner", "leder", "psii")),
        reviewer=st.sampled_from(CLAIMERS),
        count=st.integers(min_value=1, max_value=2),
    )
    def claim_other(self, route: str, reviewer: str | None, count: int) -> None:
        self.claim(route, reviewer, "header", count, None, None)

    def claim(
        self,
        route: str,
        reviewer: str | None,
        named_by: str,
        count: int,
        stage: int | None,
        lease_seconds: int | None,
    ) -> None:
        body: dict[str, Any] = {"route": route, "specialty": self.specialty, "count": count}
        headers: dict[str, str] = {}
        if route == "sjr" and stage is not None:
            body["stage"] = stage
        else:
            stage = None
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        if reviewer is not None:
            if named_by in ("body", "both"):
                body["reviewer"] = reviewer  # the body wins over the header
            if named_by == "header":
                headers["X-On-Behalf-Of"] = reviewer
            if named_by == "both":
                headers["X-On-Behalf-Of"] = "Dr Somebody Else"
        expected = sorted(
            (
                m
                for m in self.pool.values()
                if m.route == route
                and (stage is None or m.stage == stage)
                and m.claimable_by(reviewer)
            ),
            key=lambda m: m.queue_key,
        )[:count]
        before = datetime.now(UTC)
        response = self.call("POST", "/v1/referrals/claim", json=body, headers=headers)
        after = datetime.now(UTC)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [item["id"] for item in items] == [m.id for m in expected]
        length = timedelta(seconds=lease_seconds or 1800)
        for item, modelled in zip(items, expected, strict=True):
            assert modelled.lease is None, "handed out under a live lease"
            assert item["lease_id"] not in self.leases_seen, "a lease id given twice"
            assert item["leased_to"] == reviewer
            expires = parse(item["lease_expires_at"])
            assert before + length - timedelta(seconds=1) <= expires
            assert expires <= after + length + timedelta(seconds=1)
            modelled.lease, modelled.leased_to = item["lease_id"], reviewer
            self.leases_seen.add(item["lease_id"])
            modelled.transitioned()
            assert item["status"] == modelled.effective

    @rule(
        ref=REFERRALS,
        which=LEASES,
        lease_seconds=st.sampled_from((None, 900)),
    )
    def renew(self, ref: tuple[str, int], which: str, lease_seconds: int | None) -> None:
        referral = self.pick(ref, leased)
        lease = self.lease_for(referral, which) or str(uuid.uuid4())
        body: dict[str, Any] = {"lease_id": lease}
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        allowed = referral.status in CLAIMABLE and referral.lease_accepted(lease)
        before = datetime.now(UTC)
        response = self.call("POST", f"/v1/referrals/{referral.id}/renew", json=body)
        if self.expect(response, referral, allowed):
            expires = parse(response.json()["lease_expires_at"])
            assert expires >= before + timedelta(seconds=(lease_seconds or 1800) - 1)
            referral.transitioned()
            self.shows(response, referral)

    @rule(ref=REFERRALS, which=LEASES)
    def release(self, ref: tuple[str, int], which: str) -> None:
        referral = self.pick(ref, leased)
        lease = self.lease_for(referral, which) or str(uuid.uuid4())
        allowed = referral.status in CLAIMABLE and referral.lease_accepted(lease)
        response = self.call(
            "POST", f"/v1/referrals/{referral.id}/release", json={"lease_id": lease}
        )
        if self.expect(response, referral, allowed):
            referral.end_lease()
            referral.transitioned()
            self.shows(response, referral)

    @precondition(lambda self: any(m.lease for m in self.pool.values()))
    @rule(index=st.integers(min_value=0, max_value=63))
    def expire_lease(self, index: int) -> None:
        referral = self.pick(("fit", index), leased)
        self.harness.run(self.set_expired(referral.id))
        referral.end_lease()  # nothing to record: an expired lease is simply claimable
        self.read_the_queue()

    @rule(ref=REFERRALS, assignee=st.sampled_from(ASSIGNEES))
    def assign(self, ref: tuple[str, int], assignee: str | None) -> None:
        referral = self.pick(ref, is_open)
        excluded = (
            assignee is not None
            and referral.excluded is not None
            and assignee.casefold() == referral.excluded.casefold()
        )
        allowed = referral.status in OPEN and not excluded
        response = self.call(
            "POST", f"/v1/referrals/{referral.id}/assign", json={"assigned_to": assignee}
        )
        if self.expect(response, referral, allowed):
            if referral.assigned_to != assignee:
                referral.assigned_to = assignee
                referral.transitioned()
            self.shows(response, referral)

    def close(self, action: str, ref: tuple[str, int], which: str | None, to: str) -> None:
        referral = self.pick(ref, {"hold": claimable, "resume": held}.get(action, is_open))
        body: dict[str, Any] = {}
        lease = None
        if action != "resume":
            body["reason"] = f"{action} for the machine"
        if which is not None:
            lease = self.lease_for(referral, which)
            if lease is not None:
                body["lease_id"] = lease
        allowed = referral.status in {
            "decline": OPEN,
            "hold": CLAIMABLE,
            "resume": frozenset({"on_hold"}),
            "cancel": OPEN,
        }[action] and (which is None or referral.lease_accepted(lease))
        response = self.call("POST", f"/v1/referrals/{referral.id}/{action}", json=body)
        if self.expect(response, referral, allowed):
            referral.end_lease()
            referral.status = to
            if to == "ready" and referral.has_review:
                referral.status = "in_progress"
            referral.transitioned()
            self.shows(response, referral)

    @rule(ref=REFERRALS, which=LEASES_OR_NONE, cancel=st.booleans())
    def decline_or_cancel(self, ref: tuple[str, int], which: str, cancel: bool) -> None:
        """One rule for both, so that the pool is not finished off too quickly."""
        if cancel:
            self.close("cancel", ref, None, "cancelled")  # no lease needed to cancel
        else:
            self.close("decline", ref, which, "declined")

    @rule(ref=REFERRALS, which=LEASES_OR_NONE)
    def hold(self, ref: tuple[str, int], which: str) -> None:
        self.close("hold", ref, which, "on_hold")

    @rule(ref=REFERRALS)
    def resume(self, ref: tuple[str, int]) -> None:
        self.close("resume", ref, None, "ready")

    @rule(ref=REFERRALS, which=LEASES_OR_NONE)
    def save_draft(self, ref: tuple[str, int], which: str) -> None:
        referral = self.pick(ref, claimable)
        lease = self.lease_for(referral, which)
        body: dict[str, Any] = {"submit": False, "review": self.review_body(referral, False)}
        if lease is not None:
            body["lease_id"] = lease
        allowed = referral.status in CLAIMABLE and referral.lease_accepted(lease)
        response = self.call("POST", f"/v1/referrals/{referral.id}/review", json=body)
        if self.expect(response, referral, allowed, 200 if referral.has_review else 201):
            assert response.json()["status"] == "draft"
            referral.has_review = True
            if referral.status != "in_progress":  # a draft starts the work; the lease stays
                referral.status = "in_progress"
                referral.transitioned()

    @rule(
        ref=REFERRALS,
        which=LEASES_OR_NONE,
        reviewer=st.sampled_from(REVIEWERS),
        overall=st.integers(min_value=1, max_value=5),
        avoidability=st.integers(min_value=1, max_value=6),
        safety=st.booleans(),
    )
    def submit_review(
        self,
        ref: tuple[str, int],
        which: str,
        reviewer: str,
        overall: int,
        avoidability: int,
        safety: bool,
    ) -> None:
        referral = self.pick(ref, claimable)
        lease = self.lease_for(referral, which)
        # The reviewer of record is the one the lease is for, when there is one.
        sjr = {
            "reviewer": referral.leased_to or reviewer,
            "overall": overall,
            "avoidability": avoidability,
            "safety": safety,
        }
        body: dict[str, Any] = {"review": self.review_body(referral, True, **sjr)}
        if lease is not None:
            body["lease_id"] = lease
        excluded = referral.excluded is not None and (
            referral.excluded.casefold() == str(sjr["reviewer"]).casefold()
        )
        allowed = referral.status in CLAIMABLE and referral.lease_accepted(lease) and not excluded
        raised = self.follow_ons(referral, **sjr) if allowed else []
        response = self.call("POST", f"/v1/referrals/{referral.id}/review", json=body)
        if not self.expect(response, referral, allowed, 200 if referral.has_review else 201):
            return
        assert response.json()["status"] == "submitted"
        referral.end_lease()
        referral.status = "completed"
        referral.has_review = True
        referral.transitioned()
        found = self.discover()
        got = [(m.route, m.stage, m.excluded) for m in found]
        assert sorted(got, key=str) == sorted(raised, key=str)
        assert all(m.death_id == referral.death_id for m in found)

    # -- what must always hold ---------------------------------------------------------------

    @rule()
    def read_the_queue(self) -> None:
        """The queue as a user reads it: effective statuses (an expired lease reads as ready),
        live leases only, and no final status ever left."""
        items = self.queue()
        assert set(items) == set(self.pool), "a referral appeared or vanished unexplained"
        for modelled in self.pool.values():
            item = items[modelled.id]
            assert item["status"] == modelled.effective, (modelled, item)
            assert item["lease_id"] == modelled.lease, (modelled, item)
            assert item["leased_to"] == (modelled.leased_to if modelled.lease else None)
            assert item["assigned_to"] == modelled.assigned_to
            assert item["excluded_reviewer"] == modelled.excluded
            if item["status"] in FINAL:
                self.final.setdefault(modelled.id, item["status"])
        for referral_id, status in self.final.items():
            assert items[referral_id]["status"] == status, "a final status was left"

    # -- what must hold after every step -------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        """Stored status and lease as modelled (one live lease at most, the right one), and
        one outbox event and one transition row per successful transition, none for refusals."""
        rows, events, transitions = self.harness.run(self.stored(list(self.pool)))
        moment = datetime.now(UTC)
        for modelled in self.pool.values():
            row = rows[modelled.id]
            assert row.status == modelled.status  # stored status never holds `claimed`
            live = row.lease_expires_at is not None and row.lease_expires_at > moment
            assert live == (modelled.lease is not None), (modelled, row.lease_expires_at)
            if live:
                assert str(row.lease_id) == modelled.lease
            if row.status in FINAL:
                self.final.setdefault(modelled.id, row.status)
            if modelled.id in self.final:
                assert row.status == self.final[modelled.id], "a final status was left"
            assert events.get(modelled.id, 0) == modelled.events, ("outbox events", modelled)
            assert transitions.get(modelled.id, 0) == modelled.transitions, (
                "transitions",
                modelled,
            )


def test_the_referral_lifecycle_holds_its_invariants(base_settings: Settings) -> None:
    harness = Harness(base_settings)

    class Machine(ReferralLifecycle):
        def __init__(self) -> None:
            super().__init__(harness)

    try:
        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=25,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        harness.close()
