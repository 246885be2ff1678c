"""What the text of a real plan says beyond its cells: the action's number written at the
start of its text ("27. By July ensure..."), a recommendation's letter ("A."), a due date in
words ("By the end of March"), links to other actions ("Linked to action 7 and action 27",
"Also covered by action 5"), a lead handed over ("Phil Corrigan > Tim Ryley"), a reported RAG
("Amber", "A", "Amber (Sep 2019)") and the as-at date of a file ("Progress Update September
2019"). Each reader returns what it found; the row reader warns.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from app.actions.rag import Rag

MONTHS: dict[str, int] = {name.lower(): n for n, name in enumerate(calendar.month_abbr) if name}
MONTHS |= {name.lower(): n for n, name in enumerate(calendar.month_name) if name}
MONTHS["sept"] = 9
_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"  # noqa: E501

_NUMBERED = re.compile(r"^\s*(\d{1,4})\s*[.):]\s*(?=\S)(.*)$", re.S)
_LETTER = re.compile(r"^\s*\(?([A-Z]{1,2})\s*[.):]?\s*$")
_BULLET = re.compile(r"^\s*[\u2022\u00b7\u25aa\u25cf\u2013*\-o]\s+")


def numbered(text: str) -> tuple[str | None, str]:
    """("27", "By July ensure...") from "27. By July ensure..."; (None, text) otherwise."""
    match = _NUMBERED.match(text)
    if match is None:
        return None, text
    return match.group(1), match.group(2).strip()


# A numbered item after the first: at the start of a line (after a bullet, if any) or after a
# bullet within a line, "2. " or "2) " then a word: not "reduce by 2. Then", "1. 2019".
_ITEM = re.compile(
    r"(?:^[ \t]*(?:[\u2022\u00b7\u25aa\u25cf\u2013*\-][ \t]*)?|[\u2022\u00b7\u25aa\u25cf][ \t]*)"
    r"(\d{1,3})[.)][ \t]+(?=[^\W\d_]|[\"'(\u2018\u201c])",
    re.M,
)


def numbered_items(text: str) -> tuple[str, list[tuple[str, str]]]:
    """A cell holding several numbered actions, "1. By June do x\n2. By July do y": (the text
    before the first number, [("1", "By June do x"), ("2", "By July do y")]). The first number
    starts the cell (as ``numbered`` reads it) or a line; each next item is the next number
    (2 after 1) starting a line, or after a bullet: any other number is part of the text
    ("see action 5.", "reduce by 2. Then", "1. 2019"). No number: (text, [])."""
    first, _ = numbered(text)
    found = [(match.start(), match.end(), int(match.group(1))) for match in _ITEM.finditer(text)]
    if first is not None:
        starts = [(0, -1, int(first))]
        found = [item for item in found if item[0] > 0]
    elif found:
        starts, found = [found[0]], found[1:]
    else:
        return text, []
    for start, end, number in found:
        if number == starts[-1][2] + 1 and start >= starts[-1][1]:
            starts.append((start, end, number))
    items: list[tuple[str, str]] = []
    for index, (_, end, number) in enumerate(starts):
        stop = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        body = numbered(text[:stop])[1] if end < 0 else text[end:stop].strip()
        items.append((str(number), body))
    return text[: starts[0][0]].strip(), items


def letter(text: str) -> str | None:
    """A recommendation's letter, "A." or "(B)" -> "A", "B"; None if the cell is not one."""
    match = _LETTER.match(text)
    return match.group(1) if match else None


def is_bullet(text: str) -> bool:
    return bool(_BULLET.match(text))


# --- due dates in words ----------------------------------------------------------------------

_DUE_WORDS = re.compile(
    rf"\b(by the end of|by end of|by the end|by|before|from|during)\s+{_MONTH}\b\.?"
    r"(?:\s+(\d{4}))?",
    re.I,
)


@dataclass(frozen=True)
class DueInWords:
    words: str  # as written: "By the end of March"
    month: date  # the month, as its first day
    starts: bool  # "From January 2019": when it starts, not when it is due
    year_given: bool


def due_in_words(text: str, year: int) -> DueInWords | None:
    """The first "By ...", "By the end of ...", "Before ...", "From ..." month in the text,
    in the plan's year unless the words give one."""
    match = _DUE_WORDS.search(text[:400])
    if match is None:
        return None
    month = MONTHS[_month_key(match.group(2))]
    given = match.group(3)
    words = " ".join(match.group(0).rstrip(".").split())
    return DueInWords(
        words,
        date(int(given) if given else year, month, 1),
        match.group(1).lower() == "from",
        bool(given),
    )


# --- links ----------------------------------------------------------------------------------

# An action's number: "7", or a provider plan's "1.2" (not "5." at the end of a sentence).
_NUMBER = r"\d{1,4}(?:\.\d{1,3}){0,2}"
_LINK = re.compile(
    r"\b(linked (?:to|with)|links? (?:to|with)|also covered (?:by|in|under)|covered (?:by|in)|"
    rf"see(?: also)?)\s+((?:actions?\s*)?{_NUMBER}(?:\s*(?:,|and|&|or)\s*(?:actions?\s*)?"
    rf"{_NUMBER})*)",
    re.I,
)


def links_in(text: str) -> list[tuple[str, str]]:
    """[(the action number, "linked_to" | "covered_by")] named in the text, in order."""
    found: list[tuple[str, str]] = []
    for match in _LINK.finditer(text):
        kind = "covered_by" if "covered" in match.group(1).lower() else "linked_to"
        for number in re.findall(_NUMBER, match.group(2)):
            if (number, kind) not in found:
                found.append((number, kind))
    return found


def is_only_link(text: str) -> bool:
    """ "Also covered by action 5." alone: a note on the action above, not an action."""
    stripped = _LINK.sub("", text).strip(" .;,\n")
    return bool(links_in(text)) and not stripped


# --- leads handed over ----------------------------------------------------------------------

_HANDOVER = re.compile(r"\s*(?:>|->|\u2192|=>)\s*")


def handover(name: str) -> tuple[str, list[str]]:
    """ "Phil Corrigan > Tim Ryley": (the current lead, [the earlier ones, oldest first])."""
    parts = [part.strip() for part in _HANDOVER.split(name) if part.strip()]
    if len(parts) < 2:
        return name, []
    return parts[-1], parts[:-1]


# --- reported RAG and dates -----------------------------------------------------------------

RAG_WORDS: dict[str, Rag] = {
    "r": Rag.red,
    "red": Rag.red,
    "a": Rag.amber,
    "amber": Rag.amber,
    "g": Rag.green,
    "green": Rag.green,
    "b": Rag.blue,
    "blue": Rag.blue,
    "grey": Rag.grey,
    "gray": Rag.grey,
}
_RAG_DATED = re.compile(r"^(.*?)\s*\((.+)\)\s*$")


@dataclass(frozen=True)
class DateFound:
    day: date
    precision: str  # "day" | "month"


_DAY = re.compile(r"\b(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})\b")
_WRITTEN_DAY = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+(\d{{4}})\b", re.I)
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\.?[\s\-,]+'?(\d{{4}}|\d{{2}})\b", re.I)


def date_in(text: str) -> DateFound | None:
    """The first date in a line of text: "30/09/2019", "30 September 2019" (a day),
    "September 2019", "Sept 2019", "Sep-19" (a month)."""
    try:
        if match := _DAY.search(text):
            day, month, year = (int(part) for part in match.groups())
            return DateFound(date(year, month, day), "day")
        if match := _WRITTEN_DAY.search(text):
            month = MONTHS[_month_key(match.group(2))]
            return DateFound(date(int(match.group(3)), month, int(match.group(1))), "day")
        if match := _MONTH_YEAR.search(text):
            year_text = match.group(2)
            year = int(year_text) if len(year_text) == 4 else 2000 + int(year_text)
            return DateFound(date(year, MONTHS[_month_key(match.group(1))], 1), "month")
    except ValueError:
        return None
    return None


def _month_key(word: str) -> str:
    lowered = word.lower().rstrip(".")
    return "sept" if lowered.startswith("sept") else lowered[:3]


def reported_rag(text: str) -> tuple[Rag | None, DateFound | None]:
    """ "Amber" -> (amber, None); "Amber (Sep 2019)" -> (amber, September 2019)."""
    words = " ".join(text.split()).lower().rstrip(".")
    if words in RAG_WORDS:
        return RAG_WORDS[words], None
    match = _RAG_DATED.match(words)
    if match and match.group(1).rstrip(".") in RAG_WORDS:
        return RAG_WORDS[match.group(1).rstrip(".")], date_in(match.group(2))
    return None, None


def month_label(day: date, precision: str | None) -> str:
    """ "Sep 2019" for a month, "30/09/2019" for a day."""
    return f"{day:%b %Y}" if precision == "month" else f"{day:%d/%m/%Y}"


def last_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])
