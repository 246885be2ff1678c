"""Two programmes' themes compared through a mapping (issue 17), the earlier one a past audit
entered after the fact (its deaths, SJRs and findings imported as history, the programme
defined over them), the later one run live, each with a theme list of its own.

    earlier (20 Jun - 21 Jul 2017)          later (March 2025)
    vocabulary: DNAR orders, Early          vocabulary: DNACPR decisions, Recognition of
    Warning Score, Falls, Nutrition         deterioration, Sepsis, Hydration
    H1: DNAR orders, Early Warning Score    L1: DNACPR decisions
    H2: DNAR orders                         L2: Sepsis
    H3: Falls                               L3: Sepsis, Hydration
    H4: (none)

    mappings: DNAR orders = DNACPR decisions; Early Warning Score = Recognition of
    deterioration; Nutrition = Hydration

    both          DNAR orders / DNACPR decisions      2 findings, 2 deaths / 1, 1
    only earlier  Early Warning Score / Recognition   1, 1 / 0, 0
    only later    Nutrition / Hydration               0, 0 / 1, 1
    unmapped      - / Sepsis                          0, 0 / 2, 2
    unmapped      Falls / -                           1, 1 / 0, 0
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from openpyxl import load_workbook

from app.auth.scopes import Scope
from app.models import Organisation
from tests.factories import idem
from tests.history_records import history_record, run, sjr_referral, utc
from tests.kit.programmes import death, new_trust, sjr_body, table


def _themes(tag: str) -> dict[str, tuple[str, str]]:
    names = {
        "dnar": "DNAR orders",
        "ews": "Early Warning Score",
        "falls": "Falls",
        "nutrition": "Nutrition",
        "dnacpr": "DNACPR decisions",
        "deterioration": "Recognition of deterioration",
        "sepsis": "Sepsis",
        "hydration": "Hydration",
    }
    return {key: (f"{key}_{tag}", f"{name} {tag}") for key, name in names.items()}


def _finding(theme: tuple[str, str], referral: str, number: int) -> dict[str, Any]:
    return {
        "reference": f"F{number}",
        "referral": referral,
        "kind": "problem_in_care",
        "theme": {"code": theme[0], "name": theme[1]},
        "description": "As the 2017 audit found.",
        "recorded_at": "2017-09-01T12:00:00+01:00",
    }


async def _past_audit(team: Any, themes: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    found = {
        1: [themes["dnar"], themes["ews"]],
        2: [themes["dnar"]],
        3: [themes["falls"]],
        4: [],
    }
    records = []
    for number, offset in zip((1, 2, 3, 4), (1, 5, 10, 15), strict=True):
        died = utc(2017, 6, 20, 10) + timedelta(days=offset)
        records.append(
            history_record(
                died,
                referrals=[sjr_referral(died + timedelta(days=2), died + timedelta(days=30))],
                findings=[_finding(theme, "R1", n) for n, theme in enumerate(found[number])],
            )
        )
    # A vocabulary theme the audit never found must exist too (the import creates only those
    # it meets).
    created = await team.post(
        "/v1/themes", json={"code": themes["nutrition"][0], "name": themes["nutrition"][1]}
    )
    assert created.status_code == 201, created.text
    job = await run(team, records)
    assert job["status"] == "completed", job
    return records


async def _post(api: Any, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await api.post(path, json=body, headers=idem())
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _programme(
    team: Any, name: str, start: str, end: str, vocabulary: list[str], **more: Any
) -> str:
    created = await _post(
        team,
        "/v1/programmes",
        {
            "name": name,
            "owner": "Mortality lead",
            "period_start": start,
            "period_end": end,
            "cohort": {"places_of_death": ["inpatient"]},
            "themes": vocabulary,
            **more,
        },
    )
    built = await _post(team, f"/v1/programmes/{created['id']}/cohort", {}, 200)
    assert built["added"] > 0, built
    programme: str = created["id"]
    return programme


async def _live_programme(team: Any, themes: dict[str, tuple[str, str]]) -> str:
    for key in ("dnacpr", "deterioration", "sepsis", "hydration"):
        made = await team.post("/v1/themes", json={"code": themes[key][0], "name": themes[key][1]})
        assert made.status_code == 201, made.text
    deaths = [await death(team, f"2025-03-{day:02d}T10:00") for day in (3, 4, 5)]
    programme = await _programme(
        team,
        "Deaths in March 2025",
        "2025-03-01",
        "2025-03-31",
        [themes[k][0] for k in ("dnacpr", "deterioration", "sepsis", "hydration")],
        link_routine_reviews=False,
    )
    claimed = await team.post(
        "/v1/referrals/claim",
        json={"route": "programme", "programme_id": programme, "count": 5},
    )
    leases = {item["death_id"]: item["lease_id"] for item in claimed.json()["items"]}
    cases = {
        c["death_id"]: c["id"]
        for c in (await team.get(f"/v1/programmes/{programme}/cases")).json()["items"]
    }
    found = [["dnacpr"], ["sepsis"], ["sepsis", "hydration"]]
    for recorded, keys in zip(deaths, found, strict=True):
        death_id = recorded["death"]["id"]
        posted = await _post(
            team,
            f"/v1/programmes/{programme}/cases/{cases[death_id]}/review",
            {"lease_id": leases[death_id], "review": sjr_body(4)},
        )
        for key in keys:
            await _post(
                team,
                "/v1/findings",
                {"death_id": death_id, "review_id": posted["review"]["id"],
                 "kind": "problem_in_care", "theme_code": themes[key][0],
                 "description": "Found."},
            )  # fmt: skip
    return programme


async def test_two_programmes_with_different_theme_lists_compared_through_a_mapping(
    make_api, database
) -> None:
    tag = uuid.uuid4().hex[:8]
    themes = _themes(tag)
    trust = await new_trust(database)
    team = await make_api(organisation_id=trust)
    await _past_audit(team, themes)
    earlier = await _programme(
        team,
        "Deaths of summer 2017",
        "2017-06-20",
        "2017-07-21",
        [themes[k][0] for k in ("dnar", "ews", "falls", "nutrition")],
    )
    # The past audit's SJRs, imported with their own dates, are its reviews.
    summary = (await team.get(f"/v1/programmes/{earlier}")).json()["counts"]
    assert summary == {"in_cohort": 4, "selected": 4, "linked": 4, "reviewed": 4, "excluded": 0}
    # Its answers, entered after the fact, with their own time.
    case = (await team.get(f"/v1/programmes/{earlier}/cases")).json()["items"][0]
    read = await team.get(f"/v1/programmes/{earlier}/cases/{case['id']}")
    late = await team.put(
        f"/v1/programmes/{earlier}/cases/{case['id']}/answers",
        json={"relatives": {"sought": "yes"}, "answered_at": "2017-09-01T12:00:00+01:00"},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert late.status_code == 200, late.text
    recorded_at = datetime.fromisoformat(late.json()["relatives"]["recorded_at"])
    assert recorded_at == datetime(2017, 9, 1, 11, tzinfo=UTC)
    later = await _live_programme(team, themes)

    for one, other in (("dnar", "dnacpr"), ("ews", "deterioration"), ("hydration", "nutrition")):
        mapped = await _post(
            team, "/v1/theme-mappings", {"themes": [themes[one][0], themes[other][0]]}
        )
        assert {t["code"] for t in mapped["themes"]} == {themes[one][0], themes[other][0]}
    again = await team.post(
        "/v1/theme-mappings", json={"themes": [themes["dnacpr"][0], themes["dnar"][0]]}
    )
    assert again.status_code == 200  # the same pair, either way round

    path = f"/v1/reports/programmes/{later}/comparison"
    report = (await team.get(path, params={"other": earlier})).json()
    rows = [
        (r["status"], r["earlier_themes"], r["later_themes"], r["matched_by"],
         r["earlier_findings"], r["earlier_deaths"], r["later_findings"], r["later_deaths"])
        for r in table(report, "themes_compared")
    ]  # fmt: skip
    name = {key: value[1] for key, value in themes.items()}
    assert rows == [
        ("Found in both", name["dnar"], name["dnacpr"], "mapping", 2, 2, 1, 1),
        ("Only in the earlier", name["ews"], name["deterioration"], "mapping", 1, 1, 0, 0),
        ("Only in the later", name["nutrition"], name["hydration"], "mapping", 0, 0, 1, 1),
        ("Unmapped", None, name["sepsis"], None, 0, 0, 2, 2),  # most findings first
        ("Unmapped", name["falls"], None, None, 1, 1, 0, 0),
    ]
    assert [r["role"] for r in table(report, "programmes")] == ["earlier", "later"]
    assert [r["themes_found"] for r in table(report, "programmes")] == [3, 3]

    # The other way round gives the same rows: the earlier is the one whose period starts first.
    reverse = (await team.get(f"/v1/reports/programmes/{earlier}/comparison",
                              params={"other": later})).json()  # fmt: skip
    assert table(reverse, "themes_compared") == table(report, "themes_compared")

    # Mappings are data: removed, DNAR orders and DNACPR decisions no longer match.
    listed = (await team.get("/v1/theme-mappings", params={"theme": themes["dnar"][0]})).json()
    (dnar,) = listed
    assert (await team.request("DELETE", f"/v1/theme-mappings/{dnar['id']}")).status_code == 204
    assert (await team.get(f"/v1/theme-mappings/{dnar['id']}")).status_code == 404
    after = (await team.get(path, params={"other": earlier})).json()
    statuses = {(r["earlier_themes"], r["later_themes"]): r["status"]
                for r in table(after, "themes_compared")}  # fmt: skip
    assert statuses[(name["dnar"], None)] == "Unmapped"
    assert statuses[(None, name["dnacpr"])] == "Unmapped"

    # A commissioner sees the same aggregates; every format renders.
    commissioner = await make_api(Scope.reports_read, pseudonymised=True, organisation_id=trust)
    seen = (await commissioner.get(path, params={"other": earlier})).json()
    assert {**seen, "generated_at": None} == {**after, "generated_at": None}
    csv = await team.get(path, params={"other": earlier, "format": "csv"})
    assert csv.status_code == 200 and "Themes compared" in csv.text
    xlsx = await team.get(path, params={"other": earlier, "format": "xlsx"})
    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames == [
        "The two programmes",
        "Themes compared",
    ]
    html = await team.get(path, params={"other": earlier, "format": "html"})
    assert html.status_code == 200 and name["falls"] in html.text


async def _reviewed_with_finding(team: Any, died: str, theme_code: str) -> None:
    """A death whose routine SJR (which a programme links) records a finding of the theme."""
    recorded = await death(team, died, unexpected=True)
    (referral,) = [r for r in recorded["referrals"] if r["route"] == "sjr"]
    review = await _post(team, f"/v1/referrals/{referral['id']}/review", {"review": sjr_body(4)})
    await _post(
        team,
        "/v1/findings",
        {"death_id": recorded["death"]["id"], "review_id": review["id"],
         "kind": "concern", "theme_code": theme_code, "description": "Found."},
    )  # fmt: skip


async def test_the_comparison_reads_the_programmes_organisations_mappings(
    make_api, database
) -> None:
    """A reader who sees another organisation's theme mappings (a region's commissioner sees
    every member's) gets the comparison the programme's own organisation gets: the mappings
    are the programmes' organisations', not every mapping the reader can see."""
    tag = uuid.uuid4().hex[:8]
    region = await new_trust(database, f"Region {tag}")
    trust_a, trust_b = uuid.uuid4(), uuid.uuid4()
    async with database.transaction() as session:
        for made, name in ((trust_a, "A"), (trust_b, "B")):
            session.add(
                Organisation(
                    id=made, name=f"Trust {name} {tag}", kind="trust", parent_id=region,
                    aliases=[], settings={},
                )
            )  # fmt: skip
    team = await make_api(organisation_id=trust_a)
    other_trust = await make_api(organisation_id=trust_b)
    early, late = f"early_{tag}", f"late_{tag}"
    for code in (early, late):
        assert (await team.post("/v1/themes", json={"code": code, "name": code})).status_code == 201
    await _reviewed_with_finding(team, "2024-03-05T10:00", early)
    await _reviewed_with_finding(team, "2025-03-05T10:00", late)
    earlier = await _programme(team, "Earlier", "2024-03-01", "2024-03-31", [early, late])
    later = await _programme(team, "Later", "2025-03-01", "2025-03-31", [early, late])
    # Trust B, not A, maps the two themes.
    await _post(other_trust, "/v1/theme-mappings", {"themes": [early, late]})

    path = f"/v1/reports/programmes/{later}/comparison"
    own = (await team.get(path, params={"other": earlier})).json()
    assert {(r["status"], r["matched_by"]) for r in table(own, "themes_compared")} == {
        ("Only in the earlier", "same theme"),
        ("Only in the later", "same theme"),
    }
    commissioner = await make_api(pseudonymised=True, organisation_id=region)
    seen = (await commissioner.get(path, params={"other": earlier})).json()
    assert table(seen, "themes_compared") == table(own, "themes_compared")
