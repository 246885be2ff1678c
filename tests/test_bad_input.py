"""Bad input is a 4xx problem+json that points at the field, echoes no patient data, carries no
stack trace, and changes nothing: no death, no event, no audit row, no idempotency claim."""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.auth.scopes import Scope
from app.models import AuditEvent, Death, IdempotencyRecord, OutboxEvent
from tests.conftest import Api, new_client
from tests.factories import idem, screening_body
from tests.factories import test_nhs_number as nhs_number

PROBLEM_JSON = "application/problem+json"
FORBIDDEN_TEXT = ("Traceback", 'File "')


# --- helpers ---------------------------------------------------------------------------------


def _letters(count: int) -> str:
    return "".join(random.choice(string.ascii_lowercase) for _ in range(count))


def _identity(death: Any) -> list[str]:
    if not isinstance(death, dict):
        return []
    values = [death.get("given_name"), death.get("family_name")]
    number = death.get("nhs_number")
    if isinstance(number, str) and len(number) == 10:
        values += [number, f"{number[:3]} {number[3:6]} {number[6:]}"]
    return [value for value in values if isinstance(value, str) and value]


@dataclass
class Patient:
    """A body with distinctive patient values, so that an echo of any of them is detectable."""

    body: dict[str, Any]
    died: datetime
    source_reference: str = field(init=False)
    sent: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.source_reference = str(self.body["death"]["source_reference"])
        self.sent = _identity(self.body["death"])

    @property
    def secrets(self) -> list[str]:
        """The identity as created, and as it stands after a test changed it."""
        return sorted(set(self.sent) | set(_identity(self.body.get("death"))))


def patient() -> Patient:
    died = datetime.now(UTC) - timedelta(days=2)
    body = screening_body(
        died_at=died,
        death={
            "given_name": "Quill" + _letters(8),
            "family_name": "Marchbank" + _letters(8),
            "nhs_number": nhs_number(),
        },
    )
    return Patient(body, died)


async def footprint(database, client_id: uuid.UUID, source_reference: str) -> tuple[int, ...]:
    """What the service has written for this client and this sender's reference."""
    async with database.transaction() as session:
        counts = []
        for query in (
            select(func.count())
            .select_from(Death)
            .where(Death.source_reference == source_reference),
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.client_id == client_id),
            select(func.count()).select_from(AuditEvent).where(AuditEvent.client_id == client_id),
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(IdempotencyRecord.client_id == client_id),
        ):
            counts.append(int(await session.scalar(query) or 0))
    return tuple(counts)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert isinstance(body, dict)
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    for text in FORBIDDEN_TEXT:
        assert text not in response.text
    return body


def pointers(body: dict[str, Any]) -> list[str]:
    return [error["pointer"] for error in body.get("errors", [])]


async def post_and_check(
    api: Api,
    database,
    subject: Patient,
    status: int,
    *,
    pointer: str | None = None,
    headers: dict[str, str] | None = None,
    **request: Any,
) -> dict[str, Any]:
    """POST /v1/screenings, check the problem, and check that nothing was written."""
    before = await footprint(database, api.client_id, subject.source_reference)
    if "json" not in request and "content" not in request:
        request["json"] = subject.body
    response = await api.post(
        "/v1/screenings", headers=idem() if headers is None else headers, **request
    )
    problem = assert_problem(response, status)
    if pointer is not None:
        assert pointer in pointers(problem), problem
    for secret in subject.secrets:
        assert secret not in response.text
    assert await footprint(database, api.client_id, subject.source_reference) == before
    return problem


@pytest.fixture
async def writer(make_api) -> Api:
    return await make_api(Scope.screenings_write, Scope.deaths_read, Scope.deaths_write)


async def test_the_helpers_see_a_write(writer, database) -> None:
    """The footprint moves when a screening is recorded, so 'unchanged' below means something."""
    subject = patient()
    before = await footprint(database, writer.client_id, subject.source_reference)
    created = await writer.post("/v1/screenings", json=subject.body, headers=idem())
    assert created.status_code == 201, created.text
    after = await footprint(database, writer.client_id, subject.source_reference)
    assert all(b < a for b, a in zip(before, after, strict=True))


# --- malformed JSON --------------------------------------------------------------------------


def _truncated(body: dict[str, Any]) -> bytes:
    raw = json.dumps(body).encode()
    return raw[: len(raw) // 2]


MALFORMED: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "truncated": _truncated,
    "trailing garbage": lambda body: json.dumps(body).encode() + b" }{ trailing",
    "not JSON": lambda body: b"death=yes&screening=no",
    "single quotes": lambda body: str(body).encode(),
    "empty body": lambda body: b"",
}


@pytest.mark.parametrize("kind", MALFORMED)
async def test_malformed_json_is_a_400(writer, database, kind) -> None:
    subject = patient()
    problem = await post_and_check(
        writer,
        database,
        subject,
        400,
        content=MALFORMED[kind](subject.body),
        headers={**idem(), "Content-Type": "application/json"},
    )
    assert problem["detail"]


async def test_no_body_at_all_is_a_400(writer, database) -> None:
    subject = patient()
    await post_and_check(writer, database, subject, 400, content=b"", headers=idem())


# --- wrong types, unknown fields, enumerations, lengths ---------------------------------------

Mutation = Callable[[Patient], None]


def _death(**values: Any) -> Mutation:
    return lambda subject: subject.body["death"].update(values)


def _screening(**values: Any) -> Mutation:
    return lambda subject: subject.body["screening"].update(values)


def _set(path: tuple[str, ...], value: Any) -> Mutation:
    def mutate(subject: Patient) -> None:
        target = subject.body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def _bad_check_digit(subject: Patient) -> None:
    number = subject.body["death"]["nhs_number"]
    subject.body["death"]["nhs_number"] = number[:9] + str((int(number[9]) + 1) % 10)


def _long_given_name(subject: Patient) -> None:
    subject.body["death"]["given_name"] = "Quill" + _letters(96)


INVALID: dict[str, tuple[Mutation, str]] = {
    # wrong types
    "string for a bool": (_screening(records_reviewed="sometimes"), "/screening/records_reviewed"),
    "string for a death flag": (_death(learning_disability="unsure"), "/death/learning_disability"),
    "number for a string": (_death(family_name=12345), "/death/family_name"),
    "number for the NHS number": (_death(nhs_number=9434765919), "/death/nhs_number"),
    "list for an object": (_screening(examiner=["Dr Examiner", "7654321"]), "/screening/examiner"),
    "list for the death": (_set(("death",), []), "/death"),
    "object for a date": (_death(date_of_birth={"year": 1940}), "/death/date_of_birth"),
    "null for a required date": (_death(date_of_birth=None), "/death/date_of_birth"),
    "null for a required enum": (_death(sex=None), "/death/sex"),
    "null for a required bool": (_screening(death_expected=None), "/screening/death_expected"),
    "null for the screening": (_set(("screening",), None), "/screening"),
    "missing examiner": (lambda s: s.body["screening"].pop("examiner"), "/screening/examiner"),
    # unknown fields
    "unknown top-level field": (_set(("patient",), {"id": 1}), "/patient"),
    "unknown death field": (_death(favourite_colour="blue"), "/death/favourite_colour"),
    "unknown screening field": (_screening(mood="calm"), "/screening/mood"),
    "unknown examiner field": (
        _set(("screening", "examiner", "grade"), "consultant"),
        "/screening/examiner/grade",
    ),
    # enumerations
    "place of death": (_death(place_of_death="the moon"), "/death/place_of_death"),
    "sex": (_death(sex="x"), "/death/sex"),
    "admission method": (_death(admission_method="teleport"), "/death/admission_method"),
    "route requested": (
        _screening(routes_requested=["sjr", "spa"]),
        "/screening/routes_requested/1",
    ),
    "NHS number status 09": (_death(nhs_number_status="09"), "/death/nhs_number_status"),
    "coroner reason": (
        _screening(coroner_notified=True, coroner_reason="curiosity"),
        "/screening/coroner_reason",
    ),
    # lengths and formats
    "given name of 101 characters": (_long_given_name, "/death/given_name"),
    "concerns of 5001 characters": (
        _screening(bereaved_concerns="c" * 5001),
        "/screening/bereaved_concerns",
    ),
    "GMC number": (
        _set(("screening", "examiner", "gmc_number"), "12"),
        "/screening/examiner/gmc_number",
    ),
    "postcode": (_death(postcode="NOT A POSTCODE"), "/death/postcode"),
    "NHS number check digit": (_bad_check_digit, "/death/nhs_number"),
    "NHS number status 01 without a number": (
        _death(nhs_number=None, nhs_number_status="01"),
        "/death/nhs_number",
    ),
}


@pytest.mark.parametrize("case", INVALID)
async def test_invalid_fields_are_a_422_pointing_at_them(writer, database, case) -> None:
    mutate, pointer = INVALID[case]
    subject = patient()
    mutate(subject)
    problem = await post_and_check(writer, database, subject, 422, pointer=pointer)
    assert all(p.startswith("/") for p in pointers(problem)), problem


NUL_FIELDS: dict[str, tuple[Mutation, str]] = {
    "given name": (_death(given_name="Quill\x00"), "/death/given_name"),
    "ward": (_death(ward="Ward\x007"), "/death/ward"),
    "examiner": (
        _set(("screening", "examiner", "name"), "Dr\x00Examiner"),
        "/screening/examiner/name",
    ),
    "concerns": (_screening(staff_concerns="fell\x00 twice"), "/screening/staff_concerns"),
    "cause of death": (
        _set(("screening", "cause_of_death", "part_1a"), "\x00"),
        "/screening/cause_of_death/part_1a",
    ),
    "override reason": (
        _screening(overrides=[{"route": "mm", "reason": "not\x00needed"}]),
        "/screening/overrides/0/reason",
    ),
}


@pytest.mark.parametrize("case", NUL_FIELDS)
async def test_a_nul_character_in_text_is_a_422(writer, database, case) -> None:
    """PostgreSQL cannot store NUL in text: the field is refused, on both databases alike."""
    mutate, pointer = NUL_FIELDS[case]
    subject = patient()
    mutate(subject)
    await post_and_check(writer, database, subject, 422, pointer=pointer)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/deaths", "site"),
        ("/v1/deaths", "source_reference"),
        ("/v1/deaths", "specialty"),
        ("/v1/referrals", "specialty"),
        ("/v1/referrals", "site"),
    ],
)
async def test_a_nul_character_in_a_filter_is_a_422(make_api, path, name) -> None:
    reader = await make_api(Scope.deaths_read, Scope.referrals_read)
    response = await reader.get(path, params={name: "Ward\x007"})
    assert f"query:/{name}" in pointers(assert_problem(response, 422))


@pytest.mark.parametrize("pseudonymised", [False, True], ids=["full", "pseudonymised"])
async def test_a_nul_in_a_parameter_name_is_pointed_at_without_repeating_the_name(
    make_api, pseudonymised: bool
) -> None:
    """The pointer names a parameter only when it looks like one (app.kit.query's rule): a
    name holding the NUL, or a patient's name pasted as one, is not repeated."""
    reader = await make_api(pseudonymised=pseudonymised) if pseudonymised else await make_api()
    response = await reader.get(
        "/v1/deaths", params={"Testfamily 9990000000\x00": "x", "site": "Ward\x00"}
    )
    problem = assert_problem(response, 422)
    assert sorted(pointers(problem)) == ["query:", "query:/site"]
    assert "Testfamily" not in response.text and "9990000000" not in response.text


async def test_a_nul_in_the_query_is_a_422_before_the_credential_is_checked(http) -> None:
    """The middleware refuses it before routing, so before authentication: nothing is read
    for it either way (app/middleware.py; the same under /fhir/, as an OperationOutcome)."""
    response = await http.get("/v1/deaths", params={"site": "\x00"})
    assert pointers(assert_problem(response, 422)) == ["query:/site"]
    assert (await http.get("/v1/deaths", params={"site": "Ward"})).status_code == 401


# --- impossible dates and inconsistent screenings --------------------------------------------


def _dates(subject: Patient, **offsets: timedelta | datetime | str) -> None:
    """Set the named fields: a timedelta is from the death, a datetime is absolute."""
    for name, value in offsets.items():
        section = "death" if name in {"died_at", "admitted_at", "discharged_at"} else "screening"
        if isinstance(value, timedelta):
            value = subject.died + value
        subject.body[section][name] = value.isoformat() if isinstance(value, datetime) else value


def _born_after_death(subject: Patient) -> None:
    subject.body["death"]["date_of_birth"] = (subject.died + timedelta(days=1)).date().isoformat()


def _admitted_before_birth(subject: Patient) -> None:
    born = subject.died - timedelta(days=30)
    subject.body["death"]["date_of_birth"] = born.date().isoformat()
    subject.body["death"]["admitted_at"] = (born - timedelta(days=2)).isoformat()


def _too_old(subject: Patient) -> None:
    subject.body["death"]["date_of_birth"] = (
        subject.died.date().replace(year=subject.died.year - 131).isoformat()
    )


def _died_in_the_future(subject: Patient) -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    subject.body["death"]["died_at"] = future.isoformat()
    subject.body["screening"]["screened_at"] = (future + timedelta(hours=1)).isoformat()


def _no_offset(subject: Patient) -> None:
    subject.body["death"]["died_at"] = subject.died.replace(tzinfo=None).isoformat()


IMPOSSIBLE: dict[str, tuple[Mutation, str]] = {
    "birth after death": (_born_after_death, "/death/date_of_birth"),
    "admission before birth": (_admitted_before_birth, "/death/admitted_at"),
    "admission after death": (
        lambda s: _dates(s, admitted_at=timedelta(hours=1)),
        "/death/admitted_at",
    ),
    "discharge before admission": (
        lambda s: _dates(s, discharged_at=timedelta(days=-6)),
        "/death/discharged_at",
    ),
    "discharge after death": (
        lambda s: _dates(s, discharged_at=timedelta(hours=1)),
        "/death/discharged_at",
    ),
    "death in the future": (_died_in_the_future, "/death/died_at"),
    "died_at without an offset": (_no_offset, "/death/died_at"),
    "age over 130": (_too_old, "/death/date_of_birth"),
    "screening before death": (
        lambda s: _dates(s, screened_at=timedelta(hours=-1)),
        "/screening/screened_at",
    ),
    "screening in the future": (
        lambda s: _dates(s, screened_at=datetime.now(UTC) + timedelta(days=1)),
        "/screening/screened_at",
    ),
    "MCCD before death": (
        lambda s: _dates(s, mccd_issued_at=timedelta(hours=-1)),
        "/screening/mccd_issued_at",
    ),
    "MCCD in the future": (
        lambda s: _dates(s, mccd_issued_at=datetime.now(UTC) + timedelta(days=1)),
        "/screening/mccd_issued_at",
    ),
    "coroner notified without a reason": (
        _screening(coroner_notified=True, coroner_reason=None),
        "/screening/coroner_reason",
    ),
    "coroner reason without a notification": (
        _screening(coroner_notified=False, coroner_reason="poisoning"),
        "/screening/coroner_reason",
    ),
    "time of death out of range": (
        _death(died_at="9999-12-31T23:59:59-01:00"),
        "/death/died_at",
    ),
    "admission out of range": (
        _death(admitted_at="0001-01-01T00:00:00+01:00"),
        "/death/admitted_at",
    ),
}


@pytest.mark.parametrize("case", IMPOSSIBLE)
async def test_impossible_dates_are_a_422_pointing_at_them(writer, database, case) -> None:
    mutate, pointer = IMPOSSIBLE[case]
    subject = patient()
    mutate(subject)
    await post_and_check(writer, database, subject, 422, pointer=pointer)


# --- sizes and media types -------------------------------------------------------------------


def _padded(subject: Patient, total_bytes: int) -> bytes:
    """The subject's body grown to exactly ``total_bytes`` inside a field that would be valid
    at a smaller size, or rejected only as too long: never 413 for any reason but its size."""
    subject.body["screening"]["bereaved_concerns"] = ""
    filler = total_bytes - len(json.dumps(subject.body).encode())
    assert filler > 0
    subject.body["screening"]["bereaved_concerns"] = "b" * filler
    raw = json.dumps(subject.body).encode()
    assert len(raw) == total_bytes
    return raw


async def _chunks(raw: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_configured_limit_is_a_413(app_factory, database, chunked) -> None:
    _, http = await app_factory(max_body_bytes=2048)
    key, client_id = await new_client(database, [Scope.screenings_write])
    api = Api(http, key, client_id)
    json_headers = {"Content-Type": "application/json"}

    def send(raw: bytes) -> bytes | AsyncIterator[bytes]:
        return _chunks(raw, 500) if chunked else raw

    at_the_limit = _padded(patient(), 2048)  # concerns of some 800 characters: valid
    accepted = await api.post(
        "/v1/screenings", content=send(at_the_limit), headers={**idem(), **json_headers}
    )
    assert accepted.status_code == 201, accepted.text

    subject = patient()
    problem = await post_and_check(
        api,
        database,
        subject,
        413,
        content=send(_padded(subject, 2049)),
        headers={**idem(), **json_headers},
    )
    assert "2048" in problem["detail"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_one_mebibyte_is_a_413_by_default(writer, database, chunked) -> None:
    subject = patient()
    raw = _padded(subject, 1024 * 1024 + 1)
    content: bytes | AsyncIterator[bytes] = _chunks(raw) if chunked else raw
    await post_and_check(
        writer,
        database,
        subject,
        413,
        content=content,
        headers={**idem(), "Content-Type": "application/json"},
    )


WRONG_MEDIA: dict[str, dict[str, Any]] = {
    "text/plain": {"content_type": "text/plain"},
    "no content type": {"content_type": None},
    "form data": {"form": True},
    "multipart": {"multipart": True},
    "xml": {"content_type": "application/xml"},
}


@pytest.mark.parametrize("kind", WRONG_MEDIA)
async def test_a_body_that_is_not_json_by_its_media_type_is_a_415(writer, database, kind) -> None:
    subject = patient()
    spec = WRONG_MEDIA[kind]
    headers = idem()
    request: dict[str, Any]
    if spec.get("form"):
        request = {"data": {"death": json.dumps(subject.body["death"])}}
    elif spec.get("multipart"):
        request = {"files": {"body": ("body.json", json.dumps(subject.body).encode())}}
    else:
        request = {"content": json.dumps(subject.body).encode()}
        if spec["content_type"]:
            headers["Content-Type"] = spec["content_type"]
    await post_and_check(writer, database, subject, 415, headers=headers, **request)


# --- the Idempotency-Key ---------------------------------------------------------------------


async def test_a_missing_idempotency_key_is_a_400(writer, database) -> None:
    subject = patient()
    problem = await post_and_check(writer, database, subject, 400, headers={})
    assert "Idempotency-Key" in problem["detail"]


@pytest.mark.parametrize("key", ["k" * 256, "   "], ids=["256 characters", "blank"])
async def test_an_unusable_idempotency_key_is_a_400(writer, database, key) -> None:
    subject = patient()
    problem = await post_and_check(writer, database, subject, 400, headers={"Idempotency-Key": key})
    assert "Idempotency-Key" in problem["detail"]


async def test_an_idempotency_key_of_255_characters_is_accepted(writer) -> None:
    response = await writer.post(
        "/v1/screenings", json=patient().body, headers={"Idempotency-Key": "k" * 254 + "z"}
    )
    assert response.status_code == 201, response.text


# --- paths, methods, query parameters --------------------------------------------------------


async def test_an_unknown_path_is_a_404_problem(writer) -> None:
    for path in ("/v1/nothing-here", "/v1/deaths/x/y/z", "/v2/screenings"):
        assert_problem(await writer.get(path), 404)


async def test_a_wrong_method_is_a_405_problem(writer) -> None:
    death_id = uuid.uuid4()
    for method, path in (
        ("DELETE", "/v1/screenings"),
        ("GET", "/v1/screenings"),
        ("PATCH", "/v1/screenings/batch"),
        ("PUT", "/v1/deaths"),
        ("DELETE", f"/v1/deaths/{death_id}"),
        ("POST", "/v1/referrals"),
    ):
        response = await writer.request(method, path, json={}, headers=idem())
        assert_problem(response, 405)
        assert response.headers["allow"]


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        ("/v1/deaths/not-a-uuid", "path:/death_id"),
        ("/v1/deaths/123", "path:/death_id"),
        ("/v1/screenings/not-a-uuid", "path:/screening_id"),
        ("/v1/screenings/0000/versions", "path:/screening_id"),
    ],
)
async def test_a_path_id_that_is_not_a_uuid_is_a_422(writer, path, pointer) -> None:
    problem = assert_problem(await writer.get(path), 422)
    assert pointer in pointers(problem)


async def test_a_patch_to_a_path_id_that_is_not_a_uuid_is_a_422(writer) -> None:
    response = await writer.patch("/v1/deaths/not-a-uuid", json={}, headers={"If-Match": "*"})
    assert "path:/death_id" in pointers(assert_problem(response, 422))


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


GARBAGE_CURSORS = {
    "not base64": "!!!not-a-cursor!!!",
    "base64 of text": base64.urlsafe_b64encode(b"hello").decode(),
    "base64 of an object": _b64({"died_at": "2024-01-01"}),
    "wrong length": _b64([1, 2, 3, 4, 5, 6, 7]),
    "wrong types": _b64(["not a time", "not a uuid"]),
    "wrong types, longer": _b64(["not a number", "not a time", "not a uuid"]),
    "nulls": _b64([None, None]),
}


@pytest.mark.parametrize("path", ["/v1/deaths", "/v1/referrals"])
@pytest.mark.parametrize("cursor", GARBAGE_CURSORS)
async def test_a_garbage_cursor_is_a_400(writer, make_api, path, cursor) -> None:
    reader = await make_api(Scope.deaths_read, Scope.referrals_read)
    response = await reader.get(path, params={"cursor": GARBAGE_CURSORS[cursor]})
    assert_problem(response, 400)


@pytest.mark.parametrize("path", ["/v1/deaths", "/v1/referrals"])
@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
async def test_a_limit_out_of_range_is_a_422(make_api, path, limit) -> None:
    reader = await make_api(Scope.deaths_read, Scope.referrals_read)
    problem = assert_problem(await reader.get(path, params={"limit": limit}), 422)
    assert "query:/limit" in pointers(problem)


@pytest.mark.parametrize("path", ["/v1/deaths", "/v1/referrals"])
async def test_the_limit_bounds_themselves_are_accepted(make_api, path) -> None:
    reader = await make_api(Scope.deaths_read, Scope.referrals_read)
    for limit in ("1", "200"):
        response = await reader.get(path, params={"limit": limit})
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) <= int(limit)


async def test_an_invalid_nhs_number_filter_is_a_422_that_does_not_echo_it(make_api) -> None:
    reader = await make_api(Scope.deaths_read)
    number = nhs_number()
    wrong = number[:9] + str((int(number[9]) + 1) % 10)
    response = await reader.get("/v1/deaths", params={"nhs_number": wrong})
    assert "query:/nhs_number" in pointers(assert_problem(response, 422))
    assert wrong not in response.text


# --- corrections (PATCH) are held to the same rules ------------------------------------------


async def test_a_bad_correction_is_a_422_and_changes_nothing(writer, database) -> None:
    subject = patient()
    created = await writer.post("/v1/screenings", json=subject.body, headers=idem())
    assert created.status_code == 201, created.text
    death_id = created.json()["death_id"]
    read = await writer.get(f"/v1/deaths/{death_id}")
    tag = read.headers["etag"]
    before = await footprint(database, writer.client_id, subject.source_reference)
    for patch, pointer in (
        (
            {"date_of_birth": (subject.died + timedelta(days=3)).date().isoformat()},
            "/date_of_birth",
        ),
        ({"given_name": "x" * 101}, "/given_name"),
        ({"nickname": "Quilly"}, "/nickname"),
        ({"sex": None}, "/sex"),
        ({"died_at": "2024-01-01T10:00:00"}, "/died_at"),
    ):
        response = await writer.patch(
            f"/v1/deaths/{death_id}", json=patch, headers={"If-Match": tag}
        )
        assert pointer in pointers(assert_problem(response, 422)), patch
        for secret in subject.secrets:
            assert secret not in response.text
    assert await footprint(database, writer.client_id, subject.source_reference) == before
    again = await writer.get(f"/v1/deaths/{death_id}")
    assert again.headers["etag"] == tag


# --- fuzzing ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

FIELD_PATHS = [
    ("death",),
    ("screening",),
    *[("death", name) for name in screening_body()["death"]],
    *[("screening", name) for name in screening_body()["screening"]],
    ("death", "discharged_at"),
    ("death", "learning_disability"),
    ("screening", "examiner", "name"),
    ("screening", "examiner", "gmc_number"),
    ("screening", "cause_of_death", "part_1a"),
    ("screening", "mccd_issued_at"),
    ("screening", "coroner_reason"),
    ("screening", "routes_requested"),
    ("screening", "overrides"),
]

FUZZ = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_answered(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if 400 <= response.status_code < 500:
        assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
        body = response.json()
        assert body["status"] == response.status_code
        for text in FORBIDDEN_TEXT:
            assert text not in response.text


@FUZZ
@given(value=json_values)
async def test_fuzz_any_json_as_the_body(api, value) -> None:
    raw = json.dumps(value).encode()
    response = await api.post(
        "/v1/screenings", content=raw, headers={**idem(), "Content-Type": "application/json"}
    )
    assert_answered(response)
    assert response.status_code != 201  # no arbitrary value is a whole screening


@FUZZ
@given(path=st.sampled_from(FIELD_PATHS), value=json_values)
async def test_fuzz_any_json_in_one_field(api, path, value) -> None:
    body = screening_body()
    _set(path, value)(Patient(body, datetime.now(UTC)))
    response = await api.post(
        "/v1/screenings",
        content=json.dumps(body).encode(),
        headers={**idem(), "Content-Type": "application/json"},
    )
    assert_answered(response)


FILTERS = {
    "/v1/deaths": ["specialty", "site", "source_system", "source_reference", "nhs_number"],
    "/v1/referrals": ["specialty", "site", "route", "status", "overdue", "due_before"],
}


@FUZZ
@given(
    path=st.sampled_from(sorted(FILTERS)),
    data=st.data(),
    value=st.text(max_size=40) | st.sampled_from(["\x00", "%", "'; --", "\\", "\u2028"]),
)
async def test_fuzz_any_text_in_a_filter(make_api, path, data, value) -> None:
    reader = await make_api(Scope.deaths_read, Scope.referrals_read)
    name = data.draw(st.sampled_from(FILTERS[path]))
    response = await reader.get(path, params={name: value})
    assert_answered(response)


timestamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
).map(lambda moment: moment.isoformat())
TIME_FIELDS = [
    ("death", "died_at"),
    ("death", "admitted_at"),
    ("death", "discharged_at"),
    ("death", "date_of_birth"),
    ("screening", "screened_at"),
    ("screening", "mccd_issued_at"),
]


@FUZZ
@given(
    path=st.sampled_from(TIME_FIELDS),
    value=timestamps | st.dates().map(lambda day: day.isoformat()),
)
async def test_fuzz_any_time_in_a_time_field(api, path, value) -> None:
    body = screening_body()
    _set(path, value)(Patient(body, datetime.now(UTC)))
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert_answered(response)
