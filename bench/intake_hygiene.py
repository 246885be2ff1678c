"""What issue 11's intake checks cost per request, in process (no server, no database).

For a typical screening body (the README's walk-through shape) and a batch of 100 of them:

- the duplicate-member check (a second parse of the body with an object_pairs_hook, and the
  walk of the result): app.kit.json_body;
- validating the body into the request models, with the text rules of app.kit.text (NFC,
  controls, bidi, zero-width) against the same models without them;
- one keyed ETag (app.kit.etag, HMAC-SHA256).

    .venv/bin/python -m bench.intake_hygiene [--repeat 2000]

Prints the median microseconds per operation over `--repeat` runs (after a warm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from app.kit import schemas as kit_schemas
from app.kit.etag import derive_etag_key, etag, use_etag_key
from app.kit.json_body import _first_duplicate, _object
from app.screenings.intake import ScreeningBatch, ScreeningCreate
from tests.factories import screening_body


def median_us(work: Callable[[], Any], repeat: int) -> float:
    for _ in range(max(10, repeat // 20)):
        work()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    repeat = parser.parse_args().repeat
    one = json.dumps(screening_body()).encode()
    batch = json.dumps({"screenings": [screening_body() for _ in range(100)]}).encode()
    use_etag_key(derive_etag_key(b"k" * 40))
    death_id = uuid.uuid4()
    print(f"loadavg {os.getloadavg()}, body {len(one)} B, batch {len(batch)} B")
    rows: list[tuple[str, float]] = []
    for name, raw in (("one screening", one), ("batch of 100", batch)):
        rows.append(
            (
                f"{name}: json.loads (FastAPI's parse)",
                median_us(lambda raw=raw: json.loads(raw), repeat),
            )
        )
        rows.append(
            (
                f"{name}: duplicate-member check",
                median_us(
                    lambda raw=raw: _first_duplicate(json.loads(raw, object_pairs_hook=_object)),
                    repeat,
                ),
            )
        )
    document = json.loads(one)
    batch_document = json.loads(batch)
    with_rules = median_us(lambda: ScreeningCreate.model_validate(document), repeat)
    with_rules_batch = median_us(
        lambda: [ScreeningCreate.model_validate(item) for item in batch_document["screenings"]],
        max(50, repeat // 20),
    )
    original = kit_schemas._cleaned
    kit_schemas._cleaned = lambda value, name: value  # type: ignore[assignment]
    try:
        ScreeningCreate.model_rebuild(force=True)
        ScreeningBatch.model_rebuild(force=True)
        without = median_us(lambda: ScreeningCreate.model_validate(document), repeat)
        without_batch = median_us(
            lambda: [ScreeningCreate.model_validate(i) for i in batch_document["screenings"]],
            max(50, repeat // 20),
        )
    finally:
        kit_schemas._cleaned = original
    rows.append(("one screening: model validation with the text rules", with_rules))
    rows.append(("one screening: model validation, text rules a no-op", without))
    rows.append(("batch of 100: model validation with the text rules", with_rules_batch))
    rows.append(("batch of 100: model validation, text rules a no-op", without_batch))
    rows.append(("one keyed ETag", median_us(lambda: etag(death_id, 7, "3-1-0"), repeat)))
    for name, value in rows:
        print(f"{name:60s} {value:10.1f} us")


if __name__ == "__main__":
    main()
