"""One audit row per page (issue 19): a page of records names every patient on it in one row,
"who read patient X" finds those rows, page after page, and a reader confined to some
organisations sees on another organisation's row only the patients it may see itself."""

from __future__ import annotations

import uuid
from typing import Any

from app.auth.scopes import Scope
from app.db import Database
from app.models import Organisation
from tests.conftest import Api, MakeApi
from tests.factories import idem, record
from tests.kit.audit import request_id, traced


async def trail(auditor: Api, **params: str) -> list[dict[str, Any]]:
    """Every row the search finds, two a page, following the cursors."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await auditor.get("/v1/audit-events", params=query)
        assert response.status_code == 200, response.text
        rows.extend(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return rows


async def trust(database: Database, name: str) -> uuid.UUID:
    async with database.transaction() as session:
        made = Organisation(
            id=uuid.uuid4(),
            name=f"{name} {uuid.uuid4().hex[:6]}",
            kind="trust",
            aliases=[],
            settings={},
        )
        session.add(made)
    return made.id


async def test_who_read_a_patient_finds_the_pages_that_named_them(make_api: MakeApi) -> None:
    writer = await make_api(Scope.screenings_write, Scope.deaths_read)
    auditor = await make_api(Scope.audit_read)
    site = f"Page site {uuid.uuid4().hex[:8]}"
    deaths = [(await record(writer, death={"site": site}))["death"]["id"] for _ in range(3)]

    listed_rids = []
    for _ in range(3):
        rid = request_id()
        page = await writer.get("/v1/deaths", params={"site": site}, headers=traced(rid))
        assert {item["id"] for item in page.json()["items"]} == set(deaths)
        listed_rids.append(rid)
    read_rid = request_id()
    assert (
        await writer.get(f"/v1/deaths/{deaths[1]}", headers=traced(read_rid))
    ).status_code == 200

    # Every page that showed the patient, and the read of their record, newest first, followed
    # across pages of the search (limit 2).
    found = await trail(auditor, death_id=deaths[1])
    mine = [row for row in found if row["request_id"] in {*listed_rids, read_rid}]
    assert [row["request_id"] for row in mine] == [read_rid, *reversed(listed_rids)]
    read, *pages = mine
    assert (read["action"], read["death_id"], read["death_ids"]) == (
        "death.read",
        deaths[1],
        [deaths[1]],
    )
    for row in pages:
        assert (row["action"], row["resource_id"], row["death_id"]) == ("death.list", None, None)
        assert set(row["death_ids"]) == set(deaths)
    assert [row["occurred_at"] for row in found] == sorted(
        (row["occurred_at"] for row in found), reverse=True
    )

    # Combined with other filters, the search still fills its pages.
    lists = await trail(auditor, death_id=deaths[0], action="death.list")
    assert [row["request_id"] for row in lists if row["request_id"] in listed_rids] == list(
        reversed(listed_rids)
    )
    assert await trail(auditor, death_id=str(uuid.uuid4())) == []


async def test_another_organisations_page_shows_only_the_patients_shared(
    database: Database, make_api: MakeApi
) -> None:
    trust_a, trust_b = await trust(database, "Page trust A"), await trust(database, "Page trust B")
    a = await make_api(organisation_id=trust_a)
    b = await make_api(organisation_id=trust_b)
    site = f"Shared page site {uuid.uuid4().hex[:8]}"
    shared = (await record(a, death={"site": site}))["death"]["id"]
    kept = (await record(a, death={"site": site}))["death"]["id"]
    own = (await record(b, death={"site": site}))["death"]["id"]
    made = await a.post(
        f"/v1/deaths/{shared}/shares",
        json={"organisation": str(trust_b), "purpose": "review"},
        headers=idem(),
    )
    assert made.status_code == 201, made.text

    rid = request_id()
    page = await b.get("/v1/deaths", params={"site": site}, headers=traced(rid))
    assert {item["id"] for item in page.json()["items"]} == {shared, own}

    # Trust A's governance team sees that trust B's client read its patient, and not which of
    # trust B's own patients were on that page.
    [seen_by_a] = [row for row in await trail(a, death_id=shared) if row["request_id"] == rid]
    assert (seen_by_a["death_ids"], seen_by_a["death_id"]) == ([shared], shared)
    assert [row for row in await trail(a, death_id=own) if row["request_id"] == rid] == []
    assert [row for row in await trail(a, death_id=kept) if row["request_id"] == rid] == []
    # Trust B's own row shows trust B everything its client read.
    [seen_by_b] = [row for row in await trail(b, death_id=own) if row["request_id"] == rid]
    assert set(seen_by_b["death_ids"]) == {shared, own}
    assert seen_by_b["death_id"] is None
