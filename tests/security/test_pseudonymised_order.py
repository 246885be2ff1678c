"""Issue 11, defect 10: a commissioner's lists of deaths came newest death first by the exact
time of death, so the order told it what the rows hide (which death came first within a
month), and cursors were unsigned, so any death id made into a cursor started a page there.
Now a pseudonymised client's deaths and findings come by month of death, then by id; and
every list's cursor carries an HMAC under the deployment's cursor key: an edited or made-up
cursor is a 400."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from app.auth.scopes import Scope
from tests.factories import idem, screening_body

DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}")  # an ISO date or time, not a UUID


def encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode(cursor: str) -> list[Any]:
    values: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return values


async def deaths_in(
    api: Any, specialty: str, moments: list[datetime], *, expected: bool = True
) -> list[str]:
    ids = []
    for moment in moments:
        body = screening_body(
            death={"specialty_at_death": specialty, "admitting_specialty": specialty},
            screening={"death_expected": expected},
            died_at=moment,
        )
        # Admission before death, whatever the factory's default.
        body["death"]["admitted_at"] = moment.replace(day=1, hour=0).isoformat()
        response = await api.post("/v1/screenings", json=body, headers=idem())
        assert response.status_code == 201, response.text
        ids.append(response.json()["death"]["id"])
    return ids


async def listed(reader: Any, path: str, params: dict[str, str]) -> list[str]:
    """Every row, page by page (one a page), through the cursors the list hands out."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        response = await reader.get(
            path, params={**params, "limit": "1"} | ({"cursor": cursor} if cursor else {})
        )
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json()["items"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


async def test_a_commissioner_sees_deaths_by_month_then_id(api, make_api) -> None:
    specialty = f"Order {uuid.uuid4().hex[:10]}"
    march = [datetime(2019, 3, day, 10, 30, tzinfo=UTC) for day in (4, 11, 18, 25)]
    february = [datetime(2019, 2, 14, 9, 0, tzinfo=UTC)]
    ids = await deaths_in(api, specialty, march + february)
    # Within March, the death with the greatest id died first: the order of ids is the reverse
    # of the order of death, so an order by time of death cannot pass for the one by id.
    by_id = sorted(ids[:4], reverse=True)
    times = dict(zip(by_id, reversed(march), strict=True))
    for death_id, moment in times.items():
        tag = (await api.get(f"/v1/deaths/{death_id}")).headers["ETag"]
        moved = await api.patch(
            f"/v1/deaths/{death_id}",
            json={"died_at": moment.isoformat()},
            headers={"If-Match": tag},
        )
        assert moved.status_code == 200, moved.text
    period = {"specialty": specialty, "died_from": "2019-02-01", "died_to": "2019-03-31"}

    commissioner = await make_api(pseudonymised=True)
    assert await listed(commissioner, "/v1/deaths", period) == [*by_id, ids[4]]
    # A full client still gets them newest death first.
    newest_first = sorted(by_id, key=lambda death_id: times[death_id], reverse=True)
    assert await listed(api, "/v1/deaths", period) == [*newest_first, ids[4]]

    # Findings carry the date of death: the same order for the commissioner.
    findings = {}
    for death_id in ids:
        made = await api.post(
            "/v1/findings",
            json={
                "death_id": death_id,
                "kind": "concern",
                "theme_code": "sepsis",
                "description": "Order test.",
            },
        )
        assert made.status_code == 201, made.text
        findings[death_id] = made.json()["id"]
    months = [sorted((findings[d] for d in ids[:4]), reverse=True), [findings[ids[4]]]]
    seen = await listed(commissioner, "/v1/findings", period)
    assert seen == months[0] + months[1]


async def test_a_death_id_is_not_a_cursor(api, make_api) -> None:
    """The attack: make a cursor out of a death's id (the unsigned `["r1", id]` a page used to
    hand out) to start a page there and see which deaths come next."""
    specialty = f"Order {uuid.uuid4().hex[:10]}"
    ids = await deaths_in(api, specialty, [datetime(2019, 3, d, tzinfo=UTC) for d in (5, 6, 7)])
    commissioner = await make_api(pseudonymised=True)
    params = {"specialty": specialty, "died_from": "2019-03-01", "died_to": "2019-03-31"}
    for death_id in ids:
        forged = await commissioner.get(
            "/v1/deaths", params=params | {"cursor": encode(["r1", death_id])}
        )
        assert forged.status_code == 400, forged.text
        assert forged.json()["detail"] == "The cursor is not one this service issued."


def tampered(cursor: str) -> dict[str, str]:
    """Edits of a real cursor a client might try."""
    values = decode(cursor)
    *key, mac = values
    other_mac = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    edited_key = [*key[:-1], str(uuid.uuid4())] if key else key
    return {
        "without its MAC": encode(key),
        "another MAC": encode([*key, other_mac]),
        "the key edited": encode([*edited_key, mac]),
        "a made-up MAC": encode([*edited_key, "x" * len(mac)]),
    }


async def test_every_list_refuses_an_edited_cursor(api, make_api) -> None:
    # Two unexpected deaths: two deaths, two SJR referrals (and their FHIR Tasks), findings.
    two = [datetime(2019, 4, 2, tzinfo=UTC)] * 2
    for death_id in await deaths_in(api, f"Order {uuid.uuid4().hex[:10]}", two, expected=False):
        made = await api.post(
            "/v1/findings",
            json={
                "death_id": death_id,
                "kind": "concern",
                "theme_code": "sepsis",
                "description": "C",
            },
        )
        assert made.status_code == 201, made.text
    for title in ("Cursor plan one", "Cursor plan two"):
        made = await api.post("/v1/action-plans", json={"title": title})
        assert made.status_code == 201, made.text
    lists = [
        "/v1/deaths",
        "/v1/referrals",
        "/v1/findings",
        "/v1/themes",
        "/v1/action-plans",
        "/v1/actions",
        "/v1/audit-events",
        "/fhir/r4/Task",
    ]
    checked = 0
    skipped: list[str] = []
    for path in lists:
        first = await api.get(path, params={"_count" if path.startswith("/fhir") else "limit": "1"})
        assert first.status_code == 200, (path, first.text)
        body = first.json()
        if path.startswith("/fhir"):
            links = [link["url"] for link in body.get("link", []) if link["relation"] == "next"]
            cursor = links[0].split("_cursor=")[1].split("&")[0] if links else None
            name = "_cursor"
        else:
            cursor, name = body["next_cursor"], "cursor"
        if cursor is None:
            skipped.append(path)  # fewer than two rows: nothing to tamper with
            continue
        checked += 1
        params = {name: cursor} | ({"_count": "1"} if name == "_cursor" else {"limit": "1"})
        honest = await api.get(path, params=params)
        assert honest.status_code == 200, (path, honest.text)
        for how, bad in tampered(cursor).items():
            response = await api.get(path, params=params | {name: bad})
            assert response.status_code == 400, (path, how, response.text)
    # Actions need a plan's sections and owners to exist; their list signs and checks its
    # cursors with the same two calls as the plans' (app.actions.queries).
    assert set(skipped) <= {"/v1/actions"}, skipped


async def test_a_webhook_delivery_and_endpoint_cursor_is_signed_too(make_api) -> None:
    """The lists of webhook endpoints and deliveries take the same signed cursors (a forged
    one is a 400 before anything is looked up)."""
    manager = await make_api(Scope.webhooks_manage)
    forged = encode([datetime.now(UTC).isoformat(), str(uuid.uuid4())])
    response = await manager.get("/v1/webhook-endpoints", params={"cursor": forged})
    assert response.status_code == 400, response.text


async def test_queue_cursors_carry_no_date(api, make_api) -> None:
    """A queue page's cursor (referrals and the FHIR Task search) names its last row only: the
    due and creation times it sorts by are read back from the row, never written into the
    cursor, where a commissioner could read them (review of issue 11, defect 10)."""
    for _ in range(3):
        body = screening_body()
        body["death"]["learning_disability"] = True
        response = await api.post("/v1/screenings", json=body, headers=idem())
        assert response.status_code == 201, response.text
    commissioner = await make_api(pseudonymised=True)
    page = await commissioner.get("/v1/referrals", params={"limit": "1"})
    assert page.status_code == 200, page.text
    cursors = [page.json()["next_cursor"]]
    bundle = await commissioner.get("/fhir/r4/Task", params={"_count": "1"})
    assert bundle.status_code == 200, bundle.text
    following = [link["url"] for link in bundle.json()["link"] if link["relation"] == "next"]
    assert following, bundle.json()["link"]
    cursors.append(following[0].split("_cursor=")[1].split("&")[0])
    for cursor in cursors:
        assert cursor is not None
        values = decode(cursor)
        dated = [v for v in values if isinstance(v, str) and DATE.search(v)]
        assert not dated, values
    second = await commissioner.get("/v1/referrals", params={"limit": "1", "cursor": cursors[0]})
    assert second.status_code == 200, second.text
    assert second.json()["items"][0]["id"] != page.json()["items"][0]["id"]
