"""The retrospective judgement of the ME's referral decision and the ME office's report
(issue 15): the judgement recorded, replaced, evented, pseudonymised; the report's targets,
coroner reasons, registrar rejections, bereaved contacts and judgements, in every format."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.auth.scopes import Scope
from tests.factories import idem, screening_body
from tests.kit.feed import drain_until, head
from tests.kit.notifications import notification_body

# A month of its own (deaths from other tests land near today), well in the past.
DIED = datetime(2024, 2, 10, 9, 0, tzinfo=UTC)
PERIOD = {"period": "2024-02"}


def at(hours: float) -> str:
    return (DIED + timedelta(hours=hours)).isoformat()


async def screened(api, site: str, **screening: Any) -> dict[str, Any]:
    body = screening_body(died_at=DIED, death={"site": site}, screening=screening)
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_referral_decision_is_judged_replaced_and_announced(api, make_api):
    recorded = await screened(api, "Judged site")
    cursor = await head(api)
    url = f"/v1/screenings/{recorded['id']}/referral-judgement"
    assert (await api.get(url)).status_code == 404
    first = await api.put(
        url,
        json={"judgement": "possibly_missed", "criterion": "unexpected_death", "reason": "Late"},
        headers={"X-On-Behalf-Of": "Dr Governance"},
    )
    assert first.status_code == 201, first.text
    assert first.json()["judged_by"] == "Dr Governance"
    tag = first.headers["ETag"]
    second = await api.put(
        url,
        json={"judgement": "should_have_been_referred", "reason": "SJR"},
        headers={"If-Match": tag},
    )
    assert second.status_code == 200 and second.json()["version"] == 2
    read = (await api.get(url)).json()
    assert read["judgement"] == "should_have_been_referred" and read["criterion"] is None

    def mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["resource"]["id"] == recorded["id"]]

    seen, _ = await drain_until(
        api, cursor, lambda events: len(mine(events)) >= 2, types="screening.referral_judged"
    )
    assert len(mine(seen)) == 2
    commissioner = await make_api(pseudonymised=True)
    hidden = (await commissioner.get(url)).json()
    assert "reason" not in hidden and "judged_by" not in hidden
    bad = await api.put(
        url, json={"judgement": "dubious", "reason": "x"}, headers={"If-Match": tag}
    )
    assert bad.status_code == 422
    reader = await make_api(Scope.deaths_read)
    refused = await reader.put(url, json={"judgement": "appropriate", "reason": "Fine"})
    assert refused.status_code == 403


async def test_the_me_office_report(api):
    site = f"ME site {uuid.uuid4().hex[:6]}"
    notified = notification_body(site=site, died_at=DIED.isoformat())
    notified["date_of_birth"] = "1944-01-01"
    notified["admitted_at"] = (DIED - timedelta(days=2)).isoformat()
    assert (await api.post("/v1/death-notifications", json=notified)).status_code == 201
    on_time = await screened(
        api,
        site,
        screened_at=at(20),
        notes_received_at=at(2),
        scrutiny_completed_at=at(20),
        mccd_issued_at=at(30),
        bereaved_contacted=True,
        bereaved_contacts=[
            {"contacted_at": at(10), "contact": "Wife", "method": "phone", "concerns": "Pain"},
            {"contacted_at": at(12), "contact": "Wife", "method": "letter", "compliments": "Kind"},
        ],
        registrar_rejections=[{"rejected_at": at(40), "reason": "Wording", "reissued_at": at(41)}],
    )
    await screened(
        api,
        site,
        screened_at=at(60),
        notes_received_at=at(2),
        scrutiny_completed_at=at(60),
        mccd_issued_at=at(24 * 5),
        coroner_notified=True,
        coroner_reason="cause_unknown",
    )
    await api.put(
        f"/v1/screenings/{on_time['id']}/referral-judgement",
        json={"judgement": "appropriate", "criterion": "bereaved_concern", "reason": "Right"},
    )
    response = await api.get("/v1/reports/me-office", params={**PERIOD, "site": site})
    assert response.status_code == 200, response.text
    tables = {t["key"]: t["rows"] for t in response.json()["tables"]}
    targets = tables["targets"][0]
    assert (targets["deaths"], targets["notified"], targets["screened"]) == (3, 1, 2)
    assert targets["awaiting_screening"] == 1
    assert (targets["scrutiny_within_24_hours"], targets["notes_to_scrutiny_measured"]) == (1, 2)
    assert targets["scrutiny_within_24_hours_percent"] == 50.0
    assert (targets["mccd_within_target"], targets["mccd_issued"]) == (1, 2)
    assert tables["coroner_referrals"] == [{"reason": "cause_unknown", "deaths": 1}]
    assert tables["registrar_rejections"][0]["reissued"] == 1
    contacts = tables["bereaved_contacts"][0]
    assert (contacts["contacts"], contacts["contacts_with_concerns"]) == (2, 1)
    assert {r["method"] for r in tables["bereaved_contacts_by_method"]} == {"phone", "letter"}
    [judged] = tables["referral_judgements"]
    assert (judged["criterion"], judged["appropriate"]) == ("bereaved_concern", 1)
    for output in ("csv", "xlsx", "html"):
        rendered = await api.get(
            "/v1/reports/me-office", params={**PERIOD, "site": site, "format": output}
        )
        assert rendered.status_code == 200, output
    refused = await api.get("/v1/reports/me-office", params={**PERIOD, "route": "sjr"})
    assert refused.status_code == 400


async def test_a_judgement_is_replaced_only_with_its_etag_and_its_versions_are_kept(api, make_api):
    recorded = await screened(api, "Versioned site")
    url = f"/v1/screenings/{recorded['id']}/referral-judgement"
    assert (await api.get(f"{url}/versions")).status_code == 404
    first_body = {"judgement": "possibly_missed", "criterion": "unexpected_death", "reason": "Late"}
    # If-Match on a judgement that does not exist names nothing: 412, nothing recorded.
    early = await api.put(url, json=first_body, headers={"If-Match": '"abc"'})
    assert early.status_code == 412, early.text
    assert (await api.get(url)).status_code == 404
    first = await api.put(url, json=first_body, headers={"X-On-Behalf-Of": "Dr First"})
    assert first.status_code == 201, first.text
    tag = first.headers["ETag"]
    read = await api.get(url)
    assert read.headers["ETag"] == tag
    assert (await api.get(url, headers={"If-None-Match": tag})).status_code == 304
    assert (await api.get(f"{url}/versions")).json() == []
    second_body = {"judgement": "should_have_been_referred", "reason": "An SJR was due"}
    missing = await api.put(url, json=second_body)
    assert missing.status_code == 428, missing.text
    second = await api.put(
        url, json=second_body, headers={"If-Match": tag, "X-On-Behalf-Of": "Dr Second"}
    )
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 2 and second.headers["ETag"] != tag
    stale = await api.put(url, json=first_body, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == second.headers["ETag"]
    # The same judgement by the same person again (a retried PUT): no new version.
    retried = await api.put(
        url,
        json=second_body,
        headers={"If-Match": second.headers["ETag"], "X-On-Behalf-Of": "Dr Second"},
    )
    assert retried.status_code == 200 and retried.json()["version"] == 2
    versions = await api.get(f"{url}/versions")
    assert versions.status_code == 200, versions.text
    [kept] = versions.json()
    assert kept["version"] == 1
    assert kept["judgement"] == "possibly_missed" and kept["criterion"] == "unexpected_death"
    assert kept["reason"] == "Late" and kept["judged_by"] == "Dr First"
    assert kept["judged_at"] == first.json()["judged_at"]
    assert (await api.get(url)).json()["judged_by"] == "Dr Second"
    commissioner = await make_api(pseudonymised=True)
    hidden = await commissioner.get(f"{url}/versions")
    assert hidden.status_code == 200
    assert hidden.json() == [
        {"version": 1, "judgement": "possibly_missed", "criterion": "unexpected_death"}
    ]
