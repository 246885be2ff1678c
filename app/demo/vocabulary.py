"""The synthetic vocabulary the demo draws from: specialties and their diagnoses, sites,
made-up names, examiners, and the free text of concerns. Nothing here is a real person."""

from __future__ import annotations

from dataclasses import dataclass

from app.kit.enums import CoronerReason

SOURCE_SYSTEM = "lfd-demo"
CLIENT_NAME = "lfd demo loader"
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
