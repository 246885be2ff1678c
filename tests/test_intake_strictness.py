"""Values a sender might hope are guessed are refused instead: booleans spelt as strings or
numbers, and dates of death before the service's era (typing slips such as a year of 0202)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.factories import idem, screening_body


@pytest.mark.parametrize("value", ["yes", "true", "1", 1, 0])
async def test_booleans_must_be_json_booleans(api, value) -> None:
    body = screening_body(screening={"records_reviewed": value})
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/screening/records_reviewed"]


async def test_a_flag_on_the_death_is_strict_too(api) -> None:
    body = screening_body(death={"learning_disability": "true"})
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/death/learning_disability"


async def test_a_death_before_2000_is_refused_as_a_slip(api) -> None:
    died = datetime(1999, 12, 31, 12, 0, tzinfo=UTC)
    body = screening_body(died_at=died)
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {"/death/died_at"}
    found = await api.get(
        "/v1/deaths",
        params={
            "source_system": "test-me-office",
            "source_reference": body["death"]["source_reference"],
        },
    )
    assert found.json()["items"] == []


async def test_a_death_on_the_first_day_of_2000_is_accepted(api) -> None:
    died = datetime(2000, 1, 1, 12, 0, tzinfo=UTC)
    response = await api.post("/v1/screenings", json=screening_body(died_at=died), headers=idem())
    assert response.status_code == 201, response.text
