"""Clinical note summarization: synthetic outpatient notes and faithful summaries that keep every key fact verbatim.

The chosen summary contains each `key_facts` string (assessment with laterality, every medication with dose and
frequency, the allergy status, the key lab, the follow-up interval). The rejected summary is equally fluent but has
exactly one typed error: hallucinated_fact (a drug the note never mentions), wrong_dose (one medication's dose
changed), dropped_allergy (the allergy left out) or flipped_laterality (left <-> right). The drug names it writes are
all in the unsupported-fact metric's lexicon (align/tasks/text.py DRUG_LEXICON; tested).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from align.data.tasks.common import Item, RejectedLabelPicker, Rows, add_errors, assign_splits, resolve_mix, to_rows
from align.tasks.builtin import SUMMARIZATION

TASK = "summarization"
INSTRUCTION = SUMMARIZATION.instruction  # the task's own definition: align/tasks/builtin.py
DEFAULT_MIX = {"hallucinated_fact": 0.25, "wrong_dose": 0.25, "dropped_allergy": 0.25, "flipped_laterality": 0.25}

# fmt: off
MEDS: tuple[tuple[str, tuple[str, ...], str], ...] = (  # (drug, doses, frequency)
    ("metformin", ("500 mg", "850 mg", "1000 mg"), "twice daily"),
    ("lisinopril", ("10 mg", "20 mg", "40 mg"), "once daily"),
    ("atorvastatin", ("20 mg", "40 mg", "80 mg"), "at bedtime"),
    ("amlodipine", ("5 mg", "10 mg"), "once daily"),
    ("levothyroxine", ("50 mcg", "75 mcg", "100 mcg"), "every morning"),
    ("omeprazole", ("20 mg", "40 mg"), "once daily"),
    ("metoprolol succinate", ("25 mg", "50 mg", "100 mg"), "once daily"),
    ("sertraline", ("50 mg", "100 mg"), "once daily"),
    ("gabapentin", ("300 mg", "600 mg"), "three times daily"),
    ("losartan", ("25 mg", "50 mg", "100 mg"), "once daily"),
    ("hydrochlorothiazide", ("12.5 mg", "25 mg"), "once daily"),
    ("apixaban", ("2.5 mg", "5 mg"), "twice daily"),
    ("insulin glargine", ("10 units", "20 units", "30 units"), "at bedtime"),
    ("tiotropium", ("18 mcg", "2.5 mcg"), "once daily"),
)
ALLERGIES = (("penicillin", "hives"), ("sulfamethoxazole", "rash"), ("codeine", "vomiting"),
             ("amoxicillin", "rash"), ("aspirin", "wheezing"), ("ciprofloxacin", "tendon pain"))


@dataclass(frozen=True)
class Scenario:
    assessment: str  # "{side}" is filled with left/right when lateral
    hpis: tuple[str, ...]
    exams: tuple[str, ...]
    plans: tuple[str, ...]
    labs: tuple[tuple[str, tuple[float, float], str], ...]  # (name, range, unit); the first is the key lab
    lateral: bool = False
    required_med: str = ""  # a medication the plan refers to ("anticoagulation as listed")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("osteoarthritis of the {side} knee", ("{n}-month history of {side} knee pain, worse on stairs and after walking.", "Gradually worsening {side} knee pain for {n} months with morning stiffness under 30 minutes."), ("{side} knee with crepitus and a small effusion; no warmth.", "Reduced flexion of the {side} knee; medial joint line tenderness."), ("Physical therapy referral and a steroid injection into the {side} knee.", "Weight-bearing X-ray of the {side} knee and a home exercise program."), (("ESR", (5, 20), " mm/h"), ("uric acid", (3.5, 6.0), " mg/dL")), True),
    Scenario("cellulitis of the {side} lower leg", ("Redness and swelling of the {side} shin for {n} days after a scrape while gardening.", "{n} days of a warm, painful red area on the {side} lower leg."), ("Warm erythema over the {side} shin with poorly defined borders; no fluctuance.", "Tender erythema of the {side} lower leg; pulses intact."), ("Start cephalexin 500 mg four times daily for 5 days and mark the border of the redness.", "Start cephalexin 500 mg four times daily; elevate the {side} leg."), (("white cell count", (9.5, 15.0), " x10^9/L"), ("C-reactive protein", (12, 80), " mg/L")), True),
    Scenario("type 2 diabetes with suboptimal control", ("Routine diabetes follow-up; reports thirst and checks sugars {n} times a week.", "Here to review diabetes; home glucose readings mostly above 180 for {n} weeks."), ("Monofilament sensation intact in both feet; BMI 33.", "Feet without ulcers; blood pressure 138/84."), ("Refer to diabetes education and repeat the A1c in 3 months.", "Dietitian referral and daily home glucose checks."), (("hemoglobin A1c", (7.6, 9.8), "%"), ("creatinine", (0.7, 1.3), " mg/dL"))),
    Scenario("right lower lobe pneumonia", ("Fever and productive cough for {n} days with pleuritic chest pain.", "{n} days of cough with green sputum, fevers and tiredness."), ("Crackles at the right base; oxygen saturation 95% on room air.", "Dullness and crackles over the right lower chest."), ("Start amoxicillin 1 g three times daily for 5 days; return if short of breath.", "Start amoxicillin 1 g three times daily and repeat chest X-ray in 6 weeks."), (("white cell count", (11.0, 18.0), " x10^9/L"), ("C-reactive protein", (40, 160), " mg/L"))),
    Scenario("{side} ureteral stone of 5 mm", ("Colicky {side} flank pain radiating to the groin for {n} days with blood in the urine.", "Sudden {side} flank pain {n} days ago, now intermittent, with nausea."), ("{side} costovertebral angle tenderness; afebrile.", "Mild {side} flank tenderness; abdomen soft."), ("Start tamsulosin 0.4 mg daily, strain the urine and drink 2 to 3 liters daily.", "Start tamsulosin 0.4 mg daily; urology referral if the stone does not pass."), (("creatinine", (0.7, 1.4), " mg/dL"), ("urine red cells", (10, 50), " per high-power field")), True),
    Scenario("heart failure with reduced ejection fraction", ("Worsening shortness of breath and ankle swelling over {n} days; weight up 3 kg.", "Needs two extra pillows at night for {n} days; more tired on walking."), ("Bilateral ankle edema and raised jugular venous pressure.", "Fine crackles at both bases; pitting edema to mid-shin."), ("Start furosemide 40 mg daily and check weight every morning.", "Start furosemide 40 mg daily; echocardiogram in 2 weeks."), (("BNP", (420, 1400), " pg/mL"), ("potassium", (3.6, 5.0), " mmol/L"))),
    Scenario("carpal tunnel syndrome of the {side} wrist", ("Numbness of the {side} thumb and index finger at night for {n} months.", "{n} months of tingling in the {side} hand that wakes the patient."), ("Positive Phalen and Tinel signs at the {side} wrist.", "Reduced sensation of the {side} index finger; thenar bulk preserved."), ("Night splint for the {side} wrist and nerve conduction studies.", "Wrist splint at night and hand therapy referral for the {side} wrist."), (("TSH", (0.8, 3.9), " mIU/L"), ("glucose", (85, 125), " mg/dL")), True),
    Scenario("deep vein thrombosis of the {side} leg", ("Swelling and aching of the {side} calf for {n} days after a long flight.", "{side} calf pain and swelling for {n} days; recent knee surgery."), ("{side} calf 3 cm larger than the other; tender along the deep veins.", "Pitting edema of the {side} leg; no chest findings."), ("Compression ultrasound confirmed the clot; anticoagulation as listed and leg elevation.", "Anticoagulation as listed; return at once for chest pain or breathlessness."), (("D-dimer", (900, 3200), " ng/mL"), ("platelets", (160, 380), " x10^9/L")), True, "apixaban"),
    Scenario("rotator cuff tear of the {side} shoulder", ("Pain and weakness lifting the {side} arm for {n} weeks after a fall.", "{n} weeks of {side} shoulder pain at night and when reaching overhead."), ("Weak external rotation of the {side} shoulder; positive drop-arm sign.", "Painful arc and reduced abduction of the {side} shoulder."), ("MRI of the {side} shoulder and orthopedic referral.", "Physical therapy for the {side} shoulder and MRI if no better in 6 weeks."), (("ESR", (4, 18), " mm/h"), ("vitamin D", (18, 40), " ng/mL")), True),
    Scenario("a palpable mass in the {side} breast", ("Noticed a firm lump in the {side} breast {n} weeks ago; no nipple discharge.", "Painless {side} breast lump found on self-examination {n} weeks ago."), ("2 cm firm, mobile mass in the upper outer {side} breast; no axillary nodes.", "Irregular 1.5 cm mass in the {side} breast; skin normal."), ("Diagnostic mammogram and ultrasound of the {side} breast, then biopsy.", "Urgent breast imaging of the {side} side and breast surgery referral."), (("hemoglobin", (11.8, 14.6), " g/dL"), ("alkaline phosphatase", (50, 120), " U/L")), True),
    Scenario("COPD exacerbation", ("More breathlessness and sputum for {n} days after a cold.", "{n} days of wheeze and cough with thicker sputum."), ("Diffuse wheeze; oxygen saturation 92% on room air.", "Prolonged expiration with scattered wheeze."), ("Start prednisone 40 mg daily for 5 days and review inhaler technique.", "Start prednisone 40 mg daily for 5 days; pulmonary rehabilitation referral."), (("eosinophils", (0.1, 0.6), " x10^9/L"), ("white cell count", (7.0, 13.0), " x10^9/L"))),
)
# fmt: on
PLAN_DRUGS = ("cephalexin", "amoxicillin", "tamsulosin", "furosemide", "prednisone")
BETA_LACTAM_ALLERGIES = ("penicillin", "amoxicillin")  # never paired with a plan that starts a beta-lactam
ROS = (
    "No chest pain or palpitations.",
    "Denies weight loss or night sweats.",
    "No headache or vision change.",
    "Appetite normal; bowels regular.",
    "Sleeping poorly because of symptoms.",
    "No urinary symptoms.",
)
PMH = (
    "hypertension",
    "hyperlipidemia",
    "hypothyroidism",
    "depression",
    "GERD",
    "obesity",
    "type 2 diabetes",
    "atrial fibrillation",
    "COPD",
    "chronic kidney disease stage 2",
    "osteoporosis",
    "migraine",
)
SOCIAL = (
    "Never smoker; drinks alcohol socially.",
    "Former smoker, quit 10 years ago.",
    "Smokes 10 cigarettes a day.",
    "Lives alone; retired teacher.",
    "Works as a nurse; no tobacco use.",
    "Lives with spouse; walks daily.",
)


@dataclass
class Note:
    age: int
    sex: str
    assessment: str
    side: str  # "" when the condition has no side
    meds: list[tuple[str, str, str]]  # (drug, dose, frequency)
    allergy: tuple[str, str] | None
    key_lab: str
    plan: str
    follow_up: str
    pmh: list[str]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def med_text(drug: str, dose: str, freq: str) -> str:
    return f"{drug} {dose} {freq}"


def allergy_fact(note: Note) -> str:
    return f"allergic to {note.allergy[0]}" if note.allergy else "no known drug allergies"


def key_facts(note: Note) -> list[str]:
    meds = [med_text(*m) for m in note.meds]
    return [note.assessment, *meds, allergy_fact(note), note.key_lab, note.follow_up]


def _lab(rng: random.Random, name: str, lo_hi: tuple[float, float], unit: str) -> str:
    value = rng.uniform(*lo_hi)
    shown = f"{value:.1f}" if lo_hi[1] < 100 else f"{value:.0f}"
    return f"{name} {shown}{unit}"


def make_note(rng: random.Random, s: Scenario) -> tuple[Note, str]:
    side = rng.choice(("left", "right")) if s.lateral else ""
    n = rng.randint(2, 9)
    fill = lambda t: t.format(side=side, n=n)  # noqa: E731
    pool = [m for m in MEDS if m[0] != s.required_med]
    picked = rng.sample(pool, rng.randint(1, 3) if s.required_med else rng.randint(2, 4))
    picked += [m for m in MEDS if m[0] == s.required_med]
    meds = [(d, rng.choice(doses), f) for d, doses, f in picked]
    plan = fill(rng.choice(s.plans))
    beta_lactam = "amoxicillin" in plan or "cephalexin" in plan
    allergies = [a for a in ALLERGIES if not (beta_lactam and a[0] in BETA_LACTAM_ALLERGIES)]
    allergy = rng.choice(allergies) if rng.random() < 0.85 else None
    labs = [_lab(rng, *lab) for lab in s.labs] + [_lab(rng, "sodium", (136, 144), " mmol/L")]
    note = Note(
        rng.randint(35, 85),
        rng.choice(("man", "woman")),
        fill(s.assessment),
        side,
        meds,
        allergy,
        labs[0],
        fill(rng.choice(s.plans)),
        f"follow up in {rng.choice((1, 2, 3, 4, 6))} weeks",
        rng.sample(PMH, rng.randint(1, 3)),
    )
    allergy_line = f"Allergic to {allergy[0]} ({allergy[1]})." if allergy else "No known drug allergies."
    text = "\n".join(
        (
            f"CLINIC NOTE - {note.age}-year-old {note.sex}",
            f"HPI: {_cap(fill(rng.choice(s.hpis)))}",
            f"PMH: {', '.join(note.pmh)}.",
            f"Medications: {'; '.join(med_text(*m) for m in meds)}.",
            f"Allergies: {allergy_line}",
            f"Social history: {rng.choice(SOCIAL)}",
            f"ROS: {' '.join(rng.sample(ROS, 2))}",
            f"Vitals: BP {rng.randint(112, 158)}/{rng.randint(64, 94)}, HR {rng.randint(58, 98)}, "
            f"temperature {rng.uniform(36.4, 37.6):.1f} °C.",
            f"Exam: {_cap(fill(rng.choice(s.exams)))}",
            f"Labs: {', '.join(labs)}.",
            f"Assessment: {_cap(note.assessment)}.",
            f"Plan: {note.plan} Continue current medications; {note.follow_up}.",
        )
    )
    return note, text


def write_summary(note: Note, meds: list[str] | None = None, allergy: str | None = "", assessment: str = "") -> str:
    """A faithful summary; the optional arguments let `corrupt` swap in exactly one wrong piece."""
    meds = [med_text(*m) for m in note.meds] if meds is None else meds
    allergy = allergy_fact(note) if allergy == "" else allergy
    parts = [
        f"{note.age}-year-old {note.sex} with {', '.join(note.pmh)}, assessed for {assessment or note.assessment}.",
        f"Medications: {', '.join(meds)}.",
        f"{_cap(allergy)}." if allergy else "",
        f"Key lab: {note.key_lab}. Plan: {note.plan[:-1]}; {note.follow_up}.",
    ]
    return " ".join(p for p in parts if p)


def corrupt(item: Item, error_type: str, rng: random.Random, _labels: RejectedLabelPicker) -> tuple[str, dict]:
    note: Note = item.data["note"]
    meds = [med_text(*m) for m in note.meds]
    if error_type == "hallucinated_fact":
        source = item.meta["source"].lower()
        extra = rng.choice([m for m in MEDS if m[0] not in source])
        return write_summary(note, meds=[*meds, med_text(extra[0], rng.choice(extra[1]), extra[2])]), {}
    if error_type == "wrong_dose":
        i = rng.randrange(len(note.meds))
        drug, dose, freq = note.meds[i]
        doses = next(d for name, d, _ in MEDS if name == drug)
        meds[i] = med_text(drug, rng.choice([d for d in doses if d != dose]), freq)
        return write_summary(note, meds=meds), {}
    if error_type == "dropped_allergy":
        return write_summary(note, allergy=None), {}
    other = {"left": "right", "right": "left"}[note.side]
    return re.sub(rf"\b{note.side}\b", other, write_summary(note)), {}


def allowed_errors(item: Item) -> list[str]:
    note: Note = item.data["note"]
    return [
        e
        for e, ok in (
            ("hallucinated_fact", True),
            ("wrong_dose", True),
            ("dropped_allergy", note.allergy is not None),
            ("flipped_laterality", bool(note.side)),
        )
        if ok
    ]


def build(n: dict[str, int], seed: int, error_mix: dict[str, float] | None = None) -> Rows:
    """{split: {"sft": rows, "pref": rows}} with n[split] distinct notes per split."""
    rng = random.Random(f"{seed}-{TASK}")

    def make_item(counter: int) -> Item:
        scenario = SCENARIOS[counter % len(SCENARIOS)]
        note, text = make_note(rng, scenario)
        meta = {"source": text, "key_facts": key_facts(note)}
        key = (note.assessment, tuple(sorted(m[0] for m in note.meds)), note.allergy, note.age // 5, note.sex)
        return Item(key, INSTRUCTION, text, write_summary(note), meta, {"note": note})

    items = assign_splits(n, make_item)
    err_rng = random.Random(f"{seed}-{TASK}-err")
    add_errors(items, resolve_mix(error_mix, DEFAULT_MIX), allowed_errors, corrupt, err_rng)
    return to_rows(TASK, items)
