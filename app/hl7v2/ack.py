"""The HL7 ACK that answers an ADT message: MSA-1 AA (accepted), AE (an application error:
the content was refused) or AR (rejected: the message could not be read), with an ERR segment
naming the segment and field at fault. Reason texts are the service's own words, never values
from the message (which would carry patient data back into interface engine logs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from app.hl7v2.adt import Hl7Problem

# HL7 table 0357 message error condition codes.
ERROR_CODES = {
    "AR": "200^Unsupported message type^HL70357",
    "missing": "101^Required field missing^HL70357",
    "AE": "207^Application internal error^HL70357",
    "duplicate": "205^Duplicate key identifier^HL70357",
}


@dataclass(frozen=True)
class Sender:
    application: str = ""
    facility: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    trigger: str = ""


def escape(text: str) -> str:
    """HL7 escape sequences for the delimiters, so a reason text cannot break the ACK."""
    escaped = text.replace("\\", "\\E\\")
    for char, code in (("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\")):
        escaped = escaped.replace(char, code)
    return escaped.replace("\r", " ").replace("\n", " ")


def _error_location(location: str) -> str:
    segment, _, field = location.partition("-")
    return f"{segment}^1^{field}" if field else segment


def ack(sender: Sender, problem: Hl7Problem | None, note: str | None = None) -> str:
    """The ACK; ``note`` is an accepted message's MSA-3 text (the service's words)."""
    code = "AA" if problem is None else problem.code
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    kind = f"ACK^{sender.trigger}^ACK" if sender.trigger else "ACK"
    segments = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                "LFD",
                escape(sender.receiving_facility),
                escape(sender.application),
                escape(sender.facility),
                stamp,
                "",
                kind,
                uuid.uuid4().hex[:20],
                "P",
                "2.5.1",
            ]
        )
    ]
    text = (
        escape(note or "") if problem is None else escape(f"{problem.location}: {problem.reason}")
    )
    segments.append("|".join(["MSA", code, escape(sender.control_id), text]))
    if problem is not None:
        condition = problem.condition or (
            ERROR_CODES["missing"] if "missing" in problem.reason else ERROR_CODES[code]
        )
        segments.append(
            "|".join(
                ["ERR", "", _error_location(problem.location), condition, "E", "", "", "", text]
            )
        )
    return "\r".join(segments) + "\r"
