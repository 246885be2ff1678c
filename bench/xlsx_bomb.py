"""Peak memory of reading an uploaded spreadsheet (issue 11, defect 3): a decompression bomb
against a normal plan.

    python bench/xlsx_bomb.py [--bomb-mib 500] [--unguarded-mib 100] [--actions 5000]

Each case runs in a fresh child process (so its ``ru_maxrss`` is its own) and calls the
importer's ``interpret`` (what ``POST /v1/action-plans/import?dry_run=true`` does in its
worker thread, without the HTTP and database around it), reporting the process's peak resident
memory (``resource.getrusage``), the peak Python allocation (``tracemalloc``, a second run)
and the time:

- ``normal``: a 5,000-action provider plan as an XLSX (bench/import_export.py's generator);
- ``bomb``: an XLSX whose shared strings unzip to ``--bomb-mib`` MiB (about 500 KB on disk),
  read with the default limits (LFD_SPREADSHEET_*);
- ``unguarded``: a ``--unguarded-mib`` MiB bomb with every limit raised out of the way, which is
  what the service did before the limits (kept smaller than the reported 500 MiB so the
  machine survives it).
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import importlib.util
import io
import json
import resource
import subprocess
import time
import tracemalloc
import zipfile
from datetime import date
from typing import Any

from app.actions.importer import interpret
from app.actions.limits import SpreadsheetLimits
from app.errors import ProblemError

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
UNLIMITED = SpreadsheetLimits(
    max_uncompressed_bytes=10**12,
    max_compression_ratio=10**9,
    max_part_bytes=10**12,
    max_entries=10**9,
    max_rows=10**9,
    max_cells=10**12,
    max_cell_chars=10**9,
    max_text_chars=10**12,
)


def bomb(mib: int) -> bytes:
    """A workbook whose shared strings part is ``mib`` MiB of 1,000-character strings."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{CT}.sharedStrings+xml"/>'
            "</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Target="xl/workbook.xml" '
            f'Type="{DOC}/officeDocument"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN}" xmlns:r="{DOC}"><sheets>'
            '<sheet name="Plan" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{PKG}">'
            f'<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="{DOC}/worksheet"/>'
            f'<Relationship Id="rId2" Target="sharedStrings.xml" Type="{DOC}/sharedStrings"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            f'<worksheet xmlns="{MAIN}"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c>'
            "</row></sheetData></worksheet>",
        )
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(f'<sst xmlns="{MAIN}">'.encode())
            item = b"<si><t>" + b"A" * 1000 + b"</t></si>"
            piece = item * (1_048_576 // len(item))
            for _ in range(mib):
                part.write(piece)
            part.write(b"</sst>")
    return out.getvalue()


def normal(actions: int) -> bytes:
    spec = importlib.util.spec_from_file_location(
        "bench_import_export", os.path.join(_HERE, "import_export.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data: bytes = module.as_xlsx(module.plan_rows(actions, 1, "bomb-bench"))
    return data


def run_case(case: str, args: argparse.Namespace) -> dict[str, Any]:
    """In the child process: build the file, read it, measure."""
    if case == "normal":
        data, limits = normal(args.actions), SpreadsheetLimits()
    elif case == "bomb":
        data, limits = bomb(args.bomb_mib), SpreadsheetLimits()
    else:
        data, limits = bomb(args.unguarded_mib), UNLIMITED
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def read() -> str:
        try:
            plan = interpret(
                data, layout=None, title=None, filename=None, today=date(2026, 12, 2), limits=limits
            )
        except ProblemError as error:
            return f"{error.status} {error.slug}"
        return f"read: {plan.action_count} actions"

    started = time.perf_counter()
    outcome = read()
    seconds = time.perf_counter() - started
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    read()
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "case": case,
        "file_kib": round(len(data) / 1024),
        "outcome": outcome,
        "seconds": round(seconds, 2),
        "rss_before_mib": round(base / 1024, 1),
        "rss_peak_mib": round(peak_rss / 1024, 1),
        "python_peak_mib": round(traced / 1_048_576, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bomb-mib", type=int, default=500)
    parser.add_argument("--unguarded-mib", type=int, default=100)
    parser.add_argument("--actions", type=int, default=5000)
    parser.add_argument("--cases", default="normal,bomb,unguarded")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args)))
        return
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print("| case | file | outcome | time | peak RSS (start) | peak Python allocation |")
    print("|---|---:|---|---:|---:|---:|")
    for case in args.cases.split(","):
        command = [sys.executable, __file__, "--child", case]
        command += ["--bomb-mib", str(args.bomb_mib), "--unguarded-mib", str(args.unguarded_mib)]
        command += ["--actions", str(args.actions)]
        found = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
        print(
            f"| {case} | {found['file_kib']:,} KiB | {found['outcome']} | {found['seconds']} s "
            f"| {found['rss_peak_mib']} MiB ({found['rss_before_mib']}) "
            f"| {found['python_peak_mib']} MiB |"
        )


if __name__ == "__main__":
    main()
