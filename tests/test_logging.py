"""The logs of a whole screening flow carry request ids and no patient data.

Every record is captured at DEBUG from the root logger and rendered by the service's own
formatters (JSON and plain), and a live JSON handler records what production would print,
request id included. The test's own HTTP client logs (httpx, httpcore) are left out: they are
the caller's logs, not the service's."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.auth.scopes import Scope
from app.kit.id_lists import names
from app.logging import JsonFormatter, PlainFormatter
from app.models import AuditEvent
from tests.conftest import Api
from tests.factories import idem, screening_body
from tests.factories import test_nhs_number as nhs_number

CLIENT_LOGGERS = ("httpx", "httpcore")
GENERATED_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def _letters(count: int) -> str:
    return "".join(random.choice(string.ascii_lowercase) for _ in range(count))


class _NotClient(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(CLIENT_LOGGERS)


@dataclass
class Captured:
    caplog: pytest.LogCaptureFixture
    live: io.StringIO

    def records(self) -> list[logging.LogRecord]:
        return [r for r in self.caplog.records if not r.name.startswith(CLIENT_LOGGERS)]

    def text(self) -> str:
        """Everything the service logged, as production's formatters render it."""
        json_lines = [JsonFormatter().format(record) for record in self.records()]
        plain_lines = [PlainFormatter().format(record) for record in self.records()]
        return "\n".join([self.live.getvalue(), *json_lines, *plain_lines])

    def access_lines(self) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.live.getvalue().splitlines() if line]
        return [line for line in lines if line["logger"] == "app.access"]


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[Captured]:
    caplog.set_level(logging.DEBUG)
    live = io.StringIO()
    handler = logging.StreamHandler(live)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    handler.addFilter(_NotClient())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield Captured(caplog, live)
    finally:
        root.removeHandler(handler)


def _postcode() -> str:
    digits = random.randrange(10, 99)
    return f"ZX{digits} {random.randrange(10)}{_letters(2).upper()}"


@dataclass
class Identity:
    given_name: str
    family_name: str
    nhs_number: str
    postcode: str
    local_patient_id: str
    concern: str

    def forms(self) -> list[str]:
        """Every spelling of the identity a log could carry."""
        number = self.nhs_number
        return [
            self.given_name,
            self.family_name,
            number,
            f"{number[:3]} {number[3:6]} {number[6:]}",
            f"{number[:3]}-{number[3:6]}-{number[6:]}",
            self.postcode,
            self.postcode.replace(" ", ""),
            self.local_patient_id,
            self.concern,
            self.concern.split()[-1],  # the concern's distinctive word on its own
        ]


def identity() -> Identity:
    return Identity(
        given_name="Zephyrine" + _letters(6),
        family_name="Ottershaw" + _letters(6),
        nhs_number=nhs_number(),
        postcode=_postcode(),
        local_patient_id="LOC" + uuid.uuid4().hex[:10].upper(),
        concern="The family said the call bell went unanswered " + _letters(12),
    )


def body_for(person: Identity) -> dict[str, Any]:
    number = person.nhs_number
    return screening_body(
        death={
            "given_name": person.given_name,
            "family_name": person.family_name,
            "nhs_number": f"{number[:3]} {number[3:6]} {number[6:]}",
            "postcode": person.postcode,
            "local_patient_id": person.local_patient_id,
        },
        screening={"bereaved_concerns": person.concern},
    )


def assert_absent(text: str, secrets: list[str]) -> None:
    lowered = text.lower()
    found = [secret for secret in secrets if secret.lower() in lowered]
    assert found == [], f"patient data in the logs: {found}"


async def test_a_full_screening_flow_logs_no_patient_data(captured, make_api) -> None:
    api: Api = await make_api(Scope.screenings_write, Scope.deaths_read, Scope.deaths_write)
    person = identity()
    body = body_for(person)
    key = idem()
    responses: list[httpx.Response] = []

    async def send(method: str, url: str, expected: int, **kwargs: Any) -> httpx.Response:
        response = await api.request(method, url, **kwargs)
        assert response.status_code == expected, (method, url, response.text)
        responses.append(response)
        return response

    created = await send("POST", "/v1/screenings", 201, json=body, headers=key)
    death_id, screening_id = created.json()["death_id"], created.json()["id"]
    replayed = await send("POST", "/v1/screenings", 201, json=body, headers=key)
    assert replayed.headers["idempotent-replayed"] == "true"
    await send("POST", "/v1/screenings", 409, json=body, headers=idem())
    bad = {**body, "death": {**body["death"], "middle_name": person.given_name + "ette"}}
    await send("POST", "/v1/screenings", 422, json=bad, headers=idem())
    spaced = f"{person.nhs_number[:3]} {person.nhs_number[3:6]} {person.nhs_number[6:]}"
    found = await send("GET", "/v1/deaths", 200, params={"nhs_number": spaced})
    assert [item["id"] for item in found.json()["items"]] == [death_id]
    await send("GET", "/v1/deaths", 422, params={"nhs_number": person.nhs_number[:9] + "x"})
    death = await send("GET", f"/v1/deaths/{death_id}", 200)
    renamed = "Penhallow" + _letters(6)
    await send(
        "PATCH",
        f"/v1/deaths/{death_id}",
        200,
        json={"family_name": renamed, "given_name": person.given_name + "a"},
        headers={"If-Match": death.headers["etag"]},
    )
    screening = await send("GET", f"/v1/screenings/{screening_id}", 200)
    amended_concern = "Staff reported the fluids were missed " + _letters(12)
    await send(
        "PUT",
        f"/v1/screenings/{screening_id}",
        200,
        json={**body["screening"], "staff_concerns": amended_concern},
        headers={"If-Match": screening.headers["etag"]},
    )
    anonymous = await api.http.get(f"/v1/deaths/{death_id}")
    assert anonymous.status_code == 401
    responses.append(anonymous)

    # The flow really ran through the logging: one access line per request, in order, each
    # with the request id that the response carried.
    access = captured.access_lines()
    assert [line["request_id"] for line in access] == [
        response.headers["x-request-id"] for response in responses
    ]
    assert [line["status"] for line in access] == [r.status_code for r in responses]
    assert all(line["route"].startswith(("/v1/screenings", "/v1/deaths")) for line in access)
    assert {line["client_id"] for line in access[:-1]} == {str(api.client_id)}

    secrets = [*person.forms(), renamed, amended_concern, amended_concern.split()[-1], api.key]
    assert_absent(captured.text(), secrets)


async def test_a_valid_client_request_id_is_echoed_and_used(captured, make_api, database) -> None:
    api: Api = await make_api(Scope.screenings_write, Scope.deaths_read)
    created = await api.post("/v1/screenings", json=screening_body(), headers=idem())
    assert created.status_code == 201
    death_id = created.json()["death_id"]

    request_id = f"trace-{uuid.uuid4().hex[:16]}.edge_7"
    response = await api.get(f"/v1/deaths/{death_id}", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
    assert captured.access_lines()[-1]["request_id"] == request_id
    async with database.transaction() as session:
        audit_ids = (
            await session.scalars(
                select(AuditEvent.request_id).where(
                    names(AuditEvent.death_ids, uuid.UUID(death_id)),
                    AuditEvent.action == "death.read",
                )
            )
        ).all()
    assert list(audit_ids) == [request_id]


@pytest.mark.parametrize(
    "sent",
    ["has spaces in it", "x" * 200, "semi;colon", "", 'quote"d'],
    ids=["spaces", "200 characters", "semicolon", "empty", "quote"],
)
async def test_an_invalid_client_request_id_is_replaced(captured, make_api, sent) -> None:
    api: Api = await make_api(Scope.deaths_read)
    response = await api.get("/v1/deaths", params={"limit": 1}, headers={"X-Request-ID": sent})
    assert response.status_code == 200
    replaced = response.headers["x-request-id"]
    assert replaced != sent
    assert GENERATED_REQUEST_ID.match(replaced)
    assert captured.access_lines()[-1]["request_id"] == replaced
    if sent:
        assert sent not in captured.live.getvalue()


async def test_every_response_gets_a_fresh_request_id(make_api) -> None:
    api: Api = await make_api(Scope.deaths_read)
    ids = {
        (await api.get("/v1/deaths", params={"limit": 1})).headers["x-request-id"] for _ in range(5)
    }
    assert len(ids) == 5
    assert all(GENERATED_REQUEST_ID.match(value) for value in ids)
