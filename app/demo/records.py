"""The demo's history bundle (docs/history.md): one record per synthetic death, with its
screening, its referrals and reviews and its findings, as things stood on the demo's today."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from app.config import Settings
from app.demo.care import CareContext, CareLedger, care_of
from app.demo.draw import Ledger, demo_window, financial_year, synthetic_death
from app.history.bundle import FORMAT
from app.referrals.service import rule_config


def synthetic_records(
    settings: Settings, seed: int, deaths: int, at: datetime
) -> Iterator[dict[str, Any]]:
    """The history records of deaths 0 to ``deaths - 1`` of ``seed``, over the three financial
    years up to ``at``. Each death is drawn after the ones before it, so death ``i`` is the
    same whatever the number asked for (for the same ``at``)."""
    window = demo_window(at)
    config = rule_config(settings)
    context = CareContext(
        at=at.astimezone(UTC),
        first_year=financial_year(window[0]),
        due_days=settings.due_days,
        config=config,
    )
    ledger, care = Ledger(), CareLedger()
    for index in range(deaths):
        record = synthetic_death(seed, index, window, config, ledger)
        referrals, findings = care_of(seed, index, record, context, care)
        yield {"format": FORMAT, **record, "referrals": referrals, "findings": findings}


def write_bundle(path: Path, records: Iterator[dict[str, Any]]) -> tuple[str, int, int]:
    """The records as JSON Lines at ``path``; their sha256, size in bytes and lines."""
    digest = hashlib.sha256()
    size = lines = 0
    with path.open("wb") as handle:
        for record in records:
            line = orjson.dumps(record, option=orjson.OPT_UTC_Z) + b"\n"
            handle.write(line)
            digest.update(line)
            size += len(line)
            lines += 1
    return digest.hexdigest(), size, lines
