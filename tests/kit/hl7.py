"""Real-looking HL7 v2.5.1 ADT messages of synthetic patients (NHS numbers from the 999
test range): an A03 discharge on death and an A08 update with a date of death."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.factories import test_nhs_number


def hl7_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def adt(
    trigger: str = "A03",
    *,
    nhs_number: str | None = None,
    died: datetime | None = None,
    disposition: str = "4",
    death_indicator: str = "Y",
    visit: str | None = None,
    control_id: str | None = None,
    ward: str = "WARD7",
    site: str = "RX1SJ",
    segments: dict[str, str] | None = None,
) -> str:
    """An ADT message: segments separated by carriage returns, as an interface engine sends."""
    died = died or datetime.now(UTC) - timedelta(hours=6)
    number = nhs_number or test_nhs_number()
    admitted = died - timedelta(days=4)
    visit = visit or f"V{uuid.uuid4().hex[:10].upper()}"
    control_id = control_id or f"MSG{uuid.uuid4().hex[:12].upper()}"
    death_time = hl7_time(died) if trigger == "A08" or disposition else ""
    msh = (
        f"MSH|^~\\&|PAS|RX1|LFD|RX1|{hl7_time(datetime.now(UTC))}||ADT^{trigger}^ADT_A03|"
        f"{control_id}|P|2.5.1|||AL|NE|GBR|UNICODE UTF-8"
    )
    evn = f"EVN|{trigger}|{hl7_time(died)}"
    pid = (
        f"PID|1||{number}^^^NHS^NH~RX1{visit[1:7]}^^^RX1^MR||Testfamily^Testgiven^^^Mrs||"
        f"19400312|F|||1 Test Street^^Leeds^^LS1 4AP^GBR||||||||||||A||||||"
        f"{death_time}|{death_indicator}"
    )
    pv1 = (
        f"PV1|1|I|{ward}^BED3^^{site}||||C1234567^Consultant^Test|||300|||||||||"
        f"{visit}|||||||||||||||||{disposition}||||||||{hl7_time(admitted)}|{hl7_time(died)}"
    )
    parts = {"MSH": msh, "EVN": evn, "PID": pid, "PV1": pv1, **(segments or {})}
    return "\r".join(value for value in parts.values() if value) + "\r"


def ack_fields(ack: str) -> dict[str, list[str]]:
    return {line[:3]: line.split("|") for line in ack.split("\r") if line}
