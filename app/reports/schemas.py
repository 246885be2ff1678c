"""The JSON shape of every report, for the OpenAPI document (the renderers build it from
app.reports.model)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class PeriodOut(BaseModel):
    start: date = Field(description="First local date counted.")
    end: date = Field(description="Last local date counted (included).")
    label: str
    kind: str = Field(description="financial_year, quarter, month or range.")


class ColumnOut(BaseModel):
    key: str
    label: str
    kind: str = Field(description="text, int, number, percent (0-100, one decimal), date, month.")
    definition: str | None = Field(description="How the figure is counted.")


class TableOut(BaseModel):
    key: str
    title: str
    note: str | None
    columns: list[ColumnOut]
    rows: list[dict[str, Any]] = Field(description="One object per row, keyed by column key.")


class ReportOut(BaseModel):
    key: str
    title: str
    period: PeriodOut
    filters: dict[str, Any] = Field(description="The filters applied; null where not given.")
    generated_at: datetime
    notes: list[str]
    tables: list[TableOut]
