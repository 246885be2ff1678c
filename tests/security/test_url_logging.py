"""An NHS number in the URL (issue 11, defect 11): `GET /v1/deaths/9434765919` and
`/fhir/r4/Patient/9434765919` wrote the number to the access log and into the problem's
`instance`. The access log now names the route template, and no answer repeats a path segment
that did not parse as an id (nor a character of it)."""

from __future__ import annotations

import logging
import uuid

import pytest

from app.auth.scopes import Scope
from app.logging import JsonFormatter, PlainFormatter
from tests.conftest import Api, MakeApi

NUMBER = "9434765919"


def rendered(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the service logged, as production's formatters print it (the test's own
    HTTP client's records left out)."""
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    return "\n".join(
        [JsonFormatter().format(record) for record in records]
        + [PlainFormatter().format(record) for record in records]
    )


def access_routes(caplog: pytest.LogCaptureFixture) -> list[object]:
    return [getattr(r, "route", None) for r in caplog.records if r.name == "app.access"]


@pytest.mark.parametrize(
    ("path", "route"),
    [
        (f"/v1/deaths/{NUMBER}", "/v1/deaths/{death_id}"),
        (f"/v1/deaths/{NUMBER}zz", "/v1/deaths/{death_id}"),
        (f"/v1/screenings/{NUMBER}/versions", "/v1/screenings/{screening_id}/versions"),
        (f"/fhir/r4/Patient/{NUMBER}", "/fhir/r4/Patient/{patient_id}"),
        (f"/fhir/r4/Task/{NUMBER}", "/fhir/r4/Task/{task_id}"),
        (f"/v1/no-such-thing/{NUMBER}", None),
    ],
)
async def test_a_number_in_the_path_is_neither_logged_nor_echoed(
    api: Api, caplog: pytest.LogCaptureFixture, path: str, route: str | None
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await api.get(path)
    assert response.status_code in {404, 422}, response.text
    assert NUMBER not in response.text
    assert "found `z`" not in response.text
    assert NUMBER not in rendered(caplog)
    assert access_routes(caplog) == [route]
    if response.headers["content-type"].startswith("application/problem+json"):
        # The route template stands where the segment was; an unknown path has no instance.
        assert response.json().get("instance") == (route if route else None)


async def test_an_id_that_parses_is_shown_canonically_and_logged_as_the_template(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    missing = uuid.uuid4()
    response = await api.get(f"/v1/deaths/{missing.hex.upper()}")
    assert response.status_code == 404
    assert response.json()["instance"] == f"/v1/deaths/{missing}"
    assert access_routes(caplog) == ["/v1/deaths/{death_id}"]
    assert missing.hex.upper() not in rendered(caplog)


async def test_refusals_before_routing_do_not_echo_the_path(
    make_api: MakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    writer = await make_api(Scope.deaths_write)
    wrong_type = await writer.patch(
        f"/v1/deaths/{NUMBER}", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    nul = await writer.get(f"/v1/deaths/{NUMBER}", params={"status": "\x00"})
    assert nul.status_code == 422
    for response in (wrong_type, nul):
        assert NUMBER not in response.text
        assert "instance" not in response.json()
    assert NUMBER not in rendered(caplog)
    assert access_routes(caplog) == [None, None]
