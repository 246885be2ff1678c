"""A CSV set (deaths.csv, referrals.csv, reviews.csv, and optionally overrides.csv and
findings.csv, joined by source_system + source_reference) turned into the bundle it stands
for, for trusts exporting from spreadsheets (docs/history.md). The bundle is then imported as
any other: the same validation, with pointers into each record as the bundle holds it.

Cells are text: an empty cell is an absent value; `true`/`false` (or yes/no, y/n, 1/0) are
booleans; whole numbers in the numeric columns are numbers; lists are separated by `;`. Anything
else is passed on as written, for validation to refuse with its pointer."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from app.kit.enums import SjrPhase

REQUIRED = ("deaths.csv",)
OPTIONAL = ("referrals.csv", "reviews.csv", "overrides.csv", "findings.csv")
DEATH_COLUMNS = (
    "nhs_number",
    "nhs_number_status",
    "local_patient_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "ethnicity",
    "died_at",
    "place_of_death",
    "site",
    "ward",
    "admitting_specialty",
    "specialty_at_death",
    "diagnosis_group",
    "consultant",
    "admission_method",
    "admitted_at",
    "discharged_at",
)
DEATH_FLAGS = (
    "learning_disability",
    "autism",
    "serious_mental_illness",
    "pregnant_or_recently_pregnant",
)
SCREENING_COLUMNS = (
    "screened_at",
    "bereaved_concerns",
    "staff_concerns",
    "mccd_issued_at",
    "coroner_reason",
    "clinical_governance_concern",
    "patient_safety_concern",
)
SCREENING_FLAGS = (
    "records_reviewed",
    "qap_discussed",
    "bereaved_contacted",
    "coroner_notified",
    "death_expected",
)
REFERRAL_COLUMNS = (
    "reference",
    "route",
    "status",
    "status_reason",
    "created_at",
    "claimed_at",
    "closed_at",
    "due_at",
    "reviewer",
    "external_reference",
)
TRUE = {"true", "yes", "y", "1"}
FALSE = {"false", "no", "n", "0"}

Row = dict[str, str]
Key = tuple[str, str]


def _text(row: Row, name: str) -> str | None:
    value = (row.get(name) or "").strip()
    return value or None


def _flag(row: Row, name: str) -> Any:
    value = _text(row, name)
    if value is None:
        return None
    folded = value.lower()
    return True if folded in TRUE else False if folded in FALSE else value


def _number(row: Row, name: str) -> Any:
    value = _text(row, name)
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _list(row: Row, name: str) -> list[str]:
    value = _text(row, name)
    return [part.strip() for part in value.split(";") if part.strip()] if value else []


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _key(row: Row) -> Key:
    return ((row.get("source_system") or "").strip(), (row.get("source_reference") or "").strip())


def _rows(path: Path) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        yield from csv.DictReader(handle)


def _grouped(path: Path) -> dict[Key, list[Row]]:
    grouped: dict[Key, list[Row]] = defaultdict(list)
    if path.is_file():
        for row in _rows(path):
            grouped[_key(row)].append(row)
    return grouped


def _form(row: Row) -> dict[str, Any]:
    instrument = _text(row, "instrument")
    if instrument == "sjr":
        reviewer = _present({"name": _text(row, "reviewer"), "role": _text(row, "reviewer_role")})
        phases = [
            _present(
                {
                    "phase": phase.value,
                    "rating": _number(row, f"phase_{phase.value}"),
                    "narrative": _text(row, f"phase_{phase.value}_narrative"),
                }
            )
            for phase in SjrPhase
            if _text(row, f"phase_{phase.value}") is not None
        ]
        problems = []
        for item in _list(row, "problems"):
            parts = [part.strip() for part in item.split("/")]
            problems.append(dict(zip(("type", "phase", "harm"), parts, strict=False)))
        return _present(
            {
                "instrument": "sjr",
                "reviewer": reviewer or None,
                "phases": phases,
                "quality_of_records": _number(row, "quality_of_records"),
                "avoidability": _number(row, "avoidability"),
                "problems_in_care": problems,
                "patient_safety_incident_suspected": _flag(
                    row, "patient_safety_incident_suspected"
                ),
                "summary": _text(row, "summary"),
            }
        )
    if instrument == "mm":
        return _present(
            {
                "instrument": "mm",
                "meeting_date": _text(row, "meeting_date"),
                "specialty": _text(row, "specialty"),
                "presenter": _text(row, "presenter"),
                "outcome": _text(row, "outcome"),
                "learning_points": [
                    p.strip() for p in (_text(row, "learning_points") or "").split("|") if p.strip()
                ],
                "avoidability": _number(row, "avoidability"),
            }
        )
    if instrument == "leder":
        return _present(
            {
                "instrument": "leder",
                "notified_at": _text(row, "notified_at"),
                "leder_reference": _text(row, "leder_reference"),
                "status": _text(row, "leder_status"),
                "outcome_summary": _text(row, "outcome_summary"),
            }
        )
    return _present(
        {
            "instrument": instrument,
            "reference": _text(row, "reference"),
            "organisation": _text(row, "organisation"),
            "referred_at": _text(row, "referred_at"),
            "status": _text(row, "external_status"),
            "outcome": _text(row, "outcome"),
            "completed_at": _text(row, "completed_at"),
        }
    )


def _referral(row: Row, reviews: list[Row]) -> dict[str, Any]:
    referral = _present({name: _text(row, name) for name in REFERRAL_COLUMNS})
    referral["reasons"] = _list(row, "reasons")
    stage = _number(row, "stage")
    if stage is not None:
        referral["stage"] = stage
    mine = [r for r in reviews if _text(r, "referral") == referral.get("reference")]
    if mine:
        review = mine[0]
        referral["review"] = _present(
            {
                "status": _text(review, "status"),
                "started_at": _text(review, "started_at"),
                "submitted_at": _text(review, "submitted_at"),
                "form": _form(review),
            }
        )
    return referral


def record_of(
    death: Row,
    referrals: list[Row],
    reviews: list[Row],
    overrides: list[Row],
    findings: list[Row],
) -> dict[str, Any]:
    """The bundle record one deaths.csv row and its rows in the other files stand for."""
    system, reference = _key(death)
    values = {name: _text(death, name) for name in DEATH_COLUMNS}
    values.update({name: _flag(death, name) for name in DEATH_FLAGS})
    screening: dict[str, Any] = {
        "examiner": _present(
            {
                "name": _text(death, "examiner_name"),
                "gmc_number": _text(death, "examiner_gmc_number"),
            }
        ),
        **_present({name: _text(death, name) for name in SCREENING_COLUMNS}),
        **_present({name: _flag(death, name) for name in SCREENING_FLAGS}),
        "cause_of_death": _present(
            {
                part: _text(death, f"cause_{part}")
                for part in ("part_1a", "part_1b", "part_1c", "part_2")
            }
        ),
        "routes_requested": _list(death, "routes_requested"),
        "overrides": [
            _present(
                {
                    "route": _text(o, "route"),
                    "reason": _text(o, "reason"),
                    "recorded_at": _text(o, "recorded_at"),
                }
            )
            for o in overrides
        ],
    }
    return {
        "format": "lfd-history/1",
        "death": {"source_system": system, "source_reference": reference, **_present(values)},
        "screening": screening,
        "referrals": [_referral(row, reviews) for row in referrals],
        "findings": [
            _present(
                {
                    "reference": _text(f, "reference"),
                    "referral": _text(f, "referral"),
                    "kind": _text(f, "kind"),
                    "theme": _present(
                        {"code": _text(f, "theme_code"), "name": _text(f, "theme_name")}
                    ),
                    "phase": _text(f, "phase"),
                    "description": _text(f, "description"),
                    "recorded_by": _text(f, "recorded_by"),
                    "recorded_at": _text(f, "recorded_at"),
                }
            )
            for f in findings
        ],
    }


def csv_to_bundle(folder: Path, spool: Path) -> Path:
    """Write the bundle a folder's CSV set stands for, once: named by the sha256 of the set, so
    that running the import again finds the same bundle and resumes it. One line per row of
    deaths.csv, in its order; the other files are read into memory, grouped by death."""
    if not (folder / "deaths.csv").is_file():
        raise FileNotFoundError(folder / "deaths.csv")
    digest = hashlib.sha256()
    for name in REQUIRED + OPTIONAL:
        path = folder / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    target = spool / f"csv-{digest.hexdigest()}.jsonl"
    if target.is_file():
        return target
    referrals = _grouped(folder / "referrals.csv")
    reviews = _grouped(folder / "reviews.csv")
    overrides = _grouped(folder / "overrides.csv")
    findings = _grouped(folder / "findings.csv")
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        for death in _rows(folder / "deaths.csv"):
            key = _key(death)
            record = record_of(death, referrals[key], reviews[key], overrides[key], findings[key])
            out.write(orjson.dumps(record) + b"\n")
    partial.replace(target)
    return target
