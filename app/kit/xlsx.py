"""Text cells for the XLSX writers (action plan exports, reports).

A spreadsheet cell cannot hold most C0 control characters (XML 1.0 forbids them): openpyxl
raises on them, which would turn an export of text someone once pasted into a 500. They carry
nothing a reader could see, so they are dropped. And a text cell is always text: a value that
starts with `=` is never written as a formula (spreadsheet formula injection).
"""

from __future__ import annotations

from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE


def spreadsheet_text(text: str) -> str:
    """The text without the characters a spreadsheet cell cannot hold."""
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def text_cell(sheet: Any, text: str) -> Any:
    cell = WriteOnlyCell(sheet, value=spreadsheet_text(text))
    cell.data_type = "s"
    return cell
