"""Limits on what an uploaded spreadsheet may make the service read (docs/security.md,
"Spreadsheet uploads").

An XLSX is a ZIP of XML parts. A few hundred kilobytes can hold hundreds of megabytes of XML
(a "decompression bomb"), and openpyxl, even in read-only mode, loads the whole shared-strings
part into memory before the first row is read. So before openpyxl opens a workbook, ``check_xlsx``
inspects it without inflating more than one 64 KiB chunk at a time:

1. the ZIP's end record: at most ``max_entries`` parts (read before the central directory is);
2. every part's declared size: their sum at most ``max_uncompressed_bytes``, and a part over
   1 MiB compressed at most ``max_compression_ratio`` times. A part cannot inflate to more than
   it declares: Python's zipfile stops at the declared size and then fails its CRC check;
3. every XML part other than worksheets and the shared strings (styles, workbook, theme...,
   which openpyxl parses whole) at most ``max_part_bytes``;
4. the shared strings and every worksheet streamed through expat (a DTD refused, so no entity
   expansion): at most ``max_cells`` strings and cells, ``max_rows`` rows, ``max_text_chars``
   characters of text, no cell longer than ``max_cell_chars`` and no row of more than
   16,384 cells (Excel's own width).

CSV text is held to the same row, cell and text limits as it is read (``CsvBudget``).
"""

from __future__ import annotations

import struct
import xml.parsers.expat
import zipfile
from dataclasses import dataclass
from typing import IO, Any

from app.config import Settings
from app.errors import PayloadTooLarge, ProblemError, ValidationFailed

EXCEL_MAX_COLUMNS = 16_384
RATIO_FROM_BYTES = 1_048_576  # smaller parts may compress as well as they like
CHUNK = 65_536
_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_SHARED_STRINGS = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_XML_PART = (".xml", ".rels", ".vml")


class SpreadsheetTooLarge(PayloadTooLarge):
    slug, title = "spreadsheet-too-large", "The spreadsheet holds more than the service reads"


class SpreadsheetCellTooLong(ValidationFailed):
    slug, title = "spreadsheet-cell-too-long", "A cell of the spreadsheet is too long"


class SpreadsheetMalformed(ProblemError):
    """As app.actions.spreadsheets.UnreadableSpreadsheet: the same 400 a damaged file gets."""

    status, slug, title = 400, "unreadable-spreadsheet", "The file is not a readable spreadsheet"


@dataclass(frozen=True)
class SpreadsheetLimits:
    """What one uploaded spreadsheet may hold; the defaults are the settings' defaults."""

    max_uncompressed_bytes: int = 104_857_600
    max_compression_ratio: int = 100
    max_part_bytes: int = 4_194_304
    max_entries: int = 1_000
    max_rows: int = 100_000
    max_columns: int = 60
    max_cells: int = 2_000_000
    max_cell_chars: int = 32_767
    max_text_chars: int = 20_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> SpreadsheetLimits:
        return cls(
            max_uncompressed_bytes=settings.spreadsheet_max_uncompressed_bytes,
            max_compression_ratio=settings.spreadsheet_max_compression_ratio,
            max_part_bytes=settings.spreadsheet_max_part_bytes,
            max_entries=settings.spreadsheet_max_entries,
            max_rows=settings.spreadsheet_max_rows,
            max_columns=settings.spreadsheet_max_columns,
            max_cells=settings.spreadsheet_max_cells,
            max_cell_chars=settings.spreadsheet_max_cell_chars,
            max_text_chars=settings.spreadsheet_max_text_chars,
        )


def _too_large(what: str, setting: str) -> SpreadsheetTooLarge:
    return SpreadsheetTooLarge(
        f"The spreadsheet {what}, more than the service reads (LFD_{setting.upper()}). Nothing "
        "was read or stored. Split the plan into smaller files, or remove what is not part of it."
    )


def _cell_too_long(limit: int, where: str) -> SpreadsheetCellTooLong:
    return SpreadsheetCellTooLong(
        f"A cell {where} holds more than {limit:,} characters (Excel's own limit is 32,767; "
        "LFD_SPREADSHEET_MAX_CELL_CHARS). Nothing was stored: shorten it and retry."
    )


# --- the ZIP -------------------------------------------------------------------------------


def _entry_count(data: bytes) -> int | None:
    """The part count in the ZIP's end-of-central-directory record, read before zipfile
    builds an object for every part; None if the record is missing (zipfile then fails)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    count: int = struct.unpack_from("<H", data, at + 10)[0]
    return count


def check_xlsx(archive: zipfile.ZipFile, limits: SpreadsheetLimits) -> None:
    """Refuse a workbook that would make openpyxl read more than the limits, before it reads
    anything. Raises 413 ``spreadsheet-too-large``, 422 ``spreadsheet-cell-too-long`` or 400
    ``unreadable-spreadsheet``."""
    infos = archive.infolist()
    total = 0
    for info in infos:
        total += info.file_size
        if total > limits.max_uncompressed_bytes:
            raise _too_large(
                f"unzips to more than {limits.max_uncompressed_bytes:,} bytes",
                "spreadsheet_max_uncompressed_bytes",
            )
        if (
            info.file_size > RATIO_FROM_BYTES
            and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1)
        ):
            raise _too_large(
                f"has a part compressed more than {limits.max_compression_ratio} to 1",
                "spreadsheet_max_compression_ratio",
            )
    types = _content_types(archive, limits)
    budget = _Budget(limits)
    for info in infos:
        kind = types.get(info.filename.lstrip("/"))
        if kind == _SHARED_STRINGS:
            _scan(archive, info, _SharedStrings(budget))
        elif kind == _WORKSHEET:
            _scan(archive, info, _Worksheet(budget))
        elif info.filename.lower().endswith(_XML_PART) and info.file_size > limits.max_part_bytes:
            raise _too_large(
                f"has a part ({info.filename}) larger than {limits.max_part_bytes:,} bytes",
                "spreadsheet_max_part_bytes",
            )


def zip_entries_allowed(data: bytes, limits: SpreadsheetLimits) -> None:
    count = _entry_count(data)
    if count is not None and (count == 0xFFFF or count > limits.max_entries):
        raise _too_large(f"has more than {limits.max_entries:,} parts", "spreadsheet_max_entries")


def _content_types(archive: zipfile.ZipFile, limits: SpreadsheetLimits) -> dict[str, str]:
    """Part name -> content type, from [Content_Types].xml (as openpyxl finds the parts)."""
    try:
        info = archive.getinfo("[Content_Types].xml")
    except KeyError:
        raise SpreadsheetMalformed("The ZIP has no [Content_Types].xml: not an XLSX.") from None
    if info.file_size > limits.max_part_bytes:
        raise _too_large(
            f"has a part ([Content_Types].xml) larger than {limits.max_part_bytes:,} bytes",
            "spreadsheet_max_part_bytes",
        )
    found: dict[str, str] = {}

    def start(name: str, attributes: dict[str, str]) -> None:
        if name.rsplit("}", 1)[-1] == "Override" and "PartName" in attributes:
            found[attributes["PartName"].lstrip("/")] = attributes.get("ContentType", "")

    _scan(archive, info, _Handlers(start=start))
    return found


# --- streaming the XML parts ---------------------------------------------------------------


@dataclass
class _Budget:
    limits: SpreadsheetLimits
    cells: int = 0
    rows: int = 0
    text: int = 0

    def cell(self) -> None:
        self.cells += 1
        if self.cells > self.limits.max_cells:
            raise _too_large(
                f"holds more than {self.limits.max_cells:,} cells and strings",
                "spreadsheet_max_cells",
            )

    def row(self) -> None:
        self.rows += 1
        if self.rows > self.limits.max_rows:
            raise _too_large(
                f"holds more than {self.limits.max_rows:,} rows", "spreadsheet_max_rows"
            )

    def chars(self, count: int) -> None:
        self.text += count
        if self.text > self.limits.max_text_chars:
            raise _too_large(
                f"holds more than {self.limits.max_text_chars:,} characters of text",
                "spreadsheet_max_text_chars",
            )


class _Handlers:
    def __init__(self, start: Any = None, end: Any = None, text: Any = None) -> None:
        self.start, self.end, self.text = start, end, text


class _SharedStrings(_Handlers):
    """Counts the shared strings and their lengths (``<si>`` holds ``<t>`` runs)."""

    def __init__(self, budget: _Budget) -> None:
        super().__init__(self._start, self._end, self._text)
        self.budget = budget
        self.length = 0
        self.in_text = False

    def _start(self, name: str, _attributes: dict[str, str]) -> None:
        local = name.rsplit("}", 1)[-1]
        if local == "si":
            self.budget.cell()
            self.length = 0
        self.in_text = local == "t"

    def _end(self, name: str) -> None:
        self.in_text = False

    def _text(self, data: str) -> None:
        if self.in_text:
            self.length += len(data)
            self.budget.chars(len(data))
            if self.length > self.budget.limits.max_cell_chars:
                raise _cell_too_long(self.budget.limits.max_cell_chars, "(a shared string)")


class _Worksheet(_Handlers):
    """Counts rows, cells per row and the text of each cell's value or inline string."""

    def __init__(self, budget: _Budget) -> None:
        super().__init__(self._start, self._end, self._text)
        self.budget = budget
        self.row_cells = 0
        self.length = 0
        self.in_value = False

    def _start(self, name: str, _attributes: dict[str, str]) -> None:
        local = name.rsplit("}", 1)[-1]
        if local == "row":
            self.budget.row()
            self.row_cells = 0
        elif local == "c":
            self.budget.cell()
            self.row_cells += 1
            self.length = 0
            if self.row_cells > EXCEL_MAX_COLUMNS:
                raise _too_large(
                    f"has a row of more than {EXCEL_MAX_COLUMNS:,} cells",
                    "spreadsheet_max_cells",
                )
        self.in_value = local in ("v", "t", "f")

    def _end(self, name: str) -> None:
        self.in_value = False

    def _text(self, data: str) -> None:
        if self.in_value:
            self.length += len(data)
            self.budget.chars(len(data))
            if self.length > self.budget.limits.max_cell_chars:
                raise _cell_too_long(self.budget.limits.max_cell_chars, "of the worksheet")


def _refuse_dtd(*_: Any) -> None:
    raise SpreadsheetMalformed("The workbook declares a DTD: an XLSX never does.")


def _scan(archive: zipfile.ZipFile, info: zipfile.ZipInfo, handlers: _Handlers) -> None:
    parser = xml.parsers.expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    if handlers.start is not None:
        parser.StartElementHandler = handlers.start
    if handlers.end is not None:
        parser.EndElementHandler = handlers.end
    if handlers.text is not None:
        parser.CharacterDataHandler = handlers.text
    try:
        source: IO[bytes]
        with archive.open(info) as source:
            while chunk := source.read(CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except xml.parsers.expat.ExpatError:
        raise SpreadsheetMalformed(
            f"The workbook's part {info.filename} is not well-formed XML."
        ) from None
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError):
        raise SpreadsheetMalformed(
            f"The workbook's part {info.filename} cannot be unzipped (damaged, encrypted, or "
            "larger than it declares)."
        ) from None


# --- CSV -----------------------------------------------------------------------------------


class CsvBudget:
    """The same row, cell and text limits over the records of a CSV file, as they are read."""

    def __init__(self, limits: SpreadsheetLimits) -> None:
        self.budget = _Budget(limits)

    def record(self, number: int, record: list[str]) -> None:
        self.budget.row()
        for value in record:
            if value:
                self.budget.cell()
                if len(value) > self.budget.limits.max_cell_chars:
                    raise _cell_too_long(self.budget.limits.max_cell_chars, f"in row {number}")
                self.budget.chars(len(value))
