"""Input taken as sent (issue 11, defect 12): duplicate JSON members, invisible and
reordering characters in names and notes, the same person under two source references, and
CSV cells that a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from app.auth.scopes import Scope
from app.db import Database
from app.kit.xlsx import csv_text
from app.models import AuditEvent, OutboxEvent
from tests.conftest import Api, MakeApi
from tests.factories import deaths_with_source, idem, screening_body, test_nhs_number

JSON = {"Content-Type": "application/json"}


# --- (a) duplicate members ---------------------------------------------------------------------


def with_duplicate(body: dict[str, Any], section: str, name: str, second: str) -> str:
    """The body as JSON with `name` in `section` sent twice (the second value last)."""
    raw = json.dumps(body)
    first = json.dumps({name: body[section][name]})[1:-1]
    return raw.replace(first, f"{first}, {json.dumps(name)}: {json.dumps(second)}", 1)


async def test_a_member_named_twice_is_a_400_naming_it_and_writes_nothing(api: Api) -> None:
    body = screening_body()
    raw = with_duplicate(body, "death", "nhs_number", "9434765919")
    response = await api.post("/v1/screenings", content=raw, headers={**JSON, **idem()})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"].endswith("/duplicate-key")
    assert "'nhs_number'" in problem["detail"]
    assert problem["errors"] == [
        {"pointer": "/death/nhs_number", "code": "duplicate_key", "detail": "named twice"}
    ]
    assert "9434765919" not in response.text
    assert await deaths_with_source(api, body) == []


async def test_duplicates_are_refused_on_every_json_body_and_deep_inside(
    api: Api, make_api: MakeApi
) -> None:
    _, recorded = await recorded_death(api)
    # A PATCH, nested in an array, and a name that is not a field name (not repeated).
    death = await api.get(f"/v1/deaths/{recorded['death_id']}")
    patched = await api.patch(
        f"/v1/deaths/{recorded['death_id']}",
        content='{"ward": "A", "ward": "B"}',
        headers={**JSON, "If-Match": death.headers["ETag"]},
    )
    assert patched.status_code == 400 and "'ward'" in patched.json()["detail"]
    assert (await api.get(f"/v1/deaths/{recorded['death_id']}")).json()["ward"] == "Ward 7"
    plan = await api.post(
        "/v1/action-plans",
        content='{"title": "P", "organisations": ["RR8"], "sections": [], '
        '"x": [{"a": 1}, {"b": 1, "b": 2}]}',
        headers=JSON,
    )
    assert plan.status_code == 400
    assert plan.json()["errors"][0]["pointer"] == "/x/1/b"
    odd = await api.post("/v1/findings", content='{"9434765919": 1, "9434765919": 2}', headers=JSON)
    assert odd.status_code == 400
    assert "9434765919" not in odd.text
    # Without a key the answer is still 401: nothing about the body before the credential.
    anonymous = await api.http.post(
        "/v1/findings", content='{"death_id": 1, "death_id": 2}', headers=JSON
    )
    assert anonymous.status_code == 401


# --- (b) what is kept of text ------------------------------------------------------------------


async def recorded_death(api: Api, **death: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    body = screening_body(death=death)
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    return body, response.json()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("family_name", "Smith\u202eetirW"),  # right-to-left override
        ("given_name", "Ann\u2066a"),  # left-to-right isolate
        ("family_name", "Smi\x1bth"),  # ESC
        ("family_name", "Smi\x85th"),  # C1 next line
        ("given_name", "Ann\nMarie"),  # a name is one line
        ("ward", "Ward\x07 7"),  # BEL in other text
        ("family_name", "\u200b\u200d"),  # nothing but invisible characters
    ],
)
async def test_controls_and_overrides_are_refused_at_their_field(
    api: Api, field: str, value: str
) -> None:
    body = screening_body(death={field: value})
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 422, response.text
    assert [error["pointer"] for error in response.json()["errors"]] == [f"/death/{field}"]
    assert value not in response.text
    assert await deaths_with_source(api, body) == []


async def test_zero_width_is_stripped_from_names_and_text_is_nfc(api: Api) -> None:
    decomposed = unicodedata.normalize("NFD", "Zoë Ólafsdóttir")
    _, recorded = await recorded_death(
        api, given_name="Jo\u200bhn", family_name=f"Sm\u200di\ufeffth-{decomposed}"
    )
    concerns = "Family said:\n\tpain relief late\u200b.\nघ्\u200dन"  # ZWJ shapes Devanagari
    response = await api.post(
        "/v1/screenings",
        json=screening_body(screening={"bereaved_concerns": concerns}),
        headers=idem(),
    )
    assert response.status_code == 201, response.text
    death = (await api.get(f"/v1/deaths/{recorded['death_id']}")).json()
    assert death["given_name"] == "John"
    assert death["family_name"] == "Smith-" + unicodedata.normalize("NFC", decomposed)
    kept = response.json()["bereaved_concerns"]
    assert kept == "Family said:\n\tpain relief late.\nघ्\u200dन"


# --- (c) one person, two deaths ---------------------------------------------------------------


async def unused_nhs_number(api: Api) -> str:
    """A test NHS number no death of the shared test database holds yet."""
    while True:
        number = test_nhs_number()
        found = await api.get("/v1/deaths", params={"nhs_number": number})
        if found.json()["items"] == []:
            return number


async def test_the_same_nhs_number_under_another_reference_is_flagged_never_merged(
    api: Api, make_api: MakeApi, database: Database
) -> None:
    number = await unused_nhs_number(api)
    _, first = await recorded_death(api, nhs_number=number)
    _, second = await recorded_death(api, nhs_number=number)
    assert second["death_id"] != first["death_id"]  # two deaths: nothing merged silently
    later = (await api.get(f"/v1/deaths/{second['death_id']}")).json()
    earlier = (await api.get(f"/v1/deaths/{first['death_id']}")).json()
    assert later["possible_duplicate_of"] == [first["death_id"]]
    assert earlier["possible_duplicate_of"] == [] and earlier["same_person_as"] == []

    # A commissioner is not shown the linkage (its pseudonym is the NHS number's anyway).
    commissioner = await make_api(Scope.deaths_read, pseudonymised=True)
    seen = (await commissioner.get(f"/v1/deaths/{second['death_id']}")).json()
    assert "possible_duplicate_of" not in seen and "same_person_as" not in seen
    assert first["death_id"] not in json.dumps(seen)
    refused_filter = await commissioner.get("/v1/deaths", params={"possible_duplicate": "true"})
    assert refused_filter.status_code == 400
    flagged = await api.get(
        "/v1/deaths", params={"possible_duplicate": "true", "nhs_number": number}
    )
    assert [item["id"] for item in flagged.json()["items"]] == [second["death_id"]]

    # A pair that is not flagged is refused at its field; so is a stale tag.
    _, unrelated = await recorded_death(api)
    url = f"/v1/deaths/{second['death_id']}/duplicate-review"
    tag = (await api.get(f"/v1/deaths/{second['death_id']}")).headers["ETag"]
    refused = await api.post(
        url,
        json={"other_death_id": unrelated["death_id"], "decision": "same_person"},
        headers={"If-Match": tag},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["pointer"] == "/other_death_id"
    assert (
        await api.post(url, json={"other_death_id": first["death_id"], "decision": "same_person"})
    ).status_code == 428

    linked = await api.post(
        url,
        json={"other_death_id": first["death_id"], "decision": "same_person"},
        headers={"If-Match": tag, "X-On-Behalf-Of": "Ms Bereavement Office"},
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["possible_duplicate_of"] == []
    assert linked.json()["same_person_as"] == [first["death_id"]]
    assert linked.headers["ETag"] != tag
    earlier = (await api.get(f"/v1/deaths/{first['death_id']}")).json()
    assert earlier["same_person_as"] == [second["death_id"]]
    assert earlier["version"] == 2

    ids = [uuid.UUID(first["death_id"]), uuid.UUID(second["death_id"])]
    async with database.transaction() as session:
        audits = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "death.duplicate_review", AuditEvent.resource_id.in_(ids)
                )
            )
        ).all()
        events = (
            await session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.type == "death.duplicate_reviewed", OutboxEvent.resource_id.in_(ids)
                )
            )
        ).all()
    assert sorted(a.resource_id for a in audits) == sorted(ids)
    assert {a.on_behalf_of for a in audits} == {"Ms Bereavement Office"}
    assert sorted(e.resource_id for e in events) == sorted(ids)

    # The decision can be reviewed again from the other death: different people, unlinked.
    earlier_tag = (await api.get(f"/v1/deaths/{first['death_id']}")).headers["ETag"]
    unlinked = await api.post(
        f"/v1/deaths/{first['death_id']}/duplicate-review",
        json={"other_death_id": second["death_id"], "decision": "different_people"},
        headers={"If-Match": earlier_tag},
    )
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["same_person_as"] == []
    later = (await api.get(f"/v1/deaths/{second['death_id']}")).json()
    assert later["possible_duplicate_of"] == [] and later["same_person_as"] == []
    cleared = await api.get(
        "/v1/deaths", params={"possible_duplicate": "true", "nhs_number": number}
    )
    assert cleared.json()["items"] == []


async def test_a_corrected_nhs_number_that_matches_another_death_is_flagged(api: Api) -> None:
    number = await unused_nhs_number(api)
    _, first = await recorded_death(api, nhs_number=number)
    _, other = await recorded_death(api, nhs_number=await unused_nhs_number(api))
    url = f"/v1/deaths/{other['death_id']}"
    corrected = await api.patch(
        url,
        json={"nhs_number": number},
        headers={"If-Match": (await api.get(url)).headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["possible_duplicate_of"] == [first["death_id"]]


# --- (d) the CSV formula guard -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        "+1+1",
        "-1+1",
        "-cmd|' /C calc'!A0",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        " =1",
        '\uff1dHYPERLINK("x")',
        "\uff0b1",
        "\uff0d1",
        "\uff20SUM(A1)",
    ],
)
def test_a_cell_that_could_be_a_formula_is_guarded(text: str) -> None:
    assert csv_text(text).startswith("'")


@pytest.mark.parametrize("text", ["-5", "-12.5", "+3", "-", "Ward 7", "5-10", "a=b", "£-5"])
def test_plain_numbers_and_text_are_left_alone(text: str) -> None:
    assert csv_text(text) == text


async def test_exports_guard_every_formula_start_and_keep_numbers_numbers(api: Api) -> None:
    plan = await api.post(
        "/v1/action-plans",
        json={"title": "\uff1dcmd", "organisations": ["RR8"], "sections": ["-2+3"]},
    )
    assert plan.status_code == 201, plan.text
    action = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan.json()["id"],
            "section_id": plan.json()["sections"][0]["id"],
            "reference": "-1",
            "action": '\uff0bHYPERLINK("http://example.invalid")',
            "comments": "@SUM(A1:A9)",
            "leads": ["-Dr Lead"],
            "due_date": "2020-01-31",
        },
    )
    assert action.status_code == 201, action.text
    exported = await api.get(
        f"/v1/action-plans/{plan.json()['id']}/export", params={"format": "csv"}
    )
    assert exported.status_code == 200, exported.text
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row if cell]
    for cell in cells:
        assert cell[:1] not in {"=", "+", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20"}, cell
        assert cell[:1] != "-" or cell in {"-", "-1"}, cell
    assert "'-2+3" in cells and '\'\uff0bHYPERLINK("http://example.invalid")' in cells
    assert "-1" in cells  # a plain number stays as it is

    report = await api.get(
        "/v1/reports/actions", params={"plan_id": plan.json()["id"], "format": "csv"}
    )
    assert report.status_code == 200, report.text
    for row in csv.reader(io.StringIO(report.text)):
        for cell in row:
            assert cell[:1] not in {"=", "+", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20"}, cell


async def test_an_exported_plan_imports_back_as_it_was(api: Api) -> None:
    title = f"Plan {uuid.uuid4().hex[:8]}"
    plan = await api.post(
        "/v1/action-plans", json={"title": title, "organisations": ["RR8"], "sections": ["S"]}
    )
    action_text = "\uff1dnot a formula, but guarded"
    created = await api.post(
        "/v1/actions",
        json={
            "plan_id": plan.json()["id"],
            "section_id": plan.json()["sections"][0]["id"],
            "reference": "1",
            "action": action_text,
            "due_date": "2020-01-31",
        },
    )
    assert created.status_code == 201, created.text
    exported = await api.get(
        f"/v1/action-plans/{plan.json()['id']}/export", params={"format": "csv"}
    )
    assert f"'{action_text}" in exported.content.decode("utf-8-sig")
    dry_run = await api.post(
        "/v1/action-plans/import",
        params={"dry_run": "true", "title": f"{title} again"},
        content=exported.content,
        headers={"Content-Type": "text/csv"},
    )
    assert dry_run.status_code in {200, 201}, dry_run.text
    assert action_text in dry_run.text
    assert f"'{action_text}" not in dry_run.text
