"""Pseudonymised (commissioner) access, issue 5 part 4.

One patient is seeded with known identifiers, written also into every free-text field that
can hold them (concerns, cause of death, review narratives, referral reasons, findings), with
a screening and a review amended so that their version histories hold them too. Then every GET
route in the OpenAPI document is called by a pseudonymised client holding every scope such a
client can hold, and no response (JSON, CSV, XLSX unzipped, HTML, headers) may contain any of
them. A GET route the walk cannot fill in fails the walk: extend PATH_VALUES for it.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from app.auth.scopes import PSEUDONYMISED_SCOPES, Scope
from app.auth.service import create_client
from app.kit.id_lists import names
from app.models import ApiClient, AuditEvent
from app.privacy.pseudonym import pseudonym, pseudonym_key
from tests.factories import idem, screening_body
from tests.history_records import bundle, history_record
from tests.kit.pseudonymised import DIED_AT, seed
from tests.kit.walk import (
    LIST_FILTERS,
    PATH_VALUES,
    REFUSED,
    SEEDED_YEAR,
    WEBHOOK_PREFIX,
    _body_text,
    _decoded_cursors,
    _leaks,
    _variants,
)


def _scopes(operation: dict[str, Any]) -> set[str]:
    return {scope for item in operation.get("security", []) for scope in item.get("ApiKey", [])}


async def test_no_get_route_shows_a_pseudonymised_client_a_patient_identifier(
    app_factory: Any, make_api: Any
) -> None:
    app, http = await app_factory(webhook_allowed_urls=[WEBHOOK_PREFIX])
    full = await make_api(Scope.admin, client=http)
    seeded = await seed(full)
    commissioner = await make_api(client=http, pseudonymised=True)
    values = dict(seeded.ids)

    endpoint = await commissioner.post(
        "/v1/webhook-endpoints", json={"url": f"{WEBHOOK_PREFIX}icb"}, headers=idem()
    )
    assert endpoint.status_code == 201, endpoint.text
    values["endpoint_id"] = endpoint.json()["id"]
    test = await commissioner.post(f"/v1/webhook-endpoints/{values['endpoint_id']}/test")
    assert test.status_code == 202, test.text
    values["delivery_id"] = test.json()["id"]
    values["client_id"] = str(commissioner.client_id)
    imported = await full.post(
        "/v1/history/imports",
        content=bundle([history_record(datetime(2019, 2, 13, 4, 17, tzinfo=UTC))]),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert imported.status_code == 202, imported.text
    values["import_id"] = imported.json()["id"]
    organisations = await full.get("/v1/organisations", params={"limit": 1})
    assert organisations.status_code == 200, organisations.text
    values["organisation_id"] = organisations.json()["items"][0]["id"]

    # The full client sees the identifiers (so the walk below proves something).
    death = (await full.get(f"/v1/deaths/{seeded.ids['death_id']}")).text
    assert seeded.nhs_number in death and seeded.family_name in death and DIED_AT[:10] in death

    spec = app.openapi()
    called: list[str] = []
    for path, operations in spec["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        url = path
        for name in re.findall(r"\{([^}]+)\}", path):
            if name not in PATH_VALUES:
                pytest.fail(
                    f"{path}: no value for path parameter {{{name}}}; add it to PATH_VALUES"
                )
            url = url.replace(f"{{{name}}}", values[PATH_VALUES[name]])
        required = [
            p["name"]
            for p in operation.get("parameters", [])
            if p.get("required") and p["in"] == "query"
        ]
        template, expected = LIST_FILTERS.get(path, ({}, None))
        filters = {name: value.format(**values) for name, value in template.items()}
        takes = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if "period" in takes:
            # The financial year of the seeded death, so each report counts the patient.
            filters["period"] = SEEDED_YEAR
        if missing := [name for name in required if name not in filters]:
            pytest.fail(f"{path}: required query parameters {missing}; add them to LIST_FILTERS")
        for variant in _variants(spec, operation):
            response = await commissioner.get(url, params={**filters, **variant})
            label = f"GET {url} {variant or ''}".strip()
            scopes = _scopes(operation)
            if path in REFUSED:
                assert response.status_code == REFUSED[path], f"{label}: {response.status_code}"
            elif scopes and not scopes <= {scope.value for scope in PSEUDONYMISED_SCOPES}:
                assert response.status_code == 403, f"{label}: {response.status_code}"
            else:
                assert response.status_code == 200, f"{label}: {response.text[:500]}"
            leaks = _leaks(_body_text(response) + _decoded_cursors(response), seeded.needles)
            assert not leaks, f"{label} shows {leaks}"
            if expected is not None and variant.get("format", "json") == "json":
                # The seeded patient is really in the answer, not an empty page.
                assert values[expected] in response.text, label
            called.append(path)

    assert "/v1/deaths/{death_id}" in called and "/v1/action-plans/{plan_id}/export" in called


async def test_a_pseudonymised_death_shows_what_a_commissioner_needs(api, make_api) -> None:
    seeded = await seed(api)
    commissioner = await make_api(pseudonymised=True)
    death_id = seeded.ids["death_id"]
    page = (await commissioner.get(f"/v1/deaths/{death_id}")).json()
    assert page["pseudonym"].startswith("P-") and len(page["pseudonym"]) == 28
    assert page["age_band"] == "80-89"  # 87 at death
    assert page["month_of_death"] == "2019-02" and page["admitted_month"] == "2019-02"
    assert page["postcode_district"] == "YO31"
    assert page["learning_disability"] is True and page["sex"] == "female"
    for hidden in ("nhs_number", "given_name", "family_name", "date_of_birth", "postcode",
                   "died_at", "died_on", "local_patient_id", "source_reference", "ward",
                   "consultant", "admitted_at"):  # fmt: skip
        assert hidden not in page
    screening = page["screening"]
    assert screening["bereaved_concern_raised"] is True
    assert screening["staff_concern_raised"] is True
    assert screening["patient_safety_concern_raised"] is False
    assert screening["screened_month"] == "2019-02" and "cause_of_death" not in screening
    assert {r["route"] for r in page["referrals"]} >= {"sjr", "leder"}
    assert all(
        "status_reason" not in r and "external_reference" not in r for r in page["referrals"]
    )
    sjr = next(r for r in page["reviews"] if r["review"]["instrument"] == "sjr")["review"]
    assert sjr["avoidability"] == 5 and sjr["avoidability_label"]
    assert [p["phase"] for p in sjr["phases"]] == ["admission_initial", "overall"]
    assert all(set(p) == {"phase", "rating", "rating_label"} for p in sjr["phases"])
    assert sjr["problems_in_care"] == [
        {"type": "monitoring", "phase": "admission_initial", "harm": "probably"}
    ]
    assert "summary" not in sjr
    leder = next(r for r in page["reviews"] if r["review"]["instrument"] == "leder")["review"]
    assert set(leder) == {"instrument", "notified_at", "status"}

    finding = (await commissioner.get(f"/v1/findings/{seeded.ids['finding_id']}")).json()
    assert finding["month_of_death"] == "2019-02" and "description" not in finding
    assert finding["theme"]["id"] == seeded.ids["theme_id"]


async def test_the_pseudonym_is_stable_and_keyed(api, make_api, app_factory, database) -> None:
    seeded = await seed(api)
    commissioner = await make_api(pseudonymised=True)
    death_id = seeded.ids["death_id"]
    detail = (await commissioner.get(f"/v1/deaths/{death_id}")).json()["pseudonym"]
    again = (await commissioner.get(f"/v1/deaths/{death_id}")).json()["pseudonym"]
    listed = (
        await commissioner.get(
            "/v1/deaths", params={"case_reference": seeded.ids["case_reference"]}
        )
    ).json()["items"]
    other = await make_api(Scope.deaths_read, pseudonymised=True)
    by_other = (await other.get(f"/v1/deaths/{death_id}")).json()["pseudonym"]
    assert detail == again == listed[0]["pseudonym"] == by_other
    async with database.transaction() as session:
        key = await pseudonym_key(session)
    assert detail == pseudonym(key, seeded.nhs_number, uuid.UUID(death_id))

    # Another deployment (another key) gives the same patient another pseudonym.
    _, http = await app_factory(pseudonym_key="k" * 40)
    elsewhere = await make_api(Scope.deaths_read, client=http, pseudonymised=True)
    moved = (await elsewhere.get(f"/v1/deaths/{death_id}")).json()["pseudonym"]
    assert moved.startswith("P-") and moved != detail
    assert moved == pseudonym(b"k" * 40, seeded.nhs_number, uuid.UUID(death_id))


@pytest.mark.parametrize(
    ("path", "params", "pointer"),
    [
        ("/v1/deaths", {"nhs_number": "943 476 5919"}, "query:/nhs_number"),
        ("/v1/deaths", {"source_reference": "ME-1"}, "query:/source_reference"),
        ("/v1/deaths", {"died_from": "2019-02-13"}, "query:/died_from"),
        ("/v1/deaths", {"died_from": "2019-02-01", "died_to": "2019-02-27"}, "query:/died_to"),
        ("/v1/findings", {"died_to": "2019-02-13"}, "query:/died_to"),
    ],
)
async def test_identifying_filters_are_refused(api, make_api, path, params, pointer) -> None:
    commissioner = await make_api(pseudonymised=True)
    refused = await commissioner.get(path, params=params)
    assert refused.status_code == 400, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/identifying-filter")
    assert pointer in [error["pointer"] for error in problem["errors"]]
    # The same filter is fine for a full client.
    assert (await api.get(path, params=params)).status_code == 200


async def test_whole_months_of_death_filter_for_a_commissioner(api, make_api) -> None:
    seeded = await seed(api)
    commissioner = await make_api(pseudonymised=True)
    response = await commissioner.get(
        "/v1/findings",
        params={
            "died_from": "2019-02-01",
            "died_to": "2019-02-28",
            "death_id": seeded.ids["death_id"],
        },
    )
    assert response.status_code == 200, response.text
    found = [item["id"] for item in response.json()["items"]]
    assert found == [seeded.ids["finding_id"]]
    deaths = await commissioner.get(
        "/v1/deaths",
        params={
            "died_from": "2019-02-01",
            "died_to": "2019-02-28",
            "case_reference": seeded.ids["case_reference"],
        },
    )
    assert [d["id"] for d in deaths.json()["items"]] == [seeded.ids["death_id"]]


async def test_views_have_their_own_etags_and_both_answer_304(api, make_api) -> None:
    seeded = await seed(api)
    commissioner = await make_api(pseudonymised=True)
    for path in (
        f"/v1/deaths/{seeded.ids['death_id']}",
        f"/v1/screenings/{seeded.ids['screening_id']}",
        f"/v1/referrals/{seeded.ids['referral_id']}",
        f"/v1/reviews/{seeded.ids['review_id']}",
        f"/v1/findings/{seeded.ids['finding_id']}",
    ):
        full_tag = (await api.get(path)).headers["ETag"]
        pseudo = await commissioner.get(path)
        pseudo_tag = pseudo.headers["ETag"]
        assert pseudo_tag != full_tag, path
        # A tag of the full view never gets the pseudonymised client a 304, nor the reverse.
        crossed = await commissioner.get(path, headers={"If-None-Match": full_tag})
        assert crossed.status_code == 200 and crossed.json() == pseudo.json(), path
        assert (await api.get(path, headers={"If-None-Match": pseudo_tag})).status_code == 200
        same = await commissioner.get(path, headers={"If-None-Match": pseudo_tag})
        assert same.status_code == 304 and same.content == b"", path
        assert same.headers["ETag"] == pseudo_tag


async def test_a_pseudonymised_read_is_audited(api, make_api, database) -> None:
    seeded = await seed(api)
    commissioner = await make_api(pseudonymised=True)
    death_id = uuid.UUID(seeded.ids["death_id"])
    assert (await commissioner.get(f"/v1/deaths/{death_id}")).status_code == 200
    async with database.transaction() as session:
        rows = (
            await session.scalars(
                select(AuditEvent).where(
                    names(AuditEvent.death_ids, death_id),
                    AuditEvent.client_id == commissioner.client_id,
                )
            )
        ).all()
        client = await session.get(ApiClient, commissioner.client_id)
    assert rows and client is not None and client.pseudonymised


@pytest.mark.parametrize("scope", sorted(set(Scope) - PSEUDONYMISED_SCOPES))
async def test_a_pseudonymised_client_cannot_be_given_a_write_scope(database, scope) -> None:
    async with database.transaction() as session:
        with pytest.raises(ValueError, match="pseudonymised client cannot hold"):
            await create_client(session, "ICB sync", [Scope.deaths_read, scope], pseudonymised=True)


async def test_the_guard_refuses_a_write_scope_a_pseudonymised_row_holds(
    make_api, database
) -> None:
    commissioner = await make_api(pseudonymised=True)
    async with database.transaction() as session:
        await session.execute(
            update(ApiClient)
            .where(ApiClient.id == commissioner.client_id)
            .values(scopes=["admin", "screenings:write", "deaths:read"])
        )
    posted = await commissioner.post("/v1/screenings", json=screening_body(), headers=idem())
    assert posted.status_code == 403
    assert "pseudonymised" in posted.json()["detail"]
    # admin implies nothing for it: only the read scope it holds works.
    assert (await commissioner.get("/v1/deaths", params={"limit": 1})).status_code == 200
    assert (await commissioner.get("/v1/referrals", params={"limit": 1})).status_code == 403


def test_the_command_line_creates_a_pseudonymised_client(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main
    from app.config import get_settings

    monkeypatch.setenv("LFD_DATABASE_URL", database_url)
    get_settings.cache_clear()
    assert main(["clients", "create", "--name", "ICB", "--scope", "deaths:read",
                 "--pseudonymised", "--json"]) == 0  # fmt: skip
    assert '"pseudonymised": true' in capsys.readouterr().out
    with pytest.raises(SystemExit, match="cannot hold screenings:write"):
        main(["clients", "create", "--name", "ICB", "--scope", "screenings:write",
              "--pseudonymised"])  # fmt: skip


@pytest.mark.parametrize(
    ("path", "params", "pointers"),
    [
        (
            "/v1/reports/care-quality",
            {"start": "2019-02-13", "end": "2019-02-13"},
            ["start", "end"],
        ),
        ("/v1/reports/timeliness", {"start": "2019-02-01", "end": "2019-02-27"}, ["end"]),
        ("/v1/reports/themes", {"start": "2019-02-02", "end": "2019-03-31"}, ["start"]),
        (
            "/v1/reports/themes",
            {"period": "2018-19", "compare_start": "2019-02-13", "compare_end": "2019-02-28"},
            ["compare_start"],
        ),
    ],
)
async def test_a_commissioner_reports_by_whole_months(
    api, make_api, path, params, pointers
) -> None:
    """A report over days inside a month would date a death by the day it first counts in:
    a pseudonymised client's ranges are whole months, as its list filters are."""
    commissioner = await make_api(pseudonymised=True)
    refused = await commissioner.get(path, params=params)
    assert refused.status_code == 400, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/identifying-filter")
    assert [error["pointer"] for error in problem["errors"]] == [
        f"query:/{name}" for name in pointers
    ]
    assert (await api.get(path, params=params)).status_code == 200
    whole_months = (
        {"period": "2018-19", "compare_start": "2019-02-01", "compare_end": "2019-02-28"}
        if "compare_start" in params
        else {"start": "2019-02-01", "end": "2019-02-28"}
    )
    whole = await commissioner.get(path, params=whole_months)
    assert whole.status_code == 200, whole.text


def _decoded(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


async def test_list_cursors_carry_no_date_of_death(api, make_api) -> None:
    """A keyset cursor names the last row by id: decoding it gives no date, and a forged one
    (a made-up date) is refused rather than used to bisect a death's date."""
    first, second = await seed(api), await seed(api)
    commissioner = await make_api(pseudonymised=True)
    february = {"died_from": "2019-02-01", "died_to": "2019-02-28", "limit": "1"}
    for path in ("/v1/deaths", "/v1/findings"):
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(50):
            params = february | ({"cursor": cursor} if cursor else {})
            page = await commissioner.get(path, params=params)
            assert page.status_code == 200, page.text
            seen += [item["id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
            text = _decoded(cursor)
            assert "2019" not in text and ":" not in text.split(",", 1)[-1], (path, text)
        wanted = "death_id" if path == "/v1/deaths" else "finding_id"
        assert {first.ids[wanted], second.ids[wanted]} <= set(seen) or len(seen) == 50
        assert len(seen) == len(set(seen))
        forged = base64.urlsafe_b64encode(
            json.dumps(["2019-02-10T00:00:00+00:00", str(uuid.uuid4())]).encode()
        ).decode()
        refused = await commissioner.get(path, params=february | {"cursor": forged})
        assert refused.status_code == 400, refused.text
        gone = base64.urlsafe_b64encode(json.dumps(["r1", str(uuid.uuid4())]).encode()).decode()
        assert (await commissioner.get(path, params=february | {"cursor": gone})).status_code == 400


async def test_a_pseudonymised_finding_tag_hides_the_day_of_death(api, make_api) -> None:
    """The finding's tag digests what the reader is shown: for a commissioner the month of
    death, so moving the death within its month changes the full tag and not theirs."""
    seeded = await seed(api)
    commissioner = await make_api(pseudonymised=True)
    path = f"/v1/findings/{seeded.ids['finding_id']}"
    full_before = (await api.get(path)).headers["ETag"]
    pseudo_before = (await commissioner.get(path)).headers["ETag"]

    death_path = f"/v1/deaths/{seeded.ids['death_id']}"
    tag = (await api.get(death_path)).headers["ETag"]
    moved = await api.patch(
        death_path, json={"died_at": "2019-02-20T04:17:00+00:00"}, headers={"If-Match": tag}
    )
    assert moved.status_code == 200, moved.text
    assert (await api.get(path)).headers["ETag"] != full_before
    assert (await commissioner.get(path)).headers["ETag"] == pseudo_before
    still = await commissioner.get(path, headers={"If-None-Match": pseudo_before})
    assert still.status_code == 304
