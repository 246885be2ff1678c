"""HL7 v2 ADT death notifications over HTTP (issue 15): A03 and A08 accepted with an ACK AA
onto the same service as POST /v1/death-notifications; malformed messages answered AE/AR
naming the segment and field, and nothing stored."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import hl7

from app.auth.scopes import Scope
from tests.factories import test_nhs_number
from tests.kit.hl7 import ack_fields, adt

PATH = "/v1/hl7v2/adt"
HL7 = {"Content-Type": "application/hl7-v2"}


async def send(api, message: str, content_type: str = "application/hl7-v2"):
    return await api.post(PATH, content=message.encode(), headers={"Content-Type": content_type})


async def deaths_of(api, nhs_number: str) -> list[dict]:
    response = await api.get("/v1/deaths", params={"nhs_number": nhs_number})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_an_a03_with_a_death_disposition_is_accepted_and_notifies_the_death(api):
    number = test_nhs_number()
    died = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    message = adt("A03", nhs_number=number, ward="WARD9", site="RX1LG", died=died)
    response = await send(api, message)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/hl7-v2")
    ack = ack_fields(response.text)
    assert ack["MSA"][1] == "AA"
    assert ack["MSA"][2] == hl7.parse(message.strip()).segment("MSH")[10][0]
    parsed = hl7.parse(response.text.strip())  # the ACK is itself HL7 the library reads
    assert str(parsed.segment("MSH")[9]) == "ACK^A03^ACK"
    [death] = await deaths_of(api, number)
    assert death["status"] == "awaiting_screening"
    assert death["source_system"] == "PAS@RX1"
    assert (death["ward"], death["site"]) == ("WARD9", "RX1LG")
    assert death["place_of_death"] == "inpatient"
    assert death["sex"] == "female" and death["date_of_birth"] == "1940-03-12"
    assert death["specialty_at_death"] == "300"
    # PV1-44 is the admission (four days before), PV1-45 the discharge on death.
    admitted = datetime.fromisoformat(death["admitted_at"].replace("Z", "+00:00"))
    assert admitted == died - timedelta(days=4)
    assert death["admission_method"] == "elective" and death["discharged_at"] is None


async def test_an_a03_without_pid_29_takes_the_time_of_death_from_pv1_45(api):
    number = test_nhs_number()
    died = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    message = with_pid_29(adt(nhs_number=number, died=died), "")
    response = await send(api, message)
    assert ack_fields(response.text)["MSA"][1] == "AA", response.text
    [death] = await deaths_of(api, number)
    assert datetime.fromisoformat(death["died_at"].replace("Z", "+00:00")) == died


async def test_an_a08_with_a_date_of_death_is_accepted_as_text_plain(api):
    number = test_nhs_number()
    response = await send(api, adt("A08", nhs_number=number, disposition=""), "text/plain")
    assert ack_fields(response.text)["MSA"][1] == "AA", response.text
    assert len(await deaths_of(api, number)) == 1


async def test_a_resent_message_and_a_later_a08_make_one_death(api):
    number = test_nhs_number()
    died = datetime.now(UTC) - timedelta(hours=3)
    first = adt("A03", nhs_number=number, died=died, visit="V1000001")
    assert ack_fields((await send(api, first)).text)["MSA"][1] == "AA"
    assert ack_fields((await send(api, first)).text)["MSA"][1] == "AA"
    update = adt("A08", nhs_number=number, died=died, visit="V1000001", disposition="")
    assert ack_fields((await send(api, update)).text)["MSA"][1] == "AA"
    assert len(await deaths_of(api, number)) == 1


async def test_line_feeds_between_segments_are_accepted(api):
    number = test_nhs_number()
    response = await send(api, adt(nhs_number=number).replace("\r", "\n"))
    assert ack_fields(response.text)["MSA"][1] == "AA", response.text


async def refused(api, message: str, code: str, location: str, status: int) -> None:
    response = await send(api, message)
    assert response.status_code == status, response.text
    ack = ack_fields(response.text)
    assert ack["MSA"][1] == code
    assert ack["MSA"][3].startswith(f"{location}:"), ack["MSA"]
    segment, _, field = location.partition("-")
    assert ack["ERR"][2] == (f"{segment}^1^{field}" if field else segment)


async def test_malformed_messages_are_refused_naming_the_field_and_nothing_is_stored(api):
    number = test_nhs_number()
    good = adt(nhs_number=number)
    no_msh = "\r".join(good.split("\r")[1:])
    await refused(api, no_msh, "AR", "MSH", 400)
    await refused(api, good.replace("MSH|^~\\&|", "MSH#^~\\&#", 1), "AR", "MSH-2", 400)
    await refused(api, good.replace("ADT^A03", "ADT^A01", 1), "AR", "MSH-9", 400)
    truncated = "\r".join(
        line if not line.startswith("PID") else "PID|1||" + number + "^^^NHS^NH"
        for line in good.split("\r")
    )
    # An A03 discharged on death has its time in PV1-45: the first field missing is PID-7.
    await refused(api, truncated, "AE", "PID-7", 422)
    update = adt("A08", nhs_number=number, disposition="")
    truncated_update = "\r".join(
        line if not line.startswith("PID") else "PID|1||" + number + "^^^NHS^NH"
        for line in update.split("\r")
    )
    await refused(api, truncated_update, "AE", "PID-29", 422)
    no_pid = "\r".join(line for line in good.split("\r") if not line.startswith("PID"))
    await refused(api, no_pid, "AR", "PID", 400)
    future = adt(nhs_number=number, died=datetime.now(UTC) + timedelta(days=2))
    await refused(api, future, "AE", "PID-29", 422)
    alive = adt(nhs_number=number, disposition="1", death_indicator="N")
    await refused(api, alive, "AE", "PID-30", 422)
    not_a_death = adt(nhs_number=number, disposition="1", death_indicator="")
    await refused(api, not_a_death, "AE", "PV1-36", 422)
    bad_date = good.replace("|19400312|", "|19401312|")
    await refused(api, bad_date, "AE", "PID-7", 422)
    bad_number = adt(nhs_number="9999999990")
    response = await send(api, bad_number)
    assert ack_fields(response.text)["MSA"][1] == "AE"
    assert "9999999990" not in response.text
    assert await deaths_of(api, number) == []


async def test_the_ack_escapes_and_never_echoes_the_message(api):
    number = test_nhs_number()
    response = await send(api, adt(nhs_number=number, died=datetime.now(UTC) + timedelta(days=1)))
    assert number not in response.text and "Testfamily" not in response.text


async def test_hl7_needs_the_scope_and_an_hl7_media_type(make_api, api):
    reader = await make_api(Scope.deaths_read)
    assert (await send(reader, adt())).status_code == 403
    as_json = await api.post(
        PATH, content=adt().encode(), headers={"Content-Type": "application/json"}
    )
    assert as_json.status_code == 415
    # and a JSON route does not take HL7
    elsewhere = await api.post("/v1/death-notifications", content=adt().encode(), headers=HL7)
    assert elsewhere.status_code == 415


async def test_the_declared_error_bodies_are_sent(api):
    """The document declares an ACK for AR (400) and AE (422), and a problem for the 400 of a
    query parameter the route does not take (tests/test_openapi_document.py)."""
    unknown = await api.post(PATH + "?stray=1", content=adt().encode(), headers=HL7)
    assert unknown.status_code == 400
    assert unknown.headers["content-type"].startswith("application/problem+json")
    unreadable = await send(api, "not an HL7 message")
    assert unreadable.status_code == 400
    assert unreadable.headers["content-type"].startswith("application/hl7-v2")


async def test_the_documented_example_is_a_message_the_route_reads(api):
    from app.hl7v2.router import EXAMPLE

    example = EXAMPLE.replace("9434765919", test_nhs_number()).replace(
        "V2026112001", "VEX" + datetime.now(UTC).strftime("%H%M%S%f")
    )
    response = await send(api, example, "text/plain")
    assert response.status_code == 200, response.text
    assert ack_fields(response.text)["MSA"][1] == "AA"


def with_pid_29(message: str, value: str) -> str:
    pid = next(line for line in message.split("\r") if line.startswith("PID"))
    fields = pid.split("|")
    fields[29] = value
    return message.replace(pid, "|".join(fields))


async def test_a_time_zone_offset_that_is_not_an_offset_is_refused_not_a_500(api):
    # The regex takes any four digits; an offset of 24 hours or more (or 60 minutes) is not a
    # time zone (Python refuses it: a 500 before the fix), and it must be the sender's AE.
    number = test_nhs_number()
    for offset in ("+2400", "+9999", "-0060"):
        message = with_pid_29(adt(nhs_number=number), "20240101101000" + offset)
        await refused(api, message, "AE", "PID-29", 422)
    assert await deaths_of(api, number) == []


async def test_a_date_of_death_without_its_time_is_refused(api):
    # A date alone would be recorded as midnight, moving the hours since death and the MCCD due.
    number = test_nhs_number()
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%d")
    await refused(api, with_pid_29(adt(nhs_number=number), day), "AE", "PID-29", 422)
    # An A03 whose death time is its discharge time (PV1-45) is held to the same rule.
    message = with_pid_29(adt(nhs_number=number), "")
    pv1 = next(line for line in message.split("\r") if line.startswith("PV1"))
    fields = pv1.split("|")
    fields[45] = day
    await refused(api, message.replace(pv1, "|".join(fields)), "AE", "PV1-45", 422)
    assert await deaths_of(api, number) == []


async def test_escape_sequences_and_subcomponents_are_read_as_hl7_means_them(api):
    # "A&E" travels as A\T\E; a facility is an HD (namespace&universal id&type): the site is
    # its namespace id, the ward the unescaped text, as python-hl7 reads them.
    number = test_nhs_number()
    message = adt(nhs_number=number, ward="A\\T\\E", site="RX1SJ&2.16.840.1.113883.2.1.3.2&ISO")
    message = message.replace("Testfamily^", "Test\\S\\family^", 1)
    response = await send(api, message)
    assert ack_fields(response.text)["MSA"][1] == "AA", response.text
    [death] = await deaths_of(api, number)
    assert (death["ward"], death["site"]) == ("A&E", "RX1SJ")
    assert death["family_name"] == "Test^family"


async def test_an_escape_sequence_that_cannot_be_decoded_is_never_logged(api, caplog):
    # python-hl7 logs the whole field it fails to unescape (here a family name) at ERROR.
    caplog.set_level(logging.DEBUG)
    number = test_nhs_number()
    message = adt(nhs_number=number).replace("Testfamily^", "Secretname\\XZZ\\\\H\\x^", 1)
    response = await send(api, message)
    assert ack_fields(response.text)["MSA"][1] == "AA", response.text
    [death] = await deaths_of(api, number)
    assert death["family_name"] == "Secretnamex"
    assert not [r for r in caplog.records if "Secretname" in r.getMessage()]


async def test_a_visit_number_reused_for_another_patient_is_refused_naming_pv1_19(api):
    first, second = test_nhs_number(), test_nhs_number()
    visit = f"V{uuid.uuid4().hex[:10].upper()}"
    assert ack_fields((await send(api, adt(nhs_number=first, visit=visit))).text)["MSA"][1] == "AA"
    response = await send(api, adt(nhs_number=second, visit=visit))
    assert response.status_code == 422, response.text
    ack = ack_fields(response.text)
    assert ack["MSA"][1] == "AE"
    assert ack["MSA"][3].startswith("PV1-19:"), ack["MSA"]
    assert ack["ERR"][2] == "PV1^1^19"
    assert ack["ERR"][3] == "205^Duplicate key identifier^HL70357"
    assert first not in response.text and second not in response.text
    # Nothing dropped silently: the second patient has no death, and says so (AE), and the
    # first is as it was.
    assert await deaths_of(api, second) == []
    [death] = await deaths_of(api, first)
    assert death["version"] == 1


async def test_a_correcting_a08_under_the_same_visit_is_applied_and_acknowledged(api):
    number = test_nhs_number()
    died = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    visit = f"V{uuid.uuid4().hex[:10].upper()}"
    first = adt("A03", nhs_number=number, died=died, visit=visit, ward="WARD7")
    assert ack_fields((await send(api, first)).text)["MSA"][1] == "AA"
    correcting = adt("A08", nhs_number=number, died=died, visit=visit, ward="WARD9")
    response = await send(api, correcting)
    assert response.status_code == 200, response.text
    ack = ack_fields(response.text)
    assert ack["MSA"][1] == "AA"
    assert ack["MSA"][3] == "correction applied to the death awaiting screening"
    [death] = await deaths_of(api, number)
    assert death["ward"] == "WARD9" and death["version"] == 2
    # Resent by the engine: accepted again, nothing more changes.
    again = ack_fields((await send(api, correcting)).text)
    assert again["MSA"][1] == "AA"
    [death] = await deaths_of(api, number)
    assert death["version"] == 2
