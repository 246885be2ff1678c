"""Issue 11, defect 3: a small XLSX that unzips to hundreds of megabytes (a decompression bomb)
must be refused before openpyxl reads it, with a 413 and memory kept bounded; and the row,
cell, string and part limits hold for XLSX and CSV alike (docs/security.md, "Spreadsheet
uploads"). The bombs are built here with zipfile, streamed, so they are small on disk and
never whole in the test's memory."""

from __future__ import annotations

import io
import os
import tracemalloc
import zipfile
from typing import Any

from openpyxl.utils import get_column_letter
from sqlalchemy import func, select

from app.auth.scopes import Scope
from app.models import ActionPlan

IMPORT = "/v1/action-plans/import"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"

CONTENT_TYPES = f"""<?xml version="1.0" encoding="UTF-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT}.worksheet+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="{CT}.sharedStrings+xml"/>
</Types>"""
ROOT_RELS = f"""<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="{RELS}"><Relationship Id="rId1" Target="xl/workbook.xml"
 Type="{DOC_RELS}/officeDocument"/></Relationships>"""
WORKBOOK = f"""<?xml version="1.0" encoding="UTF-8"?>
<workbook xmlns="{MAIN}" xmlns:r="{DOC_RELS}"><sheets>
<sheet name="Plan" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WORKBOOK_RELS = f"""<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="{RELS}">
<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="{DOC_RELS}/worksheet"/>
<Relationship Id="rId2" Target="sharedStrings.xml" Type="{DOC_RELS}/sharedStrings"/>
</Relationships>"""


def sheet_xml(rows: list[list[str]], shared_first: bool = True) -> str:
    """A worksheet of inline strings; with ``shared_first`` the first cell is shared string 0."""
    lines = []
    for number, row in enumerate(rows, start=1):
        cells = "".join(
            f'<c r="{get_column_letter(index + 1)}{number}" t="inlineStr">'
            f"<is><t>{value}</t></is></c>"
            for index, value in enumerate(row)
        )
        lines.append(f'<row r="{number}">{cells}</row>')
    first = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>' if shared_first and not rows else ""
    return f'<worksheet xmlns="{MAIN}"><sheetData>{first}{"".join(lines)}</sheetData></worksheet>'


def workbook(
    *,
    shared_string_bytes: int = 0,
    rows: list[list[str]] | None = None,
    extra_parts: dict[str, bytes] | None = None,
    shared_prefix: str = "",
) -> bytes:
    """An XLSX written part by part. The shared strings part is streamed in 1 MiB pieces of
    one repeated 1,000-character string, so a 100 MB part costs a few hundred KB on disk."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet_xml(rows or []))
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0"?>{shared_prefix}<sst xmlns="{MAIN}">'.encode())
            item = b"<si><t>" + b"A" * 1000 + b"</t></si>"
            piece = item * (1_048_576 // len(item))
            written = 0
            while written < shared_string_bytes:
                part.write(piece)
                written += len(piece)
            part.write(b"<si><t>Organisation</t></si></sst>")
        for name, data in (extra_parts or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


async def post(api: Any, data: bytes, media: str = XLSX) -> Any:
    return await api.post(
        IMPORT, content=data, headers={"Content-Type": media}, params={"dry_run": "true"}
    )


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(slug), body
    return body


async def plan_count(database: Any) -> int:
    async with database.transaction() as session:
        count: int = await session.scalar(select(func.count()).select_from(ActionPlan))
    return count


async def test_shared_strings_bomb_is_refused_with_memory_bounded(api: Any, database: Any) -> None:
    bomb = workbook(shared_string_bytes=120 * 1_048_576)
    assert len(bomb) < 1_048_576  # a small upload, well under LFD_UPLOAD_MAX_BYTES
    before = await plan_count(database)
    tracemalloc.start()
    try:
        response = await post(api, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    body = assert_problem(response, 413, "spreadsheet-too-large")
    assert "LFD_SPREADSHEET_MAX_UNCOMPRESSED_BYTES" in body["detail"]
    # Refused from the ZIP's directory: nothing near the 120 MiB was ever inflated.
    assert peak < 16 * 1_048_576, peak
    assert await plan_count(database) == before


async def test_part_compressed_beyond_the_ratio_is_refused(api: Any) -> None:
    # 20 MiB: under the total, but one part compressed about 1,000 to 1.
    response = await post(api, workbook(shared_string_bytes=20 * 1_048_576))
    body = assert_problem(response, 413, "spreadsheet-too-large")
    assert "LFD_SPREADSHEET_MAX_COMPRESSION_RATIO" in body["detail"]


async def test_large_styles_part_is_refused(api: Any) -> None:
    noise = os.urandom(2_500_000).hex().encode()  # incompressible: not the ratio's business
    styles = b'<styleSheet xmlns="' + MAIN.encode() + b'"><!--' + noise + b"--></styleSheet>"
    response = await post(api, workbook(extra_parts={"xl/styles.xml": styles}))
    body = assert_problem(response, 413, "spreadsheet-too-large")
    assert "LFD_SPREADSHEET_MAX_PART_BYTES" in body["detail"]


async def test_zip_of_many_parts_is_refused_before_its_directory_is_read(api: Any) -> None:
    parts = {f"xl/media/pad{index}.bin": b"" for index in range(1_200)}
    response = await post(api, workbook(extra_parts=parts))
    body = assert_problem(response, 413, "spreadsheet-too-large")
    assert "LFD_SPREADSHEET_MAX_ENTRIES" in body["detail"]


async def test_dtd_entity_expansion_is_refused(api: Any) -> None:
    laughs = '<!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    response = await post(api, workbook(shared_prefix=laughs))
    assert_problem(response, 400, "unreadable-spreadsheet")


async def test_row_cell_and_string_limits(app_factory: Any, make_api: Any) -> None:
    _, http = await app_factory(
        spreadsheet_max_rows=20, spreadsheet_max_cells=300, spreadsheet_max_cell_chars=200
    )
    small = await make_api(Scope.admin, client=http)
    header = ["Organisation", "Action reference number", "Actions", "Delivery date", "Status"]

    rows = [header] + [["RR8", str(n), "Do it", "TBC", "1"] for n in range(30)]
    body = assert_problem(await post(small, workbook(rows=rows)), 413, "spreadsheet-too-large")
    assert "LFD_SPREADSHEET_MAX_ROWS" in body["detail"]

    wide = [header + ["x"] * 100 for _ in range(5)]
    body = assert_problem(await post(small, workbook(rows=wide)), 413, "spreadsheet-too-large")
    assert "LFD_SPREADSHEET_MAX_CELLS" in body["detail"]

    long_cell = [header, ["RR8", "1", "x" * 201, "TBC", "1"]]
    assert_problem(await post(small, workbook(rows=long_cell)), 422, "spreadsheet-cell-too-long")

    text = "\r\n".join(",".join(row) for row in rows).encode()
    body = assert_problem(await post(small, text, "text/csv"), 413, "spreadsheet-too-large")
    assert "LFD_SPREADSHEET_MAX_ROWS" in body["detail"]
    text = "\r\n".join(",".join(row) for row in long_cell).encode()
    assert_problem(await post(small, text, "text/csv"), 422, "spreadsheet-cell-too-long")


async def test_a_workbook_within_the_limits_is_read(api: Any) -> None:
    rows = [
        ["Organisation", "Action reference number", "Actions", "Delivery date", "Delivery Status"],
        ["RR8", "1", "Train ward staff", "TBC", "1"],
    ]
    response = await post(api, workbook(rows=rows))
    assert response.status_code == 200, response.text
    assert response.json()["action_count"] == 1
