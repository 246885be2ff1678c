"""The example bundle (examples/history-bundle.jsonl) imports cleanly, and the worked example
in docs/history.md is its first record, so that neither can rot."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from tests.conftest import Api

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "history-bundle.jsonl"
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


def test_the_worked_example_in_the_docs_is_the_example_bundles_first_record() -> None:
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), flags=re.DOTALL)
    worked = [json.loads(block) for block in blocks if '"format": "lfd-history/1"' in block]
    first = json.loads(EXAMPLE.read_text().splitlines()[0])
    assert worked[0] == first
