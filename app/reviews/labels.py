"""Scale labels: read from the one `scale_labels` table, and set beside every score."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ScaleLabel
from app.reviews.schemas import Scales, ScaleValue

LabelTable = dict[str, dict[int, str]]

# Seed data that only a migration changes: read once per process.
_loaded: list[ScaleLabel] | None = None


async def _rows(session: AsyncSession) -> list[ScaleLabel]:
    global _loaded
    if _loaded is None:
        rows = await session.scalars(
            select(ScaleLabel).order_by(ScaleLabel.scale, ScaleLabel.value)
        )
        _loaded = list(rows.all())
    return _loaded


async def label_table(session: AsyncSession) -> LabelTable:
    table: LabelTable = {}
    for row in await _rows(session):
        table.setdefault(row.scale, {})[row.value] = row.label
    return table


async def scales(session: AsyncSession) -> Scales:
    grouped: dict[str, list[ScaleValue]] = {}
    for row in await _rows(session):
        grouped.setdefault(row.scale, []).append(
            ScaleValue(value=row.value, label=row.label, description=row.description)
        )
    return Scales.model_validate(grouped)


def labelled(detail: dict[str, Any], labels: LabelTable) -> dict[str, Any]:
    """The stored instrument with a label beside each score."""
    out = dict(detail)
    care, records, avoidability = (
        labels.get("care_rating", {}),
        labels.get("records_quality", {}),
        labels.get("avoidability", {}),
    )
    if "phases" in out:
        out["phases"] = [
            {**phase, "rating_label": care.get(phase["rating"])} for phase in out["phases"]
        ]
    if out.get("quality_of_records") is not None:
        out["quality_of_records_label"] = records.get(out["quality_of_records"])
    if out.get("avoidability") is not None:
        out["avoidability_label"] = avoidability.get(out["avoidability"])
    return out
