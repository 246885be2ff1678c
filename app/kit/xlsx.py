"""Text cells for the spreadsheet writers (action plan exports, reports; XLSX and CSV).

A spreadsheet cell cannot hold most C0 control characters (XML 1.0 forbids them): openpyxl
raises on them, which would turn an export of text someone once pasted into a 500. They carry
nothing a reader could see, so they are dropped, and so are the bidirectional embeddings,
overrides and isolates (text stored before the service refused them, or imported from a
spreadsheet), which would show a cell's text in another order than it is.

And a text cell is always text (spreadsheet formula injection). In XLSX it is typed as a
string, so nothing it starts with makes it a formula. In CSV a program decides from the text:
one whose first character (after any spaces) is `=`, `+`, `-`, `@`, a tab, a carriage return
or a line feed, or the fullwidth U+FF1D, U+FF0B, U+FF0D, U+FF20 (which some programs read as the
ASCII ones), is written with a leading apostrophe, as OWASP advises. A plain number written as
text (`-5`, `-12.5`) and a lone `-` or `+` are left as they are: a program reads them as the
number or the sign they are, never as a formula, and numbers themselves (numeric cells) are
not text at all.
"""

from __future__ import annotations

import re
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_CSV_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
"""First characters that can make a CSV cell a formula (the last four: fullwidth = + - @)."""
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def spreadsheet_text(text: str) -> str:
    """The text without the characters a spreadsheet cell cannot hold or should not show."""
    return _BIDI.sub("", ILLEGAL_CHARACTERS_RE.sub("", text))


def may_be_formula(text: str) -> bool:
    """Whether a spreadsheet program could run this CSV cell as a formula."""
    if text[:1] not in FORMULA_START and text.lstrip(" ")[:1] not in FORMULA_START:
        return False  # most cells: no regular expression to run
    return text not in {"-", "+"} and not _PLAIN_NUMBER.fullmatch(text)


def csv_text(text: str) -> str:
    """A text cell for CSV: without control and bidirectional override characters (tab and
    line breaks kept: CSV quotes them), and with a leading apostrophe when a spreadsheet
    program could run it as a formula."""
    if not text.isprintable():  # only then can it hold one of them (most cells do not)
        text = _CSV_UNSAFE.sub("", text)
    return "'" + text if may_be_formula(text) else text


def text_cell(sheet: Any, text: str) -> Any:
    cell = WriteOnlyCell(sheet, value=spreadsheet_text(text))
    cell.data_type = "s"
    return cell
