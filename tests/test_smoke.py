from __future__ import annotations

from tests.factories import idem, screening_body


async def test_a_screening_creates_a_death_and_its_referrals(api) -> None:
    body = screening_body(death={"learning_disability": True}, screening={"death_expected": False})
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 201, response.text
    recorded = response.json()
    routes = {r["route"]: r["reasons"] for r in recorded["referrals"]}
    assert routes == {
        "sjr": ["learning_disability", "unexpected_death"],
        "leder": ["learning_disability"],
    }
    assert recorded["death"]["status"] == "under_review"
    death = await api.get(f"/v1/deaths/{recorded['death_id']}")
    assert death.status_code == 200
    assert death.headers["etag"]
    assert death.json()["screening"]["id"] == recorded["id"]
    assert len(death.json()["referrals"]) == 2


async def test_health_needs_no_credential(http) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
