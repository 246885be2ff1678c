"""The example bundle (examples/history-bundle.jsonl) imports cleanly, and the worked example
in docs/history.md is its first record, so that neither can rot."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.cli import main
from app.config import get_settings
from app.history.csvset import csv_to_bundle
from app.history.validation import parse_line
from tests.conftest import Api

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "history-bundle.jsonl"
PLAN_EXAMPLE = ROOT / "examples" / "history-action-plan.jsonl"
DOC = ROOT / "docs" / "history.md"


async def test_the_example_bundle_imports_cleanly(api: Api) -> None:
    response = await api.post(
        "/v1/history/imports",
        content=EXAMPLE.read_bytes(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202, response.text
    for _ in range(2000):
        job = (await api.get(response.headers["Location"])).json()
        if job["status"] not in {"queued", "running"}:
            break
        await asyncio.sleep(0.01)
    assert job["status"] == "completed", job
    assert job["refused"] == 0, job["problems"]
    # Created the first time; unchanged when the database already holds them.
    assert job["created"] + job["unchanged"] == 3
    # The example action plan answers the first record's finding: it goes in after it.
    plan = await api.post(
        "/v1/history/imports",
        content=PLAN_EXAMPLE.read_bytes(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert plan.status_code == 202, plan.text
    for _ in range(2000):
        job = (await api.get(plan.headers["Location"])).json()
        if job["status"] not in {"queued", "running"}:
            break
        await asyncio.sleep(0.01)
    assert (job["status"], job["refused"]) == ("completed", 0), job["problems"]
    assert job["created"] + job["unchanged"] == 1


def test_the_worked_example_in_the_docs_is_the_example_bundles_first_record() -> None:
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), flags=re.DOTALL)
    worked = [json.loads(block) for block in blocks if '"format": "lfd-history/1"' in block]
    first = json.loads(EXAMPLE.read_text().splitlines()[0])
    assert worked[0] == first


CSV_SET = ROOT / "examples" / "history-csv"


def test_the_csv_set_stands_for_the_same_records_as_the_bundle(tmp_path: Path) -> None:
    """examples/history-csv/ (deaths, referrals, reviews, overrides, findings) is the example
    bundle as spreadsheets: the records it becomes validate to the same as the bundle's."""
    converted = csv_to_bundle(CSV_SET, tmp_path)
    assert converted == csv_to_bundle(CSV_SET, tmp_path)  # once per set: a rerun resumes it
    moment = datetime.now(UTC)
    from_csv = [
        parse_line(line, n, moment) for n, line in enumerate(converted.read_bytes().splitlines(), 1)
    ]
    from_jsonl = [
        parse_line(line, n, moment) for n, line in enumerate(EXAMPLE.read_bytes().splitlines(), 1)
    ]
    assert [c.errors for c in from_csv] == [[], [], []]
    assert [c.sha256 for c in from_csv] == [c.sha256 for c in from_jsonl]


def test_a_bad_cell_is_refused_with_a_pointer_into_its_record(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    for name in ("deaths.csv", "referrals.csv", "reviews.csv"):
        (folder / name).write_text((CSV_SET / name).read_text())
    deaths = (
        (folder / "deaths.csv")
        .read_text()
        .replace(",true,true,true,false,false,", ",maybe,true,true,false,false,", 1)
    )
    (folder / "deaths.csv").write_text(deaths)
    converted = csv_to_bundle(folder, tmp_path)
    first = parse_line(converted.read_bytes().splitlines()[0], 1, datetime.now(UTC))
    assert [e["pointer"] for e in first.errors] == ["/screening/records_reviewed"]


async def test_lfd_history_import_takes_a_csv_set(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LFD_DATABASE_URL", database_url)
    monkeypatch.setenv("LFD_HISTORY_SPOOL_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        code = await asyncio.to_thread(main, ["history", "import", str(CSV_SET)])
    finally:
        get_settings.cache_clear()
    assert code == 0
    out = capsys.readouterr().out
    # Created, or unchanged when the JSON Lines example (the same records) came in first.
    assert re.search(r"completed: (\d) created, 0 updated, (\d) unchanged, 0 refused", out)
    created, unchanged = map(int, re.findall(r"(\d) created, 0 updated, (\d) unchanged", out)[0])
    assert created + unchanged == 3
