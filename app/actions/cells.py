"""What one cell of an action plan spreadsheet says: text, a delivery date (a day, a month
such as "Jul-15", or a note such as "TBC"), a status on the 1-5 scale, a list of names, a
system review's work stream and lead. Each reader says what it assumed, if anything, so that
the importer can warn about it on the cell's row.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from app.actions.rag import STATUS_LABELS, ActionStatus, DuePrecision
from app.actions.spreadsheets import CellValue, YearMonth
from app.kit.xlsx import may_be_formula

DUE_NOTE_LIMIT = 100
_UNSEEN = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2060\ufeff\u202a-\u202e\u2066-\u2069]"
)
_NONE = {"-", "--", "\u2013", "\u2014", "n/a", "na", "none", "nil"}  # hyphen, en and em dash
UNKNOWN_LEADS = {"?", "??", "???", "tbc", "tba", "unknown", "not known", "to be confirmed"}
_SPLIT = re.compile(r"[\n;,/]+")

Assumed = tuple[str, str] | None  # (warning code, what was assumed)


def text_of(value: CellValue) -> str:
    """A cell as text: line breaks kept (as \\n), ends trimmed, the CSV formula guard removed,
    control, bidirectional-override and zero-width characters dropped, NFC."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, YearMonth):
        return date(value.year, value.month, 1).strftime("%b-%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    # What the API refuses or strips in text (app.kit.text), a spreadsheet cell loses here:
    # a pasted document is taken as it can be read, not refused for an invisible character.
    text = unicodedata.normalize("NFC", _UNSEEN.sub("", text))
    text = "\n".join(line.rstrip() for line in text.replace("\xa0", " ").split("\n")).strip()
    if text.startswith("'") and may_be_formula(text[1:]):
        text = text[1:]  # the CSV formula guard (app.kit.xlsx)
    return text


def one_line(text: str) -> str:
    return " ".join(text.split())


def is_none(text: str) -> bool:
    """ "-", "N/A", "none": the cell says there is nothing (and is not "same as above")."""
    return text.strip().lower() in _NONE


# --- delivery dates --------------------------------------------------------------------------

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_MONTHS |= {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS["sept"] = 9
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ t]00:00(?::00(?:\.0+)?)?)?$")
_NUMERIC = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
_DAY_MONTH = re.compile(
    r"^(\d{1,2})(?:st|nd|rd|th)?[\s\-/.]+([a-z]{3,9})\.?[\s\-/.,]+(\d{2}|\d{4})$"
)
_MONTH_YEAR = re.compile(r"^([a-z]{3,9})\.?[\s\-/.,]*'?(\d{2}|\d{4})$")
_MONTH_NUMBER = re.compile(r"^(\d{1,2})[/.\-](\d{4})$")
_SERIAL = re.compile(r"^(\d{5})(?:\.0+)?$")
_NOTES = {
    "tbc": "TBC",
    "tba": "TBC",
    "to be confirmed": "TBC",
    "ongoing": "Ongoing",
    "on-going": "Ongoing",
    "on going": "Ongoing",
    "continuous": "Ongoing",
}


@dataclass(frozen=True)
class Due:
    due_date: date | None = None
    precision: DuePrecision = DuePrecision.day
    note: str | None = None


def long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def read_due(value: CellValue, epoch: date) -> tuple[Due, Assumed]:
    """A delivery date cell. Day dates are UK (dd/mm/yyyy), ISO, or written out; a month
    ("Jul-15", "July 2015", "07/2015") is due by the end of the month; "TBC" and "Ongoing" are
    notes; a five-digit number is an Excel serial date; anything else is kept as a note."""
    if isinstance(value, YearMonth):
        return Due(date(value.year, value.month, 1), DuePrecision.month), None
    if isinstance(value, date):
        return Due(value), None
    if isinstance(value, int | float):
        return _serial(value, text_of(value), epoch)
    raw = one_line(text_of(value))
    text = raw.lower()
    if not text or is_none(text):
        return Due(), None
    if text in _NOTES:
        return Due(note=_NOTES[text]), None
    if serial := _SERIAL.match(text):
        return _serial(int(serial.group(1)), serial.group(1), epoch)
    try:
        if match := _ISO.match(text):
            year, month, day = (int(part) for part in match.groups())
            return Due(date(year, month, day)), None
        if match := _NUMERIC.match(text):
            day, month = int(match.group(1)), int(match.group(2))
            return _day(date(_year(match.group(3)), month, day), match.group(3), raw)
        if (match := _DAY_MONTH.match(text)) and match.group(2) in _MONTHS:
            found = date(_year(match.group(3)), _MONTHS[match.group(2)], int(match.group(1)))
            return _day(found, match.group(3), raw)
        if (match := _MONTH_YEAR.match(text)) and match.group(1) in _MONTHS:
            first = date(_year(match.group(2)), _MONTHS[match.group(1)], 1)
            return _month(first, match.group(2), raw)
        if match := _MONTH_NUMBER.match(text):
            return _month(date(int(match.group(2)), int(match.group(1)), 1), match.group(2), raw)
    except ValueError:
        return _note(raw, "not a valid date")
    return _note(raw, "not a date")


def _year(digits: str) -> int:
    return 2000 + int(digits) if len(digits) == 2 else int(digits)


def _day(day: date, year: str, raw: str) -> tuple[Due, Assumed]:
    if len(year) == 2:
        return Due(day), ("two_digit_year", f"'{raw}' read as {long_date(day)}")
    return Due(day), None


def _month(first: date, year: str, raw: str) -> tuple[Due, Assumed]:
    due = Due(first, DuePrecision.month)
    if len(year) == 2:
        return due, (
            "two_digit_year",
            f"'{raw}' read as {first:%B %Y}: due by the end of that month",
        )
    return due, None


def _serial(number: float, raw: str, epoch: date) -> tuple[Due, Assumed]:
    if 20_000 <= number < 80_000:  # 1954 to 2119: a delivery date, not some other number
        day = epoch + timedelta(days=int(number))
        return Due(day), (
            "excel_serial_date",
            f"the number {raw} read as an Excel date: {long_date(day)}",
        )
    return _note(raw, "not a date")


def _note(raw: str, why: str) -> tuple[Due, Assumed]:
    if len(raw) > DUE_NOTE_LIMIT:
        note = raw[:DUE_NOTE_LIMIT].rstrip()
        return Due(note=note), ("due_note", f"{why}: kept as the due note '{note}' (cut short)")
    return Due(note=raw), ("due_note", f"{why}: kept as the due note '{raw}'")


# --- completion dates ------------------------------------------------------------------------

ON_OR_BEFORE = "on_or_before"
_ON_OR_BEFORE = re.compile(r"^(?:on or before|by|before)\s+", re.I)


def completed_text(day: date, precision: str | None) -> str:
    """As the export writes it in CSV: "30/09/2015", or "on or before 30/09/2015"."""
    shown = day.strftime("%d/%m/%Y")
    return f"on or before {shown}" if precision == ON_OR_BEFORE else shown


def read_completed(value: CellValue, epoch: date) -> tuple[date | None, str | None, Assumed]:
    """A "Completed" cell: (the day, its precision, what was assumed). A day is the day it was
    completed (precision None, as the API records it); "on or before 30/09/2015" keeps its
    precision; a month ("Sep-2015") is on or before its last day. Anything else: no date."""
    on_or_before = False
    if isinstance(value, str):
        text = one_line(text_of(value))
        if match := _ON_OR_BEFORE.match(text):
            value, on_or_before = text[match.end() :], True
    due, assumed = read_due(value, epoch)
    if due.due_date is None:
        return None, None, ("completed_unreadable", "not a date: no completion date read")
    if due.precision is DuePrecision.month:
        first = due.due_date
        last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        if on_or_before:
            return last, ON_OR_BEFORE, None
        return last, ON_OR_BEFORE, ("completed_month", f"on or before {long_date(last)}")
    return due.due_date, ON_OR_BEFORE if on_or_before else None, assumed


# --- statuses --------------------------------------------------------------------------------

_LABELS = {label.lower(): int(status) for status, label in STATUS_LABELS.items()}
_SYNONYMS = {
    "not started": 1,
    "not commenced": 1,
    "not yet started": 1,
    "off-track": 2,
    "delayed": 2,
    "behind": 2,
    "at-risk": 3,
    "on-track": 4,
    "in progress": 4,
    "started": 4,
    "ongoing": 4,
    "completed": 5,
    "closed": 5,
    "done": 5,
    "complete - evidenced and assured": 5,
    "evidenced and assured": 5,
}
_RAG_WORDS = {"r": 2, "red": 2, "a": 3, "amber": 3, "g": 4, "green": 4, "b": 5, "blue": 5}
_RAG_WORDS |= {"grey": 1, "gray": 1}
_NUMBERED = re.compile(r"^([1-5])(?:\s*[.):\-\u2013]\s*|\s+|$)(.*)$")


def status_text(status: int) -> str:
    """As the export writes it, e.g. "4. On track"."""
    return f"{status}. {STATUS_LABELS[ActionStatus(status)]}"


def _named(status: int) -> str:
    return f"{status} {STATUS_LABELS[ActionStatus(status)]}"


def read_status(value: CellValue) -> tuple[int | None, Assumed]:
    """A status cell: "4. On track", "4", "On Track", "Complete" as they are; synonyms
    ("Completed", "In progress") with a warning. Blank: None, the status is not recorded. A RAG
    letter or colour ("G", "Amber") is a judgement, not a status: None too (the row reader
    keeps it as the reported RAG). Unknown words: 1 Not yet commenced, warned."""
    raw = one_line(text_of(value))
    text = raw.lower().rstrip(".")
    if not text:
        return None, ("status_not_recorded", "blank: the status is not recorded")
    if match := _NUMBERED.match(text):
        number, words = int(match.group(1)), match.group(2).strip()
        named = _LABELS.get(words) or _SYNONYMS.get(words)
        if words and named is not None and named != number:
            return number, (
                "status_conflict",
                f"'{raw}': the number and the words disagree; took {_named(number)}",
            )
        return number, None
    if text in _LABELS:
        return _LABELS[text], None
    if text in _SYNONYMS:
        return _SYNONYMS[text], ("status_synonym", f"'{raw}' read as {_named(_SYNONYMS[text])}")
    if text in _RAG_WORDS:
        return None, (
            "rag_in_status",
            f"'{raw}' is a RAG, not a status: kept as the reported RAG; the status is not recorded",
        )
    return 1, ("status_unknown", f"'{raw}' is not a status: assumed 1 Not yet commenced")


# --- names -----------------------------------------------------------------------------------


def split_names(text: str) -> list[str]:
    """Names in one cell, separated by line breaks, commas, semicolons or slashes."""
    return [part for part in (one_line(piece) for piece in _SPLIT.split(text)) if part]


_LEAD_LABEL = re.compile(
    r"^(.*?)[\s,;.(\-\u2013\u2014]*\bleads?\b\s*[:\-\u2013\u2014]\s*(.+?)\)?$", re.I | re.S
)
_BRACKETS = re.compile(r"^(.*?)\s*\(([^()]{1,60})\)$", re.S)


def read_alignment(text: str) -> tuple[str | None, str, str | None]:
    """A system review's "Alignment with a work stream/board including Lead" cell: (the work
    stream, the text naming the lead, what was assumed in telling them apart)."""
    if match := _LEAD_LABEL.match(text):
        return one_line(match.group(1)) or None, match.group(2), None
    if match := _BRACKETS.match(text):
        return one_line(match.group(1)) or None, match.group(2), "the lead taken from the brackets"
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) > 1:
        return (
            one_line(lines[0]),
            "\n".join(lines[1:]),
            "the first line taken as the work stream, the rest as the lead",
        )
    return one_line(text), "", None
