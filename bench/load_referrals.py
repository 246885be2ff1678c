"""Load N synthetic deaths, with their screenings and referrals, into a migrated PostgreSQL
database, quickly (COPY), for the referral-queue and claim benchmarks.

    python bench/load_referrals.py --deaths 1000000 [--days D] [--seed S] [--reset]
        [--organisations ODS,ODS,...]
        [--database-url postgresql://...]   (default: LFD_DATABASE_URL)

Nothing here is a real person: NHS numbers are in the reserved 999 range with valid Modulus 11
check digits, names are made up. The data is shaped like a regional service's:

- deaths belong to the deployment's default organisation (migration 0019), or with
  ``--organisations`` (ODS codes of the registry) to each in turn, death by death, so that every
  organisation's deaths span the same dates and mix (issue 16's regional deployment); the rest
  of each death and its work is drawn the same whatever the organisations;
- deaths spread evenly over ``--days`` ending now (default: at least two years, and about 550
  deaths a day at the larger sizes: 1,000,000 deaths span five years), a realistic mix of ages,
  specialties, sites, admission methods and flags (learning disability, SMI, pregnancy);
- a screening for every death except the most recent few still awaiting their medical examiner,
  with the concerns, coroner notifications and unexpected deaths in realistic proportions;
- referrals from the service's own rules (``app.referrals.rules``), so about 30% of deaths are
  referred, mostly SJR and coroner, some LeDeR, CDR, PMRT, M&M, PSII; second-stage SJRs (with
  the stage-1 reviewer excluded) and PSIIs raised by stage-2 reviews;
- each referral's progress follows its age: a completion time is drawn around its due date
  (about a fifth finish late), so old referrals are completed (a few declined or cancelled) and
  the open queue is the recent work: at 1,000,000 deaths a few thousand ready SJRs over every
  specialty and site, some assigned to a named reviewer, some claimed (stored ``ready`` with a
  live lease), some whose lease has expired (claimable again), drafts in progress, some on hold
  awaiting an inquest, and a realistic overdue tail.

Every referral and screening row is drawn from the deaths' own generator (seeded by
``--seed`` and the chunk), so a run is reproducible. Case numbers come from the table's sequence
default (the column is left out of the COPY). The loader reads the tables' columns first and
fills the ones it knows; a column it does not know is left to its default (NULL for a nullable
one), so a migration that adds nullable columns does not break it; a new NOT NULL column
without a default stops it with a message. It finishes with VACUUM ANALYZE.

Reviews, events and audit rows are not generated: the queue and the claim do not read them.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

# bench/queue.py shadows the standard library's queue module (which asyncio and
# concurrent.futures import) when a script here runs as ``python bench/<script>.py``, since
# Python puts the script's directory first on the path: take that directory off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import json
import math
import multiprocessing
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from app.config import DEFAULT_DUE_DAYS, DEFAULT_PRIORITIES
from app.kit.enums import AdmissionMethod, CoronerReason, ReasonCode, Route
from app.kit.nhs_number import check_digit
from app.kit.time import LONDON
from app.referrals.rules import RuleConfig, RuleFacts, in_learning_sample, required_routes

SOURCE_SYSTEM = "lfd-bench"
ME_OFFICE_CLIENT = uuid.UUID("00000000-0000-4000-8000-00000000be01")  # the sender of screenings
REVIEW_SYSTEM_CLIENT = uuid.UUID("00000000-0000-4000-8000-00000000be02")  # holder of leases
RULES = RuleConfig.build(
    mortality_alert_specialties=[],
    mortality_alert_diagnosis_groups=["Acute myocardial infarction"],
    mm_specialties=["General Surgery", "Obstetrics"],
    learning_sample_percent=2.0,
)
DAY = 86_400.0


@dataclass(frozen=True)
class Specialty:
    name: str
    weight: float
    wards: tuple[str, ...]
    causes: tuple[tuple[str, str | None, str], ...]  # (1a, 1b, diagnosis group)
    unexpected: float = 0.045
    elective: float = 0.03


# fmt: off
ADULT = (
    Specialty("General Medicine", 22, ("Acute Medical Unit", "Ward 12", "Ward 14"), (
        ("Community-acquired pneumonia", None, "Pneumonia"),
        ("Urosepsis", "Urinary tract infection", "Sepsis"),
        ("Congestive cardiac failure", "Ischaemic heart disease", "Heart failure"),
        ("Acute kidney injury", "Dehydration", "Acute kidney injury"),
    )),
    Specialty("Care of the Elderly", 18, ("Elderly Care Ward 3", "Ward 21", "Frailty Unit"), (
        ("Frailty of old age", None, "Senility"),
        ("Aspiration pneumonia", "Alzheimer's disease", "Aspiration pneumonitis"),
    ), unexpected=0.02),
    Specialty("Respiratory", 10, ("Respiratory Ward 8", "Respiratory Support Unit"), (
        ("Infective exacerbation of COPD", "Chronic obstructive pulmonary disease", "COPD"),
        ("Idiopathic pulmonary fibrosis", None, "Lung disease"),
    )),
    Specialty("Cardiology", 7, ("Coronary Care Unit", "Cardiology Ward 5"), (
        ("Acute myocardial infarction", "Coronary artery atherosclerosis",
         "Acute myocardial infarction"),
        ("Congestive cardiac failure", "Severe aortic stenosis", "Heart failure"),
    ), unexpected=0.09, elective=0.08),
    Specialty("Gastroenterology", 6, ("Gastroenterology Ward 9",), (
        ("Decompensated liver cirrhosis", "Alcohol-related liver disease", "Liver disease"),
        ("Upper gastrointestinal haemorrhage", "Oesophageal varices",
         "Gastrointestinal haemorrhage"),
    ), unexpected=0.07),
    Specialty("Oncology", 8, ("Oncology Ward 4",), (
        ("Metastatic carcinoma of the lung", None, "Cancer of bronchus; lung"),
        ("Carcinoma of the pancreas", None, "Cancer of pancreas"),
        ("Neutropenic sepsis", "Chemotherapy for carcinoma of the breast", "Sepsis"),
    ), unexpected=0.015, elective=0.12),
    Specialty("Stroke", 5, ("Hyperacute Stroke Unit", "Stroke Ward 11"), (
        ("Cerebral infarction", "Atrial fibrillation", "Acute cerebrovascular disease"),
        ("Intracerebral haemorrhage", "Hypertension", "Acute cerebrovascular disease"),
    ), unexpected=0.07),
    Specialty("Critical Care", 6, ("Intensive Care Unit",), (
        ("Multi-organ failure", "Septic shock", "Sepsis"),
        ("Hypoxic brain injury", "Out-of-hospital cardiac arrest", "Cardiac arrest"),
    ), unexpected=0.125),
    Specialty("General Surgery", 5, ("Surgical Ward 2", "Surgical Assessment Unit"), (
        ("Faecal peritonitis", "Perforated sigmoid diverticulum", "Peritonitis"),
        ("Acute mesenteric ischaemia", None, "Intestinal ischaemia"),
    ), unexpected=0.1, elective=0.25),
    Specialty("Trauma and Orthopaedics", 4, ("Orthopaedic Ward 15",), (
        ("Hospital-acquired pneumonia", "Fractured neck of femur", "Pneumonia"),
    ), unexpected=0.075, elective=0.1),
    Specialty("Renal Medicine", 2, ("Renal Ward 10",), (
        ("End-stage renal failure", "Diabetic nephropathy", "Chronic renal failure"),
    )),
    Specialty("Haematology", 2, ("Haematology Ward 6",), (
        ("Acute myeloid leukaemia", None, "Leukaemias"),
    ), elective=0.1),
    Specialty("Emergency Medicine", 5, ("Emergency Department",), (
        ("Out-of-hospital cardiac arrest", "Ischaemic heart disease", "Cardiac arrest"),
        ("Ruptured abdominal aortic aneurysm", None, "Aortic aneurysm"),
    ), unexpected=0.225, elective=0.0),
)
OBSTETRICS = Specialty("Obstetrics", 0, ("Delivery Suite",), (
    ("Postpartum haemorrhage", None, "Obstetric haemorrhage"),
), unexpected=0.45, elective=0.0)
PAEDIATRICS = Specialty("Paediatrics", 0, ("Paediatric Intensive Care Unit", "Children's Ward"), (
    ("Sepsis", "Meningococcal infection", "Sepsis"),
    ("Complications of cerebral palsy", None, "Nervous system disorders"),
), unexpected=0.25, elective=0.05)
NEONATOLOGY = Specialty("Neonatology", 0, ("Neonatal Intensive Care Unit",), (
    ("Extreme prematurity", "Respiratory distress syndrome", "Perinatal conditions"),
), unexpected=0.2, elective=0.0)
ADULT_WEIGHTS = [s.weight for s in ADULT]
SITES = ("Synthetica General Hospital", "Exampleton Royal Infirmary", "Demoford District Hospital",
         "Testbury University Hospital", "Mockshire County Hospital")
SITE_WEIGHTS = (30, 25, 15, 20, 10)
COMMUNITY_SITE = "Sampleby Community Hospital"
GIVEN = ("Ada", "Albert", "Beryl", "Bernard", "Carol", "Cyril", "Doris", "Dennis", "Edna", "Eric",
         "Freda", "Frank", "Gwen", "George", "Hilda", "Harold", "Irene", "Ivan", "Joan", "Jack",
         "Kath", "Ken", "Lily", "Leonard", "Mabel", "Maurice", "Nora", "Norman", "Olive", "Owen")
FAMILY = ("Testington", "Sampleworth", "Fakeley", "Mockridge", "Demoson", "Placeholder",
          "Syntheton", "Exampleby", "Dummett", "Notreal", "Fictor", "Madeup", "Pretendon",
          "Imaginary", "Modelle", "Proxyman", "Standin", "Surrogate", "Templeton", "Specimen")
REVIEWERS = tuple(f"Dr {g[0]}. {f}" for g in GIVEN[:12] for f in FAMILY[:6])
EXAMINERS = tuple((f"Dr {f} (ME)", f"{7000001 + i:07d}") for i, f in enumerate(FAMILY[:14]))
POSTCODES = ("LS1", "LS6", "LS9", "BD3", "HX1", "WF1", "YO1", "HG2", "S10", "M14", "OL1", "BB2")
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXY"
ETHNICITY = "A" * 30 + "BCDEFGHJKLMNPRSZ"
CORONER_REASONS = tuple(CoronerReason)
HOLD_REASONS = ("awaiting inquest", "awaiting post-mortem report", "notes with the coroner")
DECLINE_REASONS = ("outside the review criteria on reading the notes",
                   "reviewed under the PSII instead")
CANCEL_REASONS = ("duplicate of an earlier referral", "raised in error")
EXTERNAL_PREFIX = {Route.leder: "LDR", Route.cdr: "CDOP", Route.pmrt: "PMRT", Route.mnsi: "MNSI",
                   Route.psii: "PSII", Route.coroner: "COR", Route.complaint: "CMP",
                   Route.system_review: "SYS"}
# fmt: on


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _nhs_number(rng: random.Random) -> str:
    while True:
        nine = f"999{rng.randrange(1_000_000):06d}"
        digit = check_digit(nine)
        if digit is not None:
            return nine + str(digit)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _age_days(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.0025:
        return rng.randrange(0, 28)  # neonatal
    if roll < 0.005:
        return rng.randrange(28, 18 * 365)  # child
    if roll < 0.04:
        return rng.randrange(18 * 365, 50 * 365)
    years = min(max(rng.gauss(81.0, 9.5), 50.0), 106.0)
    return int(years * 365.25) + rng.randrange(365)


@dataclass
class Tables:
    """The rows of one chunk, as dicts keyed by column name."""

    deaths: list[dict[str, Any]]
    screenings: list[dict[str, Any]]
    referrals: list[dict[str, Any]]


class Generator:
    def __init__(
        self,
        *,
        deaths: int,
        days: float,
        seed: int,
        at: datetime,
        organisations: tuple[uuid.UUID, ...] = (),
    ) -> None:
        self.total = deaths
        self.organisations = organisations
        self.span = days * DAY
        self.start = at - timedelta(seconds=self.span)
        self.at = at
        self.seed = seed

    def chunk(self, first: int, last: int) -> Tables:
        rng = random.Random(f"{self.seed}:{first}")
        tables = Tables([], [], [])
        for index in range(first, last):
            self._death(rng, index, tables)
        return tables

    # -- one death -------------------------------------------------------------------------
    def _death(self, rng: random.Random, index: int, tables: Tables) -> None:
        died_at = self.start + timedelta(seconds=(index + rng.random()) * self.span / self.total)
        died_on = died_at.astimezone(LONDON).date()
        age_days = _age_days(rng)
        born = died_on - timedelta(days=age_days)
        age_years = (
            died_on.year - born.year - ((died_on.month, died_on.day) < (born.month, born.day))
        )
        sex = "female" if rng.random() < 0.5 else "male"
        pregnant = False
        if age_days < 28:
            specialty = NEONATOLOGY
        elif age_years < 18:
            specialty = PAEDIATRICS
        elif sex == "female" and age_years < 45 and rng.random() < 0.06:
            specialty, pregnant = OBSTETRICS, True
        else:
            specialty = rng.choices(ADULT, ADULT_WEIGHTS)[0]
        in_ed = specialty.name == "Emergency Medicine"
        community = not in_ed and age_years >= 18 and rng.random() < 0.04
        site = COMMUNITY_SITE if community else rng.choices(SITES, SITE_WEIGHTS)[0]
        if in_ed:
            method, place = AdmissionMethod.not_admitted, "emergency_department"
        elif pregnant:
            method, place = AdmissionMethod.maternity, "inpatient"
        else:
            roll = rng.random()
            method = (
                AdmissionMethod.elective
                if roll < specialty.elective
                else AdmissionMethod.transfer
                if roll < specialty.elective + 0.03
                else AdmissionMethod.emergency
            )
            place = "community_hospital" if community else "inpatient"
        admitted_at = None
        if method is not AdmissionMethod.not_admitted:
            admitted_at = died_at - timedelta(seconds=min(_lognormal(rng, 6.0, 0.9), 120.0) * DAY)
        discharged_at = None
        if method is not AdmissionMethod.not_admitted and rng.random() < 0.08:
            discharged_at = (admitted_at or died_at) - timedelta(days=rng.randrange(2, 30))
        within_30 = discharged_at is not None and (died_at - discharged_at).days <= 30
        admitting = specialty.name
        if specialty.weight > 0 and rng.random() < 0.12:  # an adult specialty
            admitting = "General Medicine" if not in_ed else admitting
        cause = rng.choice(specialty.causes)
        ld = age_years >= 14 and rng.random() < 0.012
        autism = age_years >= 14 and rng.random() < 0.004
        smi = age_years >= 18 and rng.random() < 0.02
        has_number = rng.random() > 0.015
        death_id = _uuid(rng)
        created = died_at + timedelta(seconds=rng.uniform(600, 6 * 3600))  # from PAS

        screened_at = died_at + timedelta(seconds=min(_lognormal(rng, 1.6, 0.6), 12.0) * DAY)
        screened = screened_at < self.at
        death: dict[str, Any] = {
            "id": death_id,
            "created_at": min(created, screened_at, self.at),
            "updated_at": min(created, screened_at, self.at),
            "source_system": SOURCE_SYSTEM,
            "source_reference": f"BENCH-{self.seed}-{index:08d}",
            "nhs_number": _nhs_number(rng) if has_number else None,
            "nhs_number_status": "01" if has_number else "03",
            "local_patient_id": f"RX{rng.randrange(10**8):08d}",
            "given_name": rng.choice(GIVEN),
            "family_name": rng.choice(FAMILY),
            "date_of_birth": born,
            "sex": sex,
            "postcode": f"{rng.choice(POSTCODES)} {rng.randrange(1, 10)}"
            f"{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}",
            "ethnicity": rng.choice(ETHNICITY),
            "died_at": died_at,
            "died_on": died_on,
            "place_of_death": place,
            "site": site,
            "ward": rng.choice(specialty.wards),
            "admitting_specialty": admitting,
            "specialty_at_death": specialty.name,
            "diagnosis_group": cause[2],
            "consultant": f"Dr {rng.choice(FAMILY)}",
            "admission_method": method.value,
            "admitted_at": admitted_at,
            "discharged_at": discharged_at,
            "learning_disability": ld,
            "autism": autism,
            "serious_mental_illness": smi,
            "pregnant_or_recently_pregnant": pregnant,
            "age_at_death": age_years,
            "age_in_days_at_death": age_days,
            "within_30_days_of_discharge": within_30,
            "status": "awaiting_screening",
            "version": 1,
            "created_by_client_id": ME_OFFICE_CLIENT,
        }
        if self.organisations:  # by the death's number: the random draws stay the same
            death["organisation_id"] = self.organisations[index % len(self.organisations)]
        tables.deaths.append(death)
        if not screened:
            return

        expected = rng.random() >= specialty.unexpected
        coroner = rng.random() < (0.09 if expected else 0.4)
        bereaved = (
            "The family feel the deterioration was not acted on." if rng.random() < 0.03 else None
        )
        staff = "Nursing staff raised a delay in escalation." if rng.random() < 0.01 else None
        governance = "Possible delay in senior review." if rng.random() < 0.01 else None
        safety = "Possible missed anticoagulation." if rng.random() < 0.006 else None
        requested: list[str] = ["sjr"] if rng.random() < 0.004 else []
        examiner, gmc = rng.choice(EXAMINERS)
        tables.screenings.append(
            {
                "id": _uuid(rng),
                "created_at": screened_at,
                "updated_at": screened_at,
                "death_id": death_id,
                "organisation_id": death.get("organisation_id"),
                "died_on": died_on,
                "examiner_name": examiner,
                "examiner_gmc_number": gmc,
                "screened_at": screened_at,
                "records_reviewed": rng.random() < 0.98,
                "qap_discussed": rng.random() < 0.97,
                "bereaved_contacted": rng.random() < 0.93,
                "bereaved_concerns": bereaved,
                "staff_concerns": staff,
                "cause_part_1a": cause[0],
                "cause_part_1b": cause[1],
                "cause_part_1c": None,
                "cause_part_2": "Type 2 diabetes mellitus" if rng.random() < 0.2 else None,
                "mccd_issued_at": None if coroner else screened_at + timedelta(hours=2),
                "coroner_notified": coroner,
                "coroner_reason": rng.choice(CORONER_REASONS).value if coroner else None,
                "clinical_governance_concern": governance,
                "death_expected": expected,
                "patient_safety_concern": safety,
                "routes_requested": json.dumps(requested),
                "version": 1,
                "recorded_by_client_id": ME_OFFICE_CLIENT,
            }
        )
        facts = RuleFacts(
            age_years=age_years,
            age_days=age_days,
            learning_disability=ld,
            autism=autism,
            serious_mental_illness=smi,
            pregnant_or_recently_pregnant=pregnant,
            admission_method=method,
            specialties=(admitting, specialty.name),
            diagnosis_group=cause[2],
            bereaved_concern=bereaved is not None,
            staff_concern=staff is not None,
            me_concern=governance is not None,
            death_expected=expected,
            coroner_notified=coroner,
            patient_safety_concern=safety is not None,
            sample_key=f"{SOURCE_SYSTEM}\x1f{death['source_reference']}",
        )
        routes = required_routes(facts, RULES)
        if (
            not routes
            and not requested
            and in_learning_sample(facts.sample_key, RULES.learning_sample_percent)
        ):
            routes = {Route.sjr: [ReasonCode.learning_sample]}
        for name in requested:
            routes.setdefault(Route(name), []).append(ReasonCode.me_requested)
        statuses: list[str] = []
        last_change = screened_at
        for route, reasons in routes.items():
            pending: list[tuple[Route, int | None, list[str], datetime, str | None]] = [
                (
                    route,
                    1 if route is Route.sjr else None,
                    [r.value for r in reasons],
                    screened_at,
                    None,
                )
            ]
            while pending:
                route_, stage, codes, created_at, excluded = pending.pop()
                row, reviewer = self._referral(
                    rng, death, route_, stage, codes, created_at, excluded, coroner
                )
                tables.referrals.append(row)
                statuses.append(row["status"])
                last_change = max(last_change, row["updated_at"])
                if row["status"] != "completed":
                    continue
                completed_at = row["completed_at"]
                if route_ is Route.sjr and stage == 1 and rng.random() < 0.07:
                    pending.append((Route.sjr, 2, ["second_stage"], completed_at, reviewer))
                elif route_ is Route.sjr and stage == 2 and rng.random() < 0.3:
                    pending.append(
                        (Route.psii, None, ["more_likely_than_not_avoidable"], completed_at, None)
                    )
        death["updated_at"] = min(last_change, self.at)
        open_ = {"ready", "claimed", "in_progress", "on_hold"}
        if any(s in open_ for s in statuses):
            death["status"] = "under_review"
        elif "completed" in statuses:
            leder_pending = Route.leder in routes and (self.at - screened_at).days < 183
            death["status"] = "reviewed" if leder_pending else "closed"
        else:
            death["status"] = "screened"

    # -- one referral ----------------------------------------------------------------------
    def _referral(
        self,
        rng: random.Random,
        death: dict[str, Any],
        route: Route,
        stage: int | None,
        reasons: list[str],
        created_at: datetime,
        excluded: str | None,
        coroner: bool,
    ) -> tuple[dict[str, Any], str | None]:
        due_days = DEFAULT_DUE_DAYS[route]
        due_at = created_at + timedelta(days=due_days)
        if route is Route.leder:
            took = _lognormal(rng, 2.0, 0.6)  # the notification completes the trust's part
        elif route is Route.coroner:
            took = _lognormal(rng, 1.0, 0.5)
        else:
            took = _lognormal(rng, 0.65 * due_days, 0.6)  # about a fifth finish late
        age = (self.at - created_at).total_seconds() / DAY
        reviewer = rng.choice([r for r in REVIEWERS[:40] if r != excluded])
        row: dict[str, Any] = {
            "id": _uuid(rng),
            "created_at": created_at,
            "updated_at": created_at,
            "death_id": death["id"],
            "organisation_id": death.get("organisation_id"),
            "died_on": death["died_on"],
            "route": route.value,
            "stage": stage,
            "reasons": json.dumps(reasons),
            "status": "ready",
            "status_reason": None,
            "specialty": death["specialty_at_death"] or death["admitting_specialty"],
            "site": death["site"],
            "priority": DEFAULT_PRIORITIES[route],
            "due_at": due_at,
            "assigned_to": None,
            "lease_id": None,
            "leased_by": None,
            "leased_to": None,
            "claimed_at": None,
            "lease_expires_at": None,
            "excluded_reviewer": excluded,
            "external_reference": None,
            "completed_at": None,
            "version": 1,
        }
        external = route in EXTERNAL_PREFIX
        if took < age:  # finished
            finished = created_at + timedelta(days=took)
            roll = rng.random()
            row["updated_at"] = finished
            if roll < 0.03 and route in (Route.sjr, Route.mm):
                row.update(status="declined", status_reason=rng.choice(DECLINE_REASONS), version=3)
            elif roll < 0.05 and stage != 2:
                row.update(status="cancelled", status_reason=rng.choice(CANCEL_REASONS), version=2)
            else:
                row.update(status="completed", completed_at=finished, version=4)
                if external:
                    row["external_reference"] = (
                        f"{EXTERNAL_PREFIX[route]}-{finished.year}-{rng.randrange(100000):05d}"
                    )
            return row, reviewer
        # Still open: where it stands depends on how far through its work it is.
        progress = age / took
        roll = rng.random()
        hold_chance = 0.2 if coroner else 0.03
        if roll < hold_chance and route is not Route.coroner:
            since = created_at + timedelta(days=age * rng.uniform(0.2, 0.9))
            row.update(
                status="on_hold",
                status_reason=rng.choice(HOLD_REASONS),
                updated_at=since,
                version=2,
            )
        elif roll < hold_chance + 0.45 * progress and not external:
            # A draft in progress: the reviewer claimed it and saved a draft. Their lease is
            # usually still live (renewed while they work) but sometimes lapsed.
            self._lease(rng, row, reviewer, live=rng.random() < 0.7, status="in_progress")
        elif roll < hold_chance + 0.45 * progress + 0.05:
            self._lease(rng, row, reviewer, live=True, status="ready")
        elif roll < hold_chance + 0.45 * progress + 0.08:
            self._lease(rng, row, reviewer, live=False, status="ready")
        elif rng.random() < 0.08 and not external:
            row.update(assigned_to=reviewer, updated_at=created_at + timedelta(hours=4), version=2)
        if external and progress > 0.3 and row["status"] != "on_hold":
            row["external_reference"] = (
                f"{EXTERNAL_PREFIX[route]}-{created_at.year}-{rng.randrange(100000):05d}"
            )
        return row, reviewer

    def _lease(
        self, rng: random.Random, row: dict[str, Any], reviewer: str, *, live: bool, status: str
    ) -> None:
        """A claim, stored as the service stores it: the status stays ``ready`` (or
        ``in_progress``) and the lease fields say who holds it until when."""
        seconds = 1800.0
        if live:
            claimed_at = self.at - timedelta(seconds=rng.uniform(5, seconds - 60))
        else:
            oldest = (self.at - row["created_at"]).total_seconds()
            claimed_at = self.at - timedelta(
                seconds=rng.uniform(seconds + 60, max(oldest, seconds + 120))
            )
            claimed_at = max(claimed_at, row["created_at"])
        row.update(
            status=status,
            lease_id=_uuid(rng),
            leased_by=REVIEW_SYSTEM_CLIENT,
            leased_to=reviewer,
            claimed_at=claimed_at,
            lease_expires_at=claimed_at + timedelta(seconds=seconds),
            updated_at=claimed_at,
            version=3 if status == "in_progress" else 2,
        )


# -- the database side ------------------------------------------------------------------------
@dataclass
class Columns:
    names: list[str]  # what the COPY fills, in table order


async def _columns(conn: asyncpg.Connection, table: str, known: set[str]) -> Columns:
    rows = await conn.fetch(
        "SELECT column_name, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    if not rows:
        raise SystemExit(f"table {table} not found: migrate the database first (lfd migrate)")
    names: list[str] = []
    for row in rows:
        name = row["column_name"]
        if name in known and name != "case_number":
            names.append(name)
        elif row["is_nullable"] == "NO" and row["column_default"] is None:
            raise SystemExit(
                f"{table}.{name} is NOT NULL without a default and this loader does not know it;"
                " teach bench/load_referrals.py what to put there"
            )
    return Columns(names)


def _records(rows: list[dict[str, Any]], names: list[str]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        yield tuple(row[name] for name in names)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def load(args: argparse.Namespace) -> None:
    url = args.database_url or os.environ.get("LFD_DATABASE_URL", "")
    if not url.startswith(("postgresql", "postgres")):
        raise SystemExit("give a PostgreSQL --database-url (or LFD_DATABASE_URL)")
    days = args.days or max(730.0, args.deaths / 550.0)
    at = datetime.now(UTC)
    conn = await asyncpg.connect(_dsn(url))
    try:
        organisations = await _organisations(conn, args.organisations)
        gen = Generator(
            deaths=args.deaths, days=days, seed=args.seed, at=at, organisations=organisations
        )
        await conn.execute("SET synchronous_commit = off")
        if args.reset:
            await conn.execute("TRUNCATE deaths RESTART IDENTITY CASCADE")
            await conn.execute("TRUNCATE audit_events, outbox_events")
        existing = await conn.fetchval(
            "SELECT count(*) FROM deaths WHERE source_system = $1", SOURCE_SYSTEM
        )
        if existing:
            raise SystemExit(
                f"{existing} bench deaths are already loaded; use --reset to start again"
            )
        # The columns the generator fills, from a sample (which is the whole load when small:
        # a table with no rows in it gets none at all).
        sample = gen.chunk(0, min(2000, args.deaths))
        columns: dict[str, Columns | None] = {}
        for table in ("deaths", "screenings", "referrals"):
            rows: list[dict[str, Any]] = getattr(sample, table)
            columns[table] = await _columns(conn, table, set(rows[0])) if rows else None
        print(
            f"loading {args.deaths:,} deaths over {days:.0f} days (seed {args.seed}); "
            f"referral columns left to their defaults: "
            f"{await _unfilled(conn, 'referrals', columns['referrals'])}",
            flush=True,
        )
        # Secondary indexes (those not backing a constraint) are dropped for the load and
        # rebuilt afterwards from their own definitions: one sort each instead of a million
        # scattered inserts. A failed load still rebuilds them.
        indexes = [] if args.keep_indexes else await _secondary_indexes(conn)
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        try:
            started = time.perf_counter()
            firsts = list(range(0, args.deaths, args.chunk))
            names = {table: fill.names if fill else None for table, fill in columns.items()}
            jobs = max(1, min(args.jobs, len(firsts)))
            parts = [
                (
                    _dsn(url),
                    args.deaths,
                    days,
                    args.seed,
                    at,
                    args.chunk,
                    firsts[job::jobs],
                    names,
                    organisations,
                )
                for job in range(jobs)
            ]
            counts = Counter[str]()
            generating = 0.0
            if jobs == 1:
                part_counts, generating = await _load_part(*parts[0])
                counts.update(part_counts)
            else:
                # One process per job, each generating and copying its own chunks over its own
                # connection: generation (Python) and ingestion (PostgreSQL) then use every core.
                loop = asyncio.get_running_loop()
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                    results = await asyncio.gather(
                        *(loop.run_in_executor(pool, _run_part, part) for part in parts)
                    )
                for part_counts, seconds in results:
                    counts.update(part_counts)
                    generating += seconds
        finally:
            t0 = time.perf_counter()
            await conn.execute("SET maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                await conn.execute(definition)
            if indexes:
                print(f"rebuilt {len(indexes)} indexes in {time.perf_counter() - t0:.1f} s")
        loaded = time.perf_counter() - started
        t0 = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) deaths")
        await conn.execute("VACUUM (ANALYZE) screenings")
        await conn.execute("VACUUM (ANALYZE) referrals")
        analysed = time.perf_counter() - t0
        print(
            f"loaded {counts['deaths']:,} deaths, {counts['screenings']:,} screenings, "
            f"{counts['referrals']:,} referrals in {loaded:.1f} s "
            f"({jobs} job(s), {generating:.1f} s of it generating); "
            f"VACUUM ANALYZE {analysed:.1f} s"
        )
        await _summary(conn, at)
    finally:
        await conn.close()


async def _secondary_indexes(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition "
        "FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
        "WHERE t.relname IN ('deaths', 'screenings', 'referrals') "
        "AND t.relnamespace = current_schema()::regnamespace "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
    )
    return [(r["name"], r["definition"]) for r in rows]


Part = tuple[
    str,
    int,
    float,
    int,
    datetime,
    int,
    list[int],
    dict[str, list[str] | None],
    tuple[uuid.UUID, ...],
]


async def _organisations(conn: asyncpg.Connection, codes: str | None) -> tuple[uuid.UUID, ...]:
    """The organisations the deaths go to, in turn: those of ``codes`` (comma-separated ODS
    codes of the registry), else the default organisation; none before migration 0019."""
    if not await conn.fetchval("SELECT to_regclass('organisations') IS NOT NULL"):
        if codes:
            raise SystemExit("--organisations needs the organisations registry (migration 0019)")
        return ()
    if not codes:
        found = await conn.fetchval("SELECT id FROM organisations WHERE is_default")
        if found is None:
            raise SystemExit("no default organisation: migrate the database (lfd migrate)")
        return (found,)
    wanted = [code.strip().upper() for code in codes.split(",") if code.strip()]
    rows = await conn.fetch(
        "SELECT upper(ods_code) AS code, id FROM organisations WHERE upper(ods_code) = ANY($1)",
        wanted,
    )
    by_code = {row["code"]: row["id"] for row in rows}
    missing = [code for code in wanted if code not in by_code]
    if missing:
        raise SystemExit(f"not in the organisations registry: {', '.join(missing)}")
    return tuple(by_code[code] for code in wanted)


def _run_part(part: Part) -> tuple[Counter[str], float]:
    return asyncio.run(_load_part(*part))


async def _load_part(
    dsn: str,
    deaths: int,
    days: float,
    seed: int,
    at: datetime,
    chunk: int,
    firsts: list[int],
    names: dict[str, list[str] | None],
    organisations: tuple[uuid.UUID, ...] = (),
) -> tuple[Counter[str], float]:
    """Generate and COPY the chunks starting at ``firsts``, one transaction each."""
    gen = Generator(deaths=deaths, days=days, seed=seed, at=at, organisations=organisations)
    counts = Counter[str]()
    generating = 0.0
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET synchronous_commit = off")
        for first in firsts:
            last = min(first + chunk, deaths)
            t0 = time.perf_counter()
            tables = gen.chunk(first, last)
            generating += time.perf_counter() - t0
            async with conn.transaction():
                for table in ("deaths", "screenings", "referrals"):
                    rows: list[dict[str, Any]] = getattr(tables, table)
                    fill = names[table]
                    if rows and fill is not None:
                        await conn.copy_records_to_table(
                            table, records=_records(rows, fill), columns=fill
                        )
                        counts[table] += len(rows)
            elapsed = time.perf_counter() - started
            print(
                f"  deaths {first:>9,}-{last - 1:<9,} copied "
                f"({elapsed:.0f} s; this job: {counts['deaths'] / elapsed:,.0f} deaths/s)",
                flush=True,
            )
    finally:
        await conn.close()
    return counts, generating


async def _unfilled(conn: asyncpg.Connection, table: str, columns: Columns | None) -> str:
    if columns is None:
        return "(no referrals)"
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    rest = [r["column_name"] for r in rows if r["column_name"] not in columns.names]
    return ", ".join(rest) or "none"


async def _summary(conn: asyncpg.Connection, at: datetime) -> None:
    referred = await conn.fetchval(
        "SELECT round(100.0 * count(DISTINCT death_id) "
        "/ greatest((SELECT count(*) FROM deaths), 1), 1) FROM referrals"
    )
    print(f"deaths referred: {referred}%")
    print(
        "deaths by status:",
        ", ".join(
            f"{r['status']} {r['n']:,}"
            for r in await conn.fetch(
                "SELECT status, count(*) AS n FROM deaths GROUP BY status ORDER BY n DESC"
            )
        ),
    )
    lease = (
        "CASE WHEN lease_expires_at > $1 THEN 'leased' "
        "WHEN lease_expires_at IS NOT NULL THEN 'lease expired' ELSE '' END"
    )
    rows = await conn.fetch(
        f"SELECT route, status, {lease} AS lease, count(*) AS n, "
        "count(*) FILTER (WHERE due_at < $1) AS overdue "
        "FROM referrals GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        at,
    )
    print("referrals by route, stored status, lease (overdue):")
    for r in rows:
        print(
            f"  {r['route']:<14} {r['status']:<12} {r['lease']:<14} {r['n']:>9,}"
            f"  ({r['overdue']:,} overdue)"
            if r["status"] not in ("completed", "declined", "cancelled")
            else f"  {r['route']:<14} {r['status']:<12} {r['lease']:<14} {r['n']:>9,}"
        )
    rows = await conn.fetch(
        "SELECT specialty, count(*) AS n FROM referrals WHERE route = 'sjr' AND status = 'ready' "
        "AND (lease_expires_at IS NULL OR lease_expires_at <= $1) GROUP BY 1 ORDER BY 2 DESC",
        at,
    )
    print("claimable SJRs by specialty:", ", ".join(f"{r['specialty']} {r['n']:,}" for r in rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deaths", type=int, default=10_000)
    parser.add_argument(
        "--days",
        type=float,
        default=None,
        help="span of dates of death, ending now (default: max(730, deaths/550))",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--chunk", type=int, default=25_000, help="deaths per COPY transaction")
    parser.add_argument(
        "--reset",
        action="store_true",
        help="empty deaths (and everything under them), audit and events first",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="loader processes, each with its own connection (default: the cores, up to 4)",
    )
    parser.add_argument(
        "--keep-indexes",
        action="store_true",
        help="keep the secondary indexes during the load (slower; default: drop and rebuild)",
    )
    parser.add_argument(
        "--organisations",
        default=None,
        help="ODS codes of the registry, comma-separated: the deaths go to each in turn "
        "(default: the default organisation)",
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    if args.deaths < 1:
        raise SystemExit("--deaths must be at least 1")
    asyncio.run(load(args))


if __name__ == "__main__":
    main()
