"""What a share lets its recipient do (issue 16, acceptance review; docs/organisations.md,
"What a share allows"): review the shared referral (a draft, its submission, an amendment),
hold its lease, record findings on the death and correct its own, with what the service does
in consequence (the death's status, follow-on referrals, events, the audit) still done. A
share for `learning` is read-only. Everything else is refused: tests/test_share_walk.py walks
every write of the API.

Also here: the searches that pick a death to write to never pick a shared one, and the audit
log of a shared death is its recording organisation's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from app.db import Database
from app.models import Organisation, OutboxEvent
from tests.conftest import Api, MakeApi
from tests.factories import idem, record, record_unexpected, screening_body
from tests.kit.notifications import notification_body
from tests.kit.reviews import brief_sjr, leder_review, problem_sjr, unique


@dataclass
class Pair:
    owner_id: uuid.UUID
    recipient_id: uuid.UUID
    owner: Api
    recipient: Api


@pytest.fixture
async def pair(database: Database, make_api: MakeApi) -> Pair:
    ids = []
    async with database.transaction() as session:
        for name, kind in (("Share work trust", "trust"), ("Share work practice", "gp_practice")):
            made = Organisation(id=uuid.uuid4(), name=name, kind=kind, aliases=[], settings={})
            session.add(made)
            ids.append(made.id)
    return Pair(
        ids[0],
        ids[1],
        await make_api(organisation_id=ids[0]),
        await make_api(organisation_id=ids[1]),
    )


async def _share(pair: Pair, death_id: str, purpose: str = "review", **body: Any) -> None:
    made = await pair.owner.post(
        f"/v1/deaths/{death_id}/shares",
        json={"organisation": str(pair.recipient_id), "purpose": purpose, **body},
        headers=idem(),
    )
    assert made.status_code == 201, made.text


def _refused(response: Any, allows: list[str]) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    problem: dict[str, Any] = response.json()
    assert problem["type"].endswith("/not-record-owner"), problem
    assert problem["share_allows"] == allows, problem
    return problem


async def _claim(api: Api, route: str, specialty: str) -> list[dict[str, Any]]:
    response = await api.post(
        "/v1/referrals/claim",
        json={"route": route, "specialty": specialty, "count": 5},
        headers={"X-On-Behalf-Of": "Dr Practice"},
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_the_recipient_leases_and_reviews_the_referral_the_share_names_only(
    pair: Pair,
) -> None:
    specialty = unique("Shared specialty")
    recorded = await record_unexpected(pair.owner, specialty, death={"learning_disability": True})
    death = recorded["death"]
    routes = {r["route"]: r for r in recorded["referrals"]}
    sjr, leder = routes["sjr"], routes["leder"]
    await _share(pair, death["id"], referral_id=sjr["id"])

    # The queue offers it the shared SJR referral, never the death's LeDeR referral.
    assert await _claim(pair.recipient, "leder", specialty) == []
    (claimed,) = await _claim(pair.recipient, "sjr", specialty)
    assert claimed["id"] == sjr["id"] and claimed["status"] == "claimed"
    lease = {"lease_id": claimed["lease_id"]}
    renewed = await pair.recipient.post(f"/v1/referrals/{sjr['id']}/renew", json=lease)
    assert renewed.status_code == 200, renewed.text
    released = await pair.recipient.post(f"/v1/referrals/{sjr['id']}/release", json=lease)
    assert released.status_code == 200, released.text
    (claimed,) = await _claim(pair.recipient, "sjr", specialty)

    # A draft, then the submission, under its lease.
    draft = await pair.recipient.post(
        f"/v1/referrals/{sjr['id']}/review",
        json={
            "lease_id": claimed["lease_id"],
            "submit": False,
            "review": brief_sjr("Dr Practice", 3, "Pre-admission care was adequate."),
        },
        headers={"X-On-Behalf-Of": "Dr Practice"},
    )
    assert draft.status_code == 201, draft.text
    submitted = await pair.recipient.post(
        f"/v1/referrals/{sjr['id']}/review",
        json={
            "lease_id": claimed["lease_id"],
            "review": brief_sjr("Dr Practice", 4, "Good care before the admission."),
        },
        headers={"X-On-Behalf-Of": "Dr Practice"},
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"
    amended = await pair.recipient.put(
        f"/v1/reviews/{submitted.json()['id']}",
        json={"review": brief_sjr("Dr Practice", 4, "Good care; letter sent late.")},
        headers={"If-Match": submitted.headers["ETag"]},
    )
    assert amended.status_code == 200, amended.text
    seen = await pair.owner.get(f"/v1/referrals/{sjr['id']}")
    assert seen.json()["status"] == "completed"

    # The LeDeR referral is not the share's: no review, no lease, no status change.
    for path, body in (
        ("review", {"review": leder_review(death)}),
        ("renew", {"lease_id": str(uuid.uuid4())}),
        ("release", {"lease_id": str(uuid.uuid4())}),
        ("hold", {"reason": "Awaiting notes"}),
        ("cancel", {"reason": "Not needed"}),
    ):
        refused = await pair.recipient.post(f"/v1/referrals/{leder['id']}/{path}", json=body)
        problem = _refused(refused, ["read", "review", "lease", "findings"])
        assert problem["shared_referral_ids"] == [sjr["id"]]
        assert problem["share_purposes"] == ["review"]
    again = await pair.owner.get(f"/v1/referrals/{leder['id']}")
    assert again.json()["status"] == "ready" and again.json()["version"] == leder["version"]


async def test_what_a_recipients_review_calls_for_is_done(pair: Pair, database: Database) -> None:
    """The service's own writes after an allowed one: the death's status and version, the
    follow-on referral a review raises, the events on the owner's feed; the recipient's
    review is audited under its organisation. A share that names no referral opens each of
    the death's, the follow-on included."""
    good = await record_unexpected(pair.owner, unique("Good care"))
    poor = await record_unexpected(pair.owner, unique("Poor care"))
    for recorded in (good, poor):
        await _share(pair, recorded["death"]["id"], purpose="system_review")

    (referral,) = good["referrals"]
    posted = await pair.recipient.post(
        f"/v1/referrals/{referral['id']}/review",
        json={"review": brief_sjr("Dr Practice", 4, "Good care.")},
    )
    assert posted.status_code == 201, posted.text
    death = (await pair.owner.get(f"/v1/deaths/{good['death']['id']}")).json()
    assert death["status"] == "closed" and death["version"] == good["death"]["version"] + 1

    (referral,) = poor["referrals"]
    posted = await pair.recipient.post(
        f"/v1/referrals/{referral['id']}/review",
        json={"review": problem_sjr("Dr Practice", 2, 5)},
    )
    assert posted.status_code == 201, posted.text
    (follow_on,) = posted.json()["follow_on_referrals"]
    assert follow_on["stage"] == 2
    case = (await pair.owner.get(f"/v1/deaths/{poor['death']['id']}")).json()
    assert follow_on["id"] in [r["id"] for r in case["referrals"]]
    # The share names no referral: the stage-2 review is the recipient's to take too.
    second = await pair.recipient.post(
        f"/v1/referrals/{follow_on['id']}/review",
        json={"review": brief_sjr("Dr Second", 3, "Second stage."), "submit": False},
    )
    assert second.status_code == 201, second.text

    # The events, in the outbox with the recording organisation's deaths (read here, not off
    # the feed: on a shared PostgreSQL server another database's long transaction holds the
    # feed's horizon back; tests/test_organisation_scope.py proves the feed follows the death).
    async with database.transaction() as session:
        written = set(
            (
                await session.execute(
                    select(OutboxEvent.type, OutboxEvent.death_id).where(
                        OutboxEvent.death_id.in_(
                            [uuid.UUID(good["death"]["id"]), uuid.UUID(poor["death"]["id"])]
                        )
                    )
                )
            ).all()
        )
    assert ("death.updated", uuid.UUID(good["death"]["id"])) in written
    assert ("review.submitted", uuid.UUID(poor["death"]["id"])) in written
    trail = await pair.owner.get("/v1/audit-events", params={"death_id": poor["death"]["id"]})
    mine = [
        row for row in trail.json()["items"] if row["client_id"] == str(pair.recipient.client_id)
    ]
    assert "review.create" in {row["action"] for row in mine}


async def test_a_recipient_records_findings_and_corrects_only_its_own(pair: Pair) -> None:
    death = (await record_unexpected(pair.owner))["death"]
    theirs = await pair.owner.post(
        "/v1/findings",
        json={
            "death_id": death["id"],
            "kind": "learning_point",
            "theme_code": "discharge",
            "description": "Recorded by the trust.",
        },
        headers=idem(),
    )
    assert theirs.status_code == 201, theirs.text
    await _share(pair, death["id"])
    mine = await pair.recipient.post(
        "/v1/findings",
        json={
            "death_id": death["id"],
            "kind": "learning_point",
            "theme_code": "discharge",
            "description": "The discharge letter reached the practice late.",
        },
        headers=idem(),
    )
    assert mine.status_code == 201, mine.text
    corrected = await pair.recipient.patch(
        f"/v1/findings/{mine.json()['id']}",
        json={"description": "The discharge letter reached the practice a week late."},
        headers={"If-Match": mine.headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text
    refused = await pair.recipient.patch(
        f"/v1/findings/{theirs.json()['id']}",
        json={"description": "Rewritten by the practice."},
        headers={"If-Match": theirs.headers["ETag"]},
    )
    _refused(refused, ["read", "review", "lease", "findings"])
    kept = await pair.owner.get(f"/v1/findings/{theirs.json()['id']}")
    assert kept.json()["description"] == "Recorded by the trust."


async def test_a_share_for_learning_is_read_only(pair: Pair) -> None:
    specialty = unique("Learning")
    recorded = await record_unexpected(pair.owner, specialty)
    death, (referral,) = recorded["death"], recorded["referrals"]
    await _share(pair, death["id"], purpose="learning")
    read = await pair.recipient.get(f"/v1/deaths/{death['id']}")
    assert read.status_code == 200 and read.json()["family_name"] == "Testfamily"
    assert await _claim(pair.recipient, "sjr", specialty) == []
    review = await pair.recipient.post(
        f"/v1/referrals/{referral['id']}/review",
        json={"review": brief_sjr("Dr Practice", 3, "Discussed at the meeting.")},
    )
    problem = _refused(review, ["read"])
    assert problem["share_purposes"] == ["learning"] and "read-only" in problem["detail"]
    finding = await pair.recipient.post(
        "/v1/findings",
        json={
            "death_id": death["id"],
            "kind": "learning_point",
            "theme_code": "discharge",
            "description": "From the meeting.",
        },
        headers=idem(),
    )
    _refused(finding, ["read"])
    # A second share, for review, opens the work (shares add up).
    await _share(pair, death["id"], purpose="review")
    (claimed,) = await _claim(pair.recipient, "sjr", specialty)
    assert claimed["id"] == referral["id"]


async def test_a_shared_death_is_never_the_one_a_recipients_intake_picks(pair: Pair) -> None:
    """A screening or notification of the same patient by the recipient makes its own death:
    never matched to the shared death (which it could not then change) nor flagged against it
    as a possible duplicate (a flag it could not decide)."""
    shared = (await record(pair.owner))["death"]
    await _share(pair, shared["id"])
    before = (await pair.owner.get(f"/v1/deaths/{shared['id']}")).json()
    same = {"nhs_number": shared["nhs_number"], "died_at": shared["died_at"]}
    notified = await pair.recipient.post(
        "/v1/death-notifications", json=notification_body(**same), headers=idem()
    )
    assert notified.status_code == 201, notified.text
    assert notified.json()["death_created"] is True
    own = notified.json()["death"]["id"]
    assert own != shared["id"]
    case = (await pair.recipient.get(f"/v1/deaths/{own}")).json()
    assert case["possible_duplicate_of"] == []
    screened = await pair.recipient.post(
        "/v1/screenings",
        json=screening_body(death={**same, "nhs_number": shared["nhs_number"]}),
        headers=idem(),
    )
    assert screened.status_code == 201, screened.text
    assert screened.json()["death"]["id"] == own  # its own notified death, screened
    assert (await pair.owner.get(f"/v1/deaths/{shared['id']}")).json() == before


async def test_the_audit_log_of_a_shared_death_is_its_organisations(pair: Pair) -> None:
    """The recipient reads its own organisation's rows of the shared death, never the
    recording organisation's; the recording organisation reads everyone's."""
    death = (await record(pair.owner))["death"]
    await _share(pair, death["id"])
    assert (await pair.recipient.get(f"/v1/deaths/{death['id']}")).status_code == 200

    async def clients(api: Api) -> set[str]:
        response = await api.get("/v1/audit-events", params={"death_id": death["id"]})
        assert response.status_code == 200, response.text
        return {row["client_id"] for row in response.json()["items"]}

    owner, recipient = str(pair.owner.client_id), str(pair.recipient.client_id)
    assert await clients(pair.recipient) == {recipient}
    assert await clients(pair.owner) == {owner, recipient}


@pytest.mark.postgres_only
async def test_the_policies_alone_keep_a_shared_deaths_audit_rows_with_its_organisation(
    pair: Pair, database_url: str
) -> None:
    """Row-level security says the same as the query layer (migration 0028): under the
    recipient's settings, a raw query with no filter reads only its organisation's rows of the
    shared death; under the owner's, everyone's."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    death = (await record(pair.owner))["death"]
    await _share(pair, death["id"])
    assert (await pair.recipient.get(f"/v1/deaths/{death['id']}")).status_code == 200
    engine = create_async_engine(database_url, poolclass=NullPool)

    async def organisations(own: uuid.UUID) -> set[str]:
        settings = {
            "lfd.scope": "some",
            "lfd.organisations": "{" + str(own) + "}",
            "lfd.shared_deaths": "{" + death["id"] + "}" if own == pair.recipient_id else "{}",
        }
        async with engine.connect() as connection, connection.begin():
            for name, value in settings.items():
                await connection.execute(
                    text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
                )
            rows = await connection.scalars(
                text(
                    "SELECT DISTINCT organisation_id::text FROM audit_events"
                    " WHERE death_ids @> ARRAY[CAST(:d AS uuid)]"
                ),
                {"d": death["id"]},
            )
            return set(rows.all())

    try:
        assert await organisations(pair.recipient_id) == {str(pair.recipient_id)}
        assert await organisations(pair.owner_id) == {str(pair.owner_id), str(pair.recipient_id)}
    finally:
        await engine.dispose()


def test_every_purpose_is_for_work_or_read_only() -> None:
    """app.organisations.ownership names the purposes of work as text (it sits below the
    shares' module): each is a purpose a share can have, and only `learning` is not one."""
    from app.organisations.ownership import WORK_PURPOSES
    from app.organisations.shares import SharePurpose

    assert WORK_PURPOSES | {"learning"} == {purpose.value for purpose in SharePurpose}
    assert "learning" not in WORK_PURPOSES
