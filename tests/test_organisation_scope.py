"""Organisations confine what each client sees (issue 16): a trust sees its own deaths, an
ICB's pseudonymised client its members', a practice what was shared with it, a
deployment-level client nothing; shares open one death for a purpose and period."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.auth.scopes import Scope
from app.db import Database
from app.kit.id_lists import names
from app.models import AuditEvent, Organisation
from tests.conftest import Api, MakeApi
from tests.factories import idem, record, record_unexpected
from tests.kit.reviews import brief_sjr


@dataclass
class Region:
    icb: uuid.UUID
    trust_a: uuid.UUID
    trust_b: uuid.UUID
    practice: uuid.UUID
    a: Api
    b: Api
    icb_pseudonymised: Api
    icb_identifiable: Api
    practice_api: Api
    deployment: Api


async def _organisation(
    database: Database, name: str, kind: str, parent: uuid.UUID | None = None
) -> uuid.UUID:
    async with database.transaction() as session:
        made = Organisation(
            id=uuid.uuid4(), name=name, kind=kind, parent_id=parent, aliases=[], settings={}
        )
        session.add(made)
    return made.id


@pytest.fixture
async def region(database: Database, make_api: MakeApi) -> Region:
    icb = await _organisation(database, "Test ICB", "icb")
    trust_a = await _organisation(database, "Trust A", "trust", icb)
    trust_b = await _organisation(database, "Trust B", "trust", icb)
    practice = await _organisation(database, "Practice P", "gp_practice", icb)
    return Region(
        icb=icb,
        trust_a=trust_a,
        trust_b=trust_b,
        practice=practice,
        a=await make_api(organisation_id=trust_a),
        b=await make_api(organisation_id=trust_b),
        icb_pseudonymised=await make_api(pseudonymised=True, organisation_id=icb),
        icb_identifiable=await make_api(
            Scope.deaths_read, Scope.referrals_read, organisation_id=icb
        ),
        practice_api=await make_api(
            Scope.deaths_read,
            Scope.findings_read,
            Scope.findings_write,
            Scope.referrals_read,
            Scope.reviews_write,
            organisation_id=practice,
        ),
        deployment=await make_api(deployment_level=True),
    )


async def _death_ids(api: Api, source_reference: str) -> list[str]:
    response = await api.get("/v1/deaths", params={"source_reference": source_reference})
    if response.status_code == 400:  # a pseudonymised client may not filter by reference
        response = await api.get("/v1/deaths", params={"limit": 200})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_each_organisation_sees_its_own_deaths_only(region: Region) -> None:
    in_a = await record(region.a)
    in_b = await record(region.b)
    death_a, death_b = in_a["death"]["id"], in_b["death"]["id"]
    reference_a = in_a["death"]["source_reference"]

    assert (await region.a.get(f"/v1/deaths/{death_a}")).status_code == 200
    assert (await region.b.get(f"/v1/deaths/{death_a}")).status_code == 404
    assert (await region.a.get(f"/v1/deaths/{death_b}")).status_code == 404
    assert await _death_ids(region.a, reference_a) == [death_a]
    assert await _death_ids(region.b, reference_a) == []
    # The ICB's identifiable client reaches no member's deaths without a share; its
    # pseudonymised client reaches every member's, as pseudonyms.
    assert (await region.icb_identifiable.get(f"/v1/deaths/{death_a}")).status_code == 404
    for death in (death_a, death_b):
        seen = await region.icb_pseudonymised.get(f"/v1/deaths/{death}")
        assert seen.status_code == 200, seen.text
        assert "nhs_number" not in seen.json()
        assert "family_name" not in seen.json()
    # A deployment-level client manages organisations but reads no patient data.
    assert (await region.deployment.get(f"/v1/deaths/{death_a}")).status_code == 404
    listed = await region.deployment.get("/v1/deaths", params={"limit": 200})
    assert listed.status_code == 200 and listed.json()["items"] == []


async def test_a_deployment_level_client_records_no_deaths(region: Region) -> None:
    from tests.factories import screening_body

    response = await region.deployment.post("/v1/screenings", json=screening_body(), headers=idem())
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_source_key_another_organisation_holds_is_refused_for_good(
    region: Region, make_api: MakeApi
) -> None:
    """A sender's key is unique across the deployment: B's key sent by A (a screening, a
    notification, an HL7 message) is a 409 that names no death and does not ask for a retry
    that would be refused the same."""
    from tests.factories import screening_body
    from tests.kit.hl7 import adt
    from tests.kit.notifications import notification_body

    held = (await record(region.b))["death"]
    key = {"source_system": held["source_system"], "source_reference": held["source_reference"]}
    screening = screening_body(death=key)
    notification = notification_body(**key)
    sender = await make_api(Scope.notifications_write, organisation_id=region.trust_b)
    message = adt(visit="V" + uuid.uuid4().hex[:10].upper())
    sent = await sender.post(
        "/v1/hl7v2/adt", content=message.encode(), headers={"Content-Type": "application/hl7-v2"}
    )
    assert "|AA|" in sent.text, sent.text
    for path, body, pointer in (
        ("/v1/screenings", screening, "/death/source_reference"),
        ("/v1/death-notifications", notification, "/source_reference"),
    ):
        refused = await region.a.post(path, json=body, headers=idem())
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"].endswith("/source-key-taken"), problem
        assert [error["pointer"] for error in problem["errors"]] == [pointer]
        assert "retry" not in problem["detail"].lower()
        assert held["id"] not in refused.text and "existing" not in problem
    # The same visit number from trust A's PAS: HL7 AE, duplicate key (205), no retry asked.
    notifier = await make_api(Scope.notifications_write, organisation_id=region.trust_a)
    again = await notifier.post(
        "/v1/hl7v2/adt", content=message.encode(), headers={"Content-Type": "application/hl7-v2"}
    )
    assert "|AE|" in again.text and "205^" in again.text, again.text
    assert "retry" not in again.text.lower()


async def test_an_import_refuses_the_record_whose_key_another_organisation_holds(
    region: Region, database: Database
) -> None:
    """The history import cannot see B's death, so it cannot find the key by a query: the
    record is refused at the insert (the unique key), the rest of the batch goes in, and B's
    death is untouched. It was an IntegrityError that failed the whole job."""
    from sqlalchemy import func

    from app.models import Death
    from tests.history_records import history_record, run, utc

    died = utc(2018, 5, 3, 14, 0)
    theirs = history_record(died)
    assert (await run(region.b, [theirs]))["created"] == 1
    clash = history_record(died, reference=theirs["death"]["source_reference"])
    clash["death"]["family_name"] = "Overwriter"
    ours = history_record(died)
    for all_or_nothing in ("false", "true"):
        job = await run(region.a, [ours, clash], all_or_nothing=all_or_nothing)
        expected = "completed" if all_or_nothing == "false" else "refused"
        assert job["status"] == expected and job["error"] is None, job
        assert job["refused"] == 1 and job["created"] == (all_or_nothing == "false"), job
        [problem] = job["problems"]
        assert problem["line"] == 2
        assert [e["code"] for e in problem["errors"]] == ["source_key_taken"]
        assert [e["pointer"] for e in problem["errors"]] == ["/death/source_reference"]
    async with database.transaction() as session:
        held = (
            await session.execute(
                select(Death.organisation_id, Death.family_name, func.count())
                .where(
                    Death.source_system == theirs["death"]["source_system"],
                    Death.source_reference == theirs["death"]["source_reference"],
                )
                .group_by(Death.organisation_id, Death.family_name)
            )
        ).all()
    assert held == [(region.trust_b, "Histfamily", 1)]
    listed = await region.a.get(
        "/v1/deaths", params={"source_reference": ours["death"]["source_reference"]}
    )
    assert len(listed.json()["items"]) == 1


async def test_the_feed_and_queues_hold_only_what_the_client_may_see(region: Region) -> None:
    cursors = {}
    for name, api in (("a", region.a), ("b", region.b)):
        now = await api.get("/v1/events", params={"start": "now"})
        assert now.status_code == 200, now.text
        cursors[name] = now.json()["next_cursor"]
    in_a = await record_unexpected(region.a)
    death_a = in_a["death"]["id"]

    async def events_of(api: Api, cursor: str) -> list[dict[str, Any]]:
        page = await api.get("/v1/events", params={"cursor": cursor, "limit": 1000})
        assert page.status_code == 200, page.text
        return list(page.json()["items"])

    # The feed hands out an event once every older transaction of the cluster has ended (its
    # horizon, app.events.feed): on a shared server, a moment after the commit. Once A sees
    # its event, B's page from the same point has passed it too, and must not hold it.
    deadline = asyncio.get_running_loop().time() + 10
    while not any(e.get("death_id") == death_a for e in await events_of(region.a, cursors["a"])):
        assert asyncio.get_running_loop().time() < deadline, "A's event never reached its feed"
        await asyncio.sleep(0.05)
    assert all(e.get("death_id") != death_a for e in await events_of(region.b, cursors["b"]))
    referrals_b = await region.b.get("/v1/referrals", params={"route": "sjr", "limit": 200})
    assert referrals_b.status_code == 200, referrals_b.text
    assert all(item["death_id"] != death_a for item in referrals_b.json()["items"])
    claimed = await region.b.post("/v1/referrals/claim", json={"route": "sjr", "count": 50})
    assert claimed.status_code == 200, claimed.text
    assert all(item["death_id"] != death_a for item in claimed.json()["items"])


async def test_a_share_opens_one_death_for_its_purpose_until_revoked(
    region: Region, database: Database
) -> None:
    shared = (await record_unexpected(region.a))["death"]["id"]
    other = (await record(region.a))["death"]["id"]
    assert (await region.practice_api.get(f"/v1/deaths/{shared}")).status_code == 404

    made = await region.a.post(
        f"/v1/deaths/{shared}/shares",
        json={"organisation": str(region.practice), "purpose": "review", "note": "GP care"},
        headers=idem(),
    )
    assert made.status_code == 201, made.text
    share = made.json()
    assert share["active"] is True
    assert share["organisation"]["id"] == str(region.practice)
    ends = datetime.fromisoformat(share["ends_at"])
    assert timedelta(days=89) < ends - datetime.now(UTC) <= timedelta(days=90)

    seen = await region.practice_api.get(f"/v1/deaths/{shared}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["family_name"] == "Testfamily"  # identifiable: shared for review
    assert (await region.practice_api.get(f"/v1/deaths/{other}")).status_code == 404
    assert (await region.b.get(f"/v1/deaths/{shared}")).status_code == 404
    listed = await region.practice_api.get("/v1/deaths", params={"limit": 200})
    assert [item["id"] for item in listed.json()["items"]] == [shared]
    # The recipient may post its findings on the shared death.
    finding = await region.practice_api.post(
        "/v1/findings",
        json={
            "death_id": shared,
            "kind": "learning_point",
            "theme_code": "communication",
            "summary": "Discharge letter reached the practice late.",
        },
        headers=idem(),
    )
    assert finding.status_code in (201, 422), finding.text
    # ... and its review of the death's SJR, through the route's referral.
    sjr = next(r for r in seen.json()["referrals"] if r["route"] == "sjr")
    review = await region.practice_api.post(
        f"/v1/referrals/{sjr['id']}/review",
        json={"review": brief_sjr("Dr Practice", 3, "Pre-admission care was adequate.")},
    )
    assert review.status_code == 201, review.text
    # ... but cannot pass the death on, and another trust cannot share what it cannot see.
    passed_on = await region.practice_api.post(
        f"/v1/deaths/{shared}/shares",
        json={"organisation": str(region.trust_b), "purpose": "review"},
    )
    assert passed_on.status_code == 403, passed_on.text
    not_seen = await region.b.post(
        f"/v1/deaths/{shared}/shares",
        json={"organisation": str(region.trust_b), "purpose": "review"},
    )
    assert not_seen.status_code == 404, not_seen.text
    # Its accesses are audited under its organisation.
    async with database.transaction() as session:
        rows = (
            await session.scalars(
                select(AuditEvent).where(
                    names(AuditEvent.death_ids, uuid.UUID(shared)),
                    AuditEvent.client_id == region.practice_api.client_id,
                )
            )
        ).all()
    assert rows and {row.organisation_id for row in rows} == {region.practice}

    revoked = await region.a.post(f"/v1/deaths/{shared}/shares/{share['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["active"] is False
    assert (await region.practice_api.get(f"/v1/deaths/{shared}")).status_code == 404


async def test_a_share_is_refused_clearly_when_it_cannot_be_made(region: Region) -> None:
    death = (await record(region.a))["death"]["id"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"organisation": "Q99", "purpose": "review"}, "/organisation"),
        ({"organisation": str(region.trust_a), "purpose": "review"}, "/organisation"),
        (
            {
                "organisation": str(region.practice),
                "purpose": "review",
                "ends_at": "2020-01-01T00:00:00Z",
            },
            "/ends_at",
        ),
        (
            {
                "organisation": str(region.practice),
                "purpose": "review",
                "referral_id": str(uuid.uuid4()),
            },
            "/referral_id",
        ),
        ({"organisation": str(region.practice), "purpose": "gossip"}, "/purpose"),
    ]
    for body, pointer in cases:
        response = await region.a.post(f"/v1/deaths/{death}/shares", json=body)
        assert response.status_code == 422, response.text
        assert pointer in [error["pointer"] for error in response.json()["errors"]]
    listed = await region.a.get(f"/v1/deaths/{death}/shares")
    assert listed.status_code == 200 and listed.json()["items"] == []


async def test_a_trust_leaves_with_its_own_deaths_only(
    region: Region, database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import json

    from app.cli import main
    from app.config import get_settings

    in_a = (await record(region.a))["death"]
    in_b = (await record(region.b))["death"]
    exported = tmp_path / "trust-a.jsonl"
    monkeypatch.setenv("LFD_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        code = await asyncio.to_thread(
            main,
            [
                "history",
                "export",
                "--organisation",
                str(region.trust_a),
                "--output",
                str(exported),
            ],
        )
        unknown = await asyncio.to_thread(
            main, ["history", "export", "--organisation", "Q00", "--output", str(exported) + "x"]
        )
    finally:
        get_settings.cache_clear()
    assert code == 0 and unknown == 2
    references = [
        json.loads(line)["death"]["source_reference"] for line in exported.read_text().splitlines()
    ]
    assert in_a["source_reference"] in references
    assert in_b["source_reference"] not in references


async def test_what_a_deployment_administrator_does_to_a_trusts_clients_is_in_its_audit_log(
    region: Region,
) -> None:
    made = await region.deployment.post(
        "/v1/clients",
        json={
            "name": "Minted for trust A",
            # No patient data: a deployment-level client mints no other kind of client
            # (tests/test_organisation_writes.py).
            "scopes": ["webhooks:manage"],
            "organisation_id": str(region.trust_a),
        },
    )
    assert made.status_code == 201, made.text
    client_id = made.json()["id"]
    assert made.json()["organisation_id"] == str(region.trust_a)
    rotated = await region.deployment.post(f"/v1/clients/{client_id}/rotate-key", json={})
    assert rotated.status_code in (200, 201), rotated.text

    async def actions_seen(api: Api) -> list[str]:
        response = await api.get("/v1/audit-events", params={"resource_id": client_id})
        assert response.status_code == 200, response.text
        return [row["action"] for row in response.json()["items"]]

    assert {"client.create", "client.rotate_key"} <= set(await actions_seen(region.a))
    assert await actions_seen(region.b) == []
