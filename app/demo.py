"""``lfd demo``: fill a database with a realistic, wholly synthetic set of deaths.

Every death goes through the same service code as ``POST /v1/screenings`` (as an API client of
its own), so the screenings, the referrals the configured rules raise, the overrides, the
events and the audit rows are all real. Nothing here is a real person: NHS numbers come from the
reserved 999 test range (with valid Modulus 11 check digits) and the names are made up.

Each death is drawn from its own generator seeded by (seed, index), so a death is the same
whatever the number asked for (its dates follow today, or the ``at`` given), and its
``source_reference`` names the seed and index: a second run with the same seed finds the deaths
already there and creates nothing new.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.errors import Conflict
from app.kit.enums import AdmissionMethod, CoronerReason, ReasonCode, Route
from app.kit.nhs_number import check_digit
from app.kit.time import LONDON, age_in_years, local_date, now
from app.models import ApiClient, Death, Referral, RouteOverride
from app.referrals.rules import RuleConfig, RuleFacts, required_routes
from app.referrals.service import rule_config
from app.screenings.intake import ScreeningCreate
from app.screenings.service import record_screening

SOURCE_SYSTEM = "lfd-demo"
CLIENT_NAME = "lfd demo loader"
CHUNK_SIZE = 200
MAX_DEATHS = 100_000  # the NHS-number scheme below gives each index of a seed its own number

# (1a, 1b, 2, diagnosis group): MCCD wording and a SHMI-style diagnosis group.
Cause = tuple[str, str | None, str | None, str]
R = CoronerReason


@dataclass(frozen=True)
class Specialty:
    name: str
    weight: float
    causes: tuple[Cause, ...]
    wards: tuple[str, ...]
    elective: float = 0.03
    unexpected: float = 0.10
    coroner: float = 0.08
    coroner_reasons: tuple[CoronerReason, ...] = (R.cause_unknown, R.medical_treatment_or_procedure)
    min_age: int = 18
    admitted_by: tuple[str, ...] = ()  # specialties that admit patients who die under this one


# fmt: off
ADULT_SPECIALTIES = (
    Specialty("General Medicine", 22, (
        ("Community-acquired pneumonia", None, "Chronic kidney disease stage 4", "Pneumonia"),
        ("Urosepsis", "Urinary tract infection", "Type 2 diabetes mellitus", "Sepsis"),
        ("Congestive cardiac failure", "Ischaemic heart disease", "Atrial fibrillation",
         "Heart failure"),
        ("Acute kidney injury", "Dehydration", "Dementia", "Acute kidney injury"),
    ), ("Acute Medical Unit", "Ward 12", "Ward 14")),
    Specialty("Care of the Elderly", 18, (
        ("Frailty of old age", None, None, "Senility"),
        ("Aspiration pneumonia", "Alzheimer's disease", None, "Aspiration pneumonitis"),
        ("Lower respiratory tract infection", "Vascular dementia", "Parkinson's disease",
         "Pneumonia"),
    ), ("Elderly Care Ward 3", "Ward 21", "Frailty Unit"), unexpected=0.05, min_age=72),
    Specialty("Respiratory", 10, (
        ("Infective exacerbation of COPD", "Chronic obstructive pulmonary disease",
         "Ischaemic heart disease", "COPD"),
        ("Community-acquired pneumonia", None, "Type 2 respiratory failure", "Pneumonia"),
        ("Idiopathic pulmonary fibrosis", None, None, "Lung disease"),
    ), ("Respiratory Ward 8", "Respiratory Support Unit")),
    Specialty("Cardiology", 7, (
        ("Acute myocardial infarction", "Coronary artery atherosclerosis",
         "Type 2 diabetes mellitus", "Acute myocardial infarction"),
        ("Congestive cardiac failure", "Severe aortic stenosis", None, "Heart failure"),
        ("Cardiogenic shock", "Acute myocardial infarction", None, "Acute myocardial infarction"),
    ), ("Coronary Care Unit", "Cardiology Ward 5"), elective=0.08, unexpected=0.2),
    Specialty("Gastroenterology", 6, (
        ("Decompensated liver cirrhosis", "Alcohol-related liver disease", None, "Liver disease"),
        ("Upper gastrointestinal haemorrhage", "Oesophageal varices",
         "Alcohol-related liver disease", "Gastrointestinal haemorrhage"),
        ("Clostridioides difficile colitis", None, "Frailty", "Intestinal infection"),
    ), ("Gastroenterology Ward 9",), unexpected=0.15, coroner=0.12),
    Specialty("Oncology", 8, (
        ("Metastatic carcinoma of the lung", None, None, "Cancer of bronchus; lung"),
        ("Metastatic adenocarcinoma of the colon", None, None, "Cancer of colon"),
        ("Carcinoma of the pancreas", None, "Type 2 diabetes mellitus", "Cancer of pancreas"),
        ("Neutropenic sepsis", "Chemotherapy for carcinoma of the breast", None, "Sepsis"),
    ), ("Oncology Ward 4",), elective=0.15, unexpected=0.04, coroner=0.03),
    Specialty("Haematology", 2, (
        ("Acute myeloid leukaemia", None, None, "Leukaemias"),
        ("Neutropenic sepsis", "Multiple myeloma", None, "Sepsis"),
    ), ("Haematology Ward 6",), elective=0.1),
    Specialty("Renal Medicine", 2, (
        ("End-stage renal failure", "Diabetic nephropathy", "Ischaemic heart disease",
         "Chronic renal failure"),
    ), ("Renal Ward 10",)),
    Specialty("Stroke", 5, (
        ("Cerebral infarction", "Atrial fibrillation", "Hypertension",
         "Acute cerebrovascular disease"),
        ("Intracerebral haemorrhage", "Hypertension", None, "Acute cerebrovascular disease"),
    ), ("Hyperacute Stroke Unit", "Stroke Ward 11"), unexpected=0.15),
    Specialty("Critical Care", 6, (
        ("Multi-organ failure", "Septic shock", "Community-acquired pneumonia", "Sepsis"),
        ("Hypoxic brain injury", "Out-of-hospital cardiac arrest", None, "Cardiac arrest"),
        ("Acute respiratory distress syndrome", "Acute pancreatitis", None,
         "Pancreatic disorders"),
    ), ("Intensive Care Unit",), unexpected=0.35, coroner=0.3,
        admitted_by=("General Medicine", "General Surgery", "Emergency Medicine")),
    Specialty("General Surgery", 5, (
        ("Faecal peritonitis", "Perforated sigmoid diverticulum",
         "Chronic obstructive pulmonary disease", "Peritonitis"),
        ("Small bowel ischaemia", "Mesenteric artery thrombosis", "Atrial fibrillation",
         "Intestinal obstruction"),
        ("Hospital-acquired pneumonia", "Laparotomy for small bowel obstruction", None,
         "Intestinal obstruction"),
    ), ("Surgical Assessment Unit", "Ward 15"), elective=0.15, unexpected=0.25, coroner=0.25,
        coroner_reasons=(R.medical_treatment_or_procedure, R.otherwise_unnatural)),
    Specialty("Orthopaedics", 3, (
        ("Hospital-acquired pneumonia", "Fractured neck of femur", "Dementia",
         "Fracture of neck of femur (hip)"),
        ("Pulmonary embolism", "Total knee replacement", None, "Pulmonary embolism"),
    ), ("Trauma Ward 16", "Orthogeriatric Ward"), elective=0.15, coroner=0.6, min_age=60,
        coroner_reasons=(R.violence_trauma_or_injury, R.medical_treatment_or_procedure)),
    Specialty("Urology", 1, (
        ("Urosepsis", "Obstructive uropathy", "Carcinoma of the prostate", "Sepsis"),
    ), ("Urology Ward 17",), elective=0.2),
    Specialty("Vascular Surgery", 1, (
        ("Ruptured abdominal aortic aneurysm", None, "Hypertension", "Aortic aneurysm"),
    ), ("Vascular Ward 18",), elective=0.2, unexpected=0.4, coroner=0.3),
    Specialty("Neurology", 1, (
        ("Motor neurone disease", None, None, "Other nervous system disorders"),
    ), ("Neurology Ward 19",), unexpected=0.03),
    Specialty("Palliative Medicine", 1, (
        ("Metastatic carcinoma of the breast", None, None, "Cancer of breast"),
        ("Metastatic carcinoma of the prostate", None, None, "Cancer of prostate"),
    ), ("Palliative Care Unit",), elective=0.3, unexpected=0.0, coroner=0.0),
)
EMERGENCY_MEDICINE = Specialty("Emergency Medicine", 0, (
    ("Out-of-hospital cardiac arrest", "Ischaemic heart disease", None, "Cardiac arrest"),
    ("Traumatic brain injury", "Fall from standing height", None, "Intracranial injury"),
    ("Ruptured abdominal aortic aneurysm", None, None, "Aortic aneurysm"),
    ("Pulmonary embolism", None, "Metastatic carcinoma of the lung", "Pulmonary embolism"),
), ("Resuscitation",), unexpected=0.7, coroner=0.5, coroner_reasons=(
    R.cause_unknown, R.cause_unknown, R.violence_trauma_or_injury, R.self_harm, R.poisoning,
    R.medicinal_product_or_drug,
))
PAEDIATRICS = Specialty("Paediatrics", 0, (
    ("Overwhelming sepsis", "Meningococcal meningitis", None, "Sepsis"),
    ("Respiratory failure", "Cerebral palsy", None, "Other respiratory"),
    ("Acute lymphoblastic leukaemia", None, None, "Leukaemias"),
), ("Paediatric Ward", "Paediatric Intensive Care Unit"), unexpected=0.5, coroner=0.4,
    coroner_reasons=(R.cause_unknown, R.violence_trauma_or_injury), min_age=0)
NEONATOLOGY = Specialty("Neonatology", 0, (
    ("Extreme prematurity", None, None, "Short gestation; low birth weight"),
    ("Hypoxic ischaemic encephalopathy", None, None, "Perinatal conditions"),
    ("Congenital diaphragmatic hernia", None, None, "Congenital anomalies"),
), ("Neonatal Intensive Care Unit",), unexpected=0.4, coroner=0.2, min_age=0)
OBSTETRICS = Specialty("Obstetrics", 0, (
    ("Postpartum haemorrhage", None, None, "Complications of birth"),
    ("Pulmonary embolism", "Caesarean section", None, "Complications of pregnancy"),
    ("Septic shock", "Chorioamnionitis", None, "Sepsis"),
    ("Intracerebral haemorrhage", "Pre-eclampsia", None, "Complications of pregnancy"),
), ("Delivery Suite", "Intensive Care Unit"), unexpected=0.9, coroner=0.6, coroner_reasons=(
    R.medical_treatment_or_procedure, R.cause_unknown, R.otherwise_unnatural,
))

SITES = (("Synthetica General Hospital", 45), ("Exampleton Royal Infirmary", 35),
         ("Demoford District Hospital", 20))
COMMUNITY_SITE = "Sampleby Community Hospital"
GIVEN = {
    "female": ("Ada", "Beryl", "Carol", "Doris", "Edna", "Freda", "Gwen", "Hilda", "Irene",
               "Joan", "Kath", "Lily", "Mabel", "Nora", "Olive", "Peggy", "Rita", "Sheila"),
    "male": ("Albert", "Bernard", "Cyril", "Dennis", "Eric", "Frank", "George", "Harold", "Ivan",
             "Jack", "Ken", "Leonard", "Maurice", "Norman", "Owen", "Percy", "Ron", "Stanley"),
}
FAMILY = ("Synthetica", "Exampleton", "Demoford", "Testwell", "Fictionson", "Samplewood",
          "Placeholder", "Madeupson", "Notreal", "Pretendale", "Imaginary", "Mockridge",
          "Dummyfield", "Fakenham-Test", "Specimen", "Stubbington")
EXAMINERS = (("Dr Ada Examplewood", "0990001"), ("Dr Basil Synthetica", "0990002"),
             ("Dr Cora Demoford", "0990003"), ("Dr Dev Testwell", "0990004"),
             ("Dr Esme Fictionson", "0990005"))
ETHNICITY = (("A", 78), ("B", 2), ("C", 3), ("D", 1), ("F", 1), ("G", 1), ("H", 3), ("J", 2),
             ("K", 1), ("L", 1), ("M", 1), ("N", 1), ("R", 1), ("S", 1), ("Z", 3))
SEASON = (1.25, 1.15, 1.05, 0.98, 0.93, 0.90, 0.88, 0.87, 0.90, 0.97, 1.03, 1.18)  # Jan..Dec
ADULT_AGES = ((18, 44, 3), (45, 64, 14), (65, 74, 18), (75, 84, 32), (85, 94, 28), (95, 104, 5))

BEREAVED = (
    "The family feel the deterioration over the weekend was not acted on quickly enough.",
    "The daughter says her mother was not helped to eat and drink on the ward.",
    "The family were not told how unwell he was until shortly before he died.",
    "The family are concerned about delays in pain relief at the end of life.",
)
STAFF = (
    "A nurse reported that abnormal observations were not escalated overnight.",
    "The registrar reported a delay of a day in getting a CT scan.",
    "Staff reported that the ward was short of two nurses on the night of the death.",
)
GOVERNANCE = (
    "Delay in recognising sepsis: antibiotics six hours after the first red flags.",
    "Anticoagulation was not restarted after the procedure.",
    "No treatment escalation plan despite three admissions in two months.",
    "Possible missed diagnosis at an emergency department attendance two days earlier.",
)
SAFETY = (
    "Unwitnessed fall on the ward with a head injury two days before death.",
    "Medication incident: a double dose of insulin was given.",
    "NEWS2 of 7 not escalated for five hours.",
)
SJR_OVERRIDE = (
    "Planned admission for end-of-life care: the death was expected and anticipated in the "
    "care plan, and neither the family nor staff raised any concern."
)
MM_OVERRIDE = "Already presented at the specialty's weekly mortality meeting before this review."
# fmt: on


def financial_year(moment: datetime) -> int:
    """The year a financial year (April to March, UK local time) starts in."""
    local = moment.astimezone(LONDON)
    return local.year if local.month >= 4 else local.year - 1


def demo_window(moment: datetime) -> tuple[datetime, datetime]:
    """From 1 April of the previous financial year to three days ago, so that every death has
    been screened (the ME screens within one to three days)."""
    start = datetime(financial_year(moment) - 1, 4, 1, tzinfo=LONDON)
    return start, moment - timedelta(days=3)


def nhs_number(seed: int, index: int) -> str:
    """A 999-range test number, different for every index of a seed: digits 4-8 are a
    permutation of the index, the ninth is the first that gives a valid check digit."""
    offset = int.from_bytes(hashlib.sha256(f"nhs:{seed}".encode()).digest()[:4], "big")
    stem = f"999{(index * 7919 + offset) % 100_000:05d}"
    for ninth in range(10):
        digit = check_digit(stem + str(ninth))
        candidate = f"{stem}{ninth}{digit}"
        if digit is not None and len(set(candidate)) > 1:
            return candidate
    raise AssertionError("unreachable: some ninth digit always gives a check digit")


def _consultants(specialty: str) -> list[str]:
    base = sum(specialty.encode())
    return [
        f"Dr {chr(65 + (base + k * 7) % 26)} {FAMILY[(base + k * 5) % len(FAMILY)]}"
        for k in range(3)
    ]


def _at_local(day: date, minutes: int) -> datetime:
    """A wall-clock time in UK local time on a day (minutes after midnight)."""
    return datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=LONDON)


class _Draw:
    """One synthetic death and its screening, from its own random generator."""

    def __init__(self, seed: int, index: int, window: tuple[datetime, datetime]) -> None:
        # Reproducible synthetic data, not secrets.
        self.rng = random.Random(f"lfd-demo:{seed}:{index}")  # noqa: S311
        self.seed, self.index, self.window = seed, index, window

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def pick(self, weighted: tuple[tuple[Any, float], ...]) -> Any:
        values, weights = zip(*weighted, strict=True)
        return self.rng.choices(values, weights)[0]

    def died_at(self) -> datetime:
        start, end = self.window
        span = (end - start).total_seconds()
        for _ in range(50):  # winter has more deaths: thin the summer months
            moment = start + timedelta(seconds=self.rng.random() * span)
            if self.rng.random() * max(SEASON) < SEASON[moment.astimezone(LONDON).month - 1]:
                return moment
        return moment

    def body(self, config: RuleConfig) -> dict[str, Any]:
        rng = self.rng
        died_at = self.died_at()
        died_on = local_date(died_at)
        kind = self.pick(
            (
                ("neonate", 4),
                ("child", 6),
                ("maternal", 2),
                ("ed", 60),
                ("after_discharge", 25),
                ("inpatient", 903),
            )
        )
        specialty: Specialty = {
            "neonate": NEONATOLOGY,
            "child": PAEDIATRICS,
            "maternal": OBSTETRICS,
            "ed": EMERGENCY_MEDICINE,
        }.get(kind) or self.pick(
            tuple(
                (s, s.weight)
                for s in ADULT_SPECIALTIES
                if kind == "inpatient" or s.name not in {"Critical Care", "Palliative Medicine"}
            )
        )
        rates = specialty  # a maternal death moved to critical care keeps obstetric rates
        sex = "female" if kind == "maternal" else self.pick((("male", 51), ("female", 49)))
        admitted_at: datetime | None = None
        discharged_at: datetime | None = None
        if kind == "neonate":
            admitted_at = died_at - timedelta(hours=rng.uniform(0.5, 26 * 24))
            born = local_date(admitted_at)
        else:
            if kind == "child":
                years = self.pick(((0, 40), (rng.randint(1, 4), 20), (rng.randint(5, 17), 40)))
                extra_days = rng.randint(30 if years == 0 else 0, 360)
            elif kind == "maternal":
                years, extra_days = rng.randint(19, 44), rng.randint(0, 364)
            else:
                low, high, _ = self.pick(tuple(((lo, hi, w), w) for lo, hi, w in ADULT_AGES))
                years, extra_days = rng.randint(low, high), rng.randint(0, 364)
                if years < specialty.min_age:
                    years = rng.randint(specialty.min_age, specialty.min_age + 25)
            born = died_on - timedelta(days=round(years * 365.25) + extra_days)
        age = age_in_years(born, died_on)

        place, site = "inpatient", self.pick(SITES)
        method = AdmissionMethod.emergency
        if kind == "ed":
            place, method = "emergency_department", AdmissionMethod.not_admitted
        elif kind in {"neonate", "maternal"}:
            method = AdmissionMethod.maternity
        elif self.chance(rates.elective):
            method = AdmissionMethod.elective
        elif self.chance(0.04):
            method = AdmissionMethod.transfer
        if kind == "after_discharge":
            place = self.pick((("home", 60), ("care_home", 40)))
            discharged_at = died_at - timedelta(hours=rng.uniform(20, 29 * 24))
            admitted_at = discharged_at - timedelta(hours=rng.lognormvariate(4.3, 0.8))
        elif kind == "inpatient" and specialty.name == "Care of the Elderly" and self.chance(0.12):
            place, site = "community_hospital", COMMUNITY_SITE
        elif kind == "inpatient" and specialty.name == "Palliative Medicine" and self.chance(0.3):
            place = "hospice"
        if kind not in {"ed", "neonate", "after_discharge"}:
            admitted_at = died_at - timedelta(hours=rng.lognormvariate(4.9, 1.0) + 1)
            if admitted_at.astimezone(LONDON).date() < born:
                admitted_at = _at_local(born, 12 * 60)
        admitting = rng.choice(specialty.admitted_by) if specialty.admitted_by else specialty.name
        if kind == "maternal" and self.chance(0.5):
            specialty = next(s for s in ADULT_SPECIALTIES if s.name == "Critical Care")
            admitting = OBSTETRICS.name
        cause = rng.choice(rates.causes)

        adult = age >= 18
        learning_disability = adult and self.chance(0.015)
        autism = adult and self.chance(0.25 if learning_disability else 0.004)
        smi = adult and self.chance(0.03)
        expected = not self.chance(rates.unexpected)
        coroner = self.chance(rates.coroner if expected else min(1.0, rates.coroner * 2.5))
        unknown_identity = kind == "ed" and self.chance(0.03)
        coroner_reason = None
        if unknown_identity:
            coroner, coroner_reason = True, R.identity_unknown
        elif coroner:
            coroner_reason = rng.choice(rates.coroner_reasons)
        worry = 2.5 if not expected else 1.0
        bereaved = rng.choice(BEREAVED) if self.chance(0.04 * worry) else None
        staff = rng.choice(STAFF) if self.chance(0.015 * worry) else None
        governance = rng.choice(GOVERNANCE) if self.chance(0.02 * worry) else None
        safety = rng.choice(SAFETY) if self.chance(0.006 * worry) else None

        screened_on = died_on + timedelta(days=rng.randint(1, 3))
        screened_at = min(_at_local(screened_on, rng.randint(510, 1050)), now())
        mccd = None
        if not coroner:
            mccd = min(screened_at + timedelta(minutes=rng.randint(30, 360)), now())
        unascertained = coroner_reason in {R.cause_unknown, R.identity_unknown}

        given = rng.choice(GIVEN["female" if sex == "female" else "male"])
        death: dict[str, Any] = {
            "source_system": SOURCE_SYSTEM,
            "source_reference": f"DEMO-{self.seed}-{self.index:06d}",
            "nhs_number": None if unknown_identity else nhs_number(self.seed, self.index),
            "nhs_number_status": "03" if unknown_identity else self.pick((("01", 95), ("02", 5))),
            "local_patient_id": f"SYN{self.index:07d}",
            "given_name": None if unknown_identity else ("Baby" if kind == "neonate" else given),
            "family_name": None if unknown_identity else rng.choice(FAMILY),
            "date_of_birth": born,
            "sex": sex,
            "postcode": None
            if unknown_identity or self.chance(0.02)
            else f"ZZ{rng.randint(1, 9)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
            f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
            "ethnicity": self.pick(ETHNICITY),
            "died_at": died_at,
            "place_of_death": place,
            "site": site,
            "ward": None
            if kind == "after_discharge"
            else rng.choice(
                ("Rehabilitation Ward",) if place == "community_hospital" else specialty.wards
            ),
            "admitting_specialty": admitting,
            "specialty_at_death": specialty.name,
            "diagnosis_group": cause[3],
            "consultant": rng.choice(_consultants(specialty.name)),
            "admission_method": method.value,
            "admitted_at": admitted_at,
            "discharged_at": discharged_at,
            "learning_disability": learning_disability,
            "autism": autism,
            "serious_mental_illness": smi,
            "pregnant_or_recently_pregnant": kind == "maternal",
        }
        examiner, gmc = rng.choice(EXAMINERS)
        screening: dict[str, Any] = {
            "examiner": {"name": examiner, "gmc_number": gmc},
            "screened_at": screened_at,
            "records_reviewed": self.chance(0.99),
            "qap_discussed": self.chance(0.97),
            "bereaved_contacted": not unknown_identity and self.chance(0.93),
            "bereaved_concerns": bereaved,
            "staff_concerns": staff,
            "cause_of_death": {}
            if unascertained
            else {"part_1a": cause[0], "part_1b": cause[1], "part_2": cause[2]},
            "mccd_issued_at": mccd,
            "coroner_notified": coroner,
            "coroner_reason": coroner_reason.value if coroner_reason else None,
            "clinical_governance_concern": governance,
            "death_expected": expected,
            "patient_safety_concern": safety,
            "routes_requested": ["complaint"] if bereaved and self.chance(0.25) else [],
            "overrides": [],
        }
        screening["overrides"] = self.overrides(death, screening, born, died_on, config)
        return {"death": death, "screening": screening}

    def overrides(
        self,
        death: dict[str, Any],
        screening: dict[str, Any],
        born: date,
        died_on: date,
        config: RuleConfig,
    ) -> list[dict[str, str]]:
        """A few required routes the ME declines, always with a reason, and only where the
        rules (as configured) really require them."""
        facts = RuleFacts(
            age_years=age_in_years(born, died_on),
            age_days=(died_on - born).days,
            learning_disability=death["learning_disability"],
            autism=death["autism"],
            serious_mental_illness=death["serious_mental_illness"],
            pregnant_or_recently_pregnant=death["pregnant_or_recently_pregnant"],
            admission_method=AdmissionMethod(death["admission_method"]),
            specialties=(death["admitting_specialty"], death["specialty_at_death"]),
            diagnosis_group=death["diagnosis_group"],
            bereaved_concern=screening["bereaved_concerns"] is not None,
            staff_concern=screening["staff_concerns"] is not None,
            me_concern=screening["clinical_governance_concern"] is not None,
            death_expected=screening["death_expected"],
            coroner_notified=screening["coroner_notified"],
            patient_safety_concern=screening["patient_safety_concern"] is not None,
            sample_key="",
        )
        required = required_routes(facts, config)
        declined: list[dict[str, str]] = []
        if required.get(Route.sjr) == [ReasonCode.elective_admission] and self.chance(0.35):
            declined.append({"route": Route.sjr.value, "reason": SJR_OVERRIDE})
        if required.get(Route.mm) == [ReasonCode.specialty_mm] and self.chance(0.08):
            declined.append({"route": Route.mm.value, "reason": MM_OVERRIDE})
        return declined


def synthetic_screening(
    seed: int, index: int, window: tuple[datetime, datetime], config: RuleConfig
) -> dict[str, Any]:
    """The ``POST /v1/screenings`` body for death number ``index`` of ``seed``."""
    return _Draw(seed, index, window).body(config)


@dataclass
class Summary:
    created: int = 0
    existing: int = 0
    referrals: Counter[str] = field(default_factory=Counter)
    overrides: int = 0


async def _demo_principal(database: Database) -> Principal:
    """The demo loader's own API client (made once, reused after): the audit and the events
    say that the demo wrote these rows."""
    async with database.transaction() as session:
        client = await session.scalar(
            select(ApiClient)
            .where(ApiClient.name == CLIENT_NAME, ApiClient.revoked_at.is_(None))
            .order_by(ApiClient.created_at)
            .limit(1)
        )
        if client is None:
            client = (await create_client(session, CLIENT_NAME, [Scope.screenings_write])).client
    return Principal(
        client_id=client.id,
        client_name=client.name,
        scopes=frozenset(client.scopes),
        pseudonymised=False,
        on_behalf_of=None,
        request_id=None,
    )


async def _existing(session: AsyncSession, references: list[str]) -> set[str]:
    rows = await session.scalars(
        select(Death.source_reference).where(
            Death.source_system == SOURCE_SYSTEM, Death.source_reference.in_(references)
        )
    )
    return set(rows.all())


async def _load_chunk(
    database: Database,
    principal: Principal,
    bodies: list[dict[str, Any]],
    summary: Summary,
) -> None:
    """One transaction for a chunk: every death through the API's own service function."""
    async with database.transaction() as session:
        there = await _existing(session, [b["death"]["source_reference"] for b in bodies])
        for body in bodies:
            if body["death"]["source_reference"] in there:
                summary.existing += 1
                continue
            try:
                recorded = await record_screening(
                    session, principal, database.settings, ScreeningCreate.model_validate(body)
                )
            except Conflict:  # created meanwhile by another run with the same seed
                summary.existing += 1
                continue
            summary.created += 1
            summary.referrals.update(referral.route.value for referral in recorded.referrals)
            summary.overrides += sum(r.outcome == "overridden" for r in recorded.required_routes)


async def _totals(database: Database) -> tuple[int, list[tuple[str, int]], int]:
    async with database.transaction() as session:
        deaths = await session.scalar(
            select(func.count()).select_from(Death).where(Death.source_system == SOURCE_SYSTEM)
        )
        by_route = (
            await session.execute(
                select(Referral.route, func.count())
                .join(Death, Death.id == Referral.death_id)
                .where(Death.source_system == SOURCE_SYSTEM)
                .group_by(Referral.route)
                .order_by(func.count().desc(), Referral.route)
            )
        ).all()
        overrides = await session.scalar(
            select(func.count())
            .select_from(RouteOverride)
            .join(Death, Death.id == RouteOverride.death_id)
            .where(Death.source_system == SOURCE_SYSTEM)
        )
    return int(deaths or 0), [(str(r), int(n)) for r, n in by_route], int(overrides or 0)


async def run_demo(
    settings: Settings, *, deaths: int = 3000, seed: int = 2026, at: datetime | None = None
) -> int:
    """Load ``deaths`` synthetic deaths into an already migrated database; the exit code.

    ``at`` stands for "now" when choosing the two financial years (tests pin it)."""
    if not 1 <= deaths <= MAX_DEATHS:
        print(f"--deaths must be between 1 and {MAX_DEATHS}", file=sys.stderr)
        return 2
    moment = at or now()
    window = demo_window(moment)
    config = rule_config(settings)
    first_year = financial_year(window[0])
    print(
        f"Loading {deaths} synthetic deaths (seed {seed}) from {local_date(window[0])} to "
        f"{local_date(window[1])}: financial years {first_year}/{(first_year + 1) % 100:02d} "
        f"and {first_year + 1}/{(first_year + 2) % 100:02d}.",
        flush=True,
    )
    started = time.monotonic()
    database = Database(settings)
    summary = Summary()
    try:
        principal = await _demo_principal(database)
        for chunk_start in range(0, deaths, CHUNK_SIZE):
            indices = range(chunk_start, min(chunk_start + CHUNK_SIZE, deaths))
            bodies = [synthetic_screening(seed, index, window, config) for index in indices]
            await _load_chunk(database, principal, bodies, summary)
            print(
                f"  {indices[-1] + 1}/{deaths}: {summary.created} created, "
                f"{summary.existing} already there",
                flush=True,
            )
        total, by_route, overrides = await _totals(database)
    finally:
        await database.dispose()
    elapsed = time.monotonic() - started
    print(f"Created {summary.created} deaths ({summary.existing} already there) in {elapsed:.1f}s.")
    if summary.created:
        routes = ", ".join(f"{r} {n}" for r, n in sorted(summary.referrals.items()))
        print(
            f"Referrals raised: {routes or 'none'}; required routes overridden: "
            f"{summary.overrides}."
        )
    print(
        f"In the database from {SOURCE_SYSTEM}: {total} deaths, referrals by route: "
        + (", ".join(f"{r} {n}" for r, n in by_route) or "none")
        + f"; overrides: {overrides}."
    )
    return 0
