"""Clinical reasoning MCQs: diagnosis, next-best-step and drug-of-choice questions built from a condition table.

Distractors come first from clinically related conditions (so they are plausible), then from the rest of the table;
`avoid` lists options that would also be defensible answers for a condition and so never appear as its distractors.
The answer letter is balanced across positions. Rejected answers pick a distractor with reasoning that fits it
("distractor") or keep the right letter with a justification built on a finding the patient does not have
("wrong_reason").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from align.data.tasks.common import (
    ErrorPicker,
    Item,
    RejectedLabelPicker,
    Rows,
    add_errors,
    article,
    assign_splits,
    resolve_mix,
    to_rows,
)
from align.tasks.builtin import REASONING

TASK = "reasoning"
INSTRUCTION = REASONING.instruction  # the task's own definition: align/tasks/builtin.py
DEFAULT_MIX = {"distractor": 0.75, "wrong_reason": 0.25}
LETTERS = "ABCDE"
STEMS = {
    "diagnosis": "Which of the following is the most likely diagnosis?",
    "next_step": "Which of the following is the most appropriate next step?",
    "drug_of_choice": "Which of the following is the most appropriate treatment?",
}


@dataclass(frozen=True)
class Condition:
    name: str
    findings: tuple[str, ...]
    next_step: str = ""
    drug: str = ""
    related: tuple[str, ...] = ()
    ages: tuple[int, int] = (25, 70)
    sex: str = ""  # "" = either
    avoid: tuple[str, ...] = ()  # options that would also be defensible for this condition


# fmt: off
C = Condition
CONDITIONS: tuple[Condition, ...] = (
    C("acute appendicitis", ("periumbilical pain that moved to the right lower quadrant", "loss of appetite", "a temperature of 38.0 °C", "rebound tenderness at McBurney point", "a white cell count of 14,000/mm3"), "surgical consultation for appendectomy", "", ("acute cholecystitis", "ectopic pregnancy", "nephrolithiasis", "acute pyelonephritis"), (12, 45)),
    C("acute cholecystitis", ("right upper quadrant pain after a fatty meal", "a temperature of 38.4 °C", "inspiratory arrest on palpation of the right upper quadrant", "nausea", "a history of gallstones"), "right upper quadrant ultrasound", "", ("acute pancreatitis", "duodenal ulcer", "acute appendicitis", "acute pyelonephritis"), (30, 65)),
    C("acute pancreatitis", ("severe epigastric pain radiating to the back", "heavy daily alcohol use", "nausea and vomiting", "epigastric tenderness", "pain that is worse lying flat"), "serum lipase measurement", "", ("acute cholecystitis", "duodenal ulcer", "aortic dissection", "ST-elevation myocardial infarction")),
    C("pulmonary embolism", ("sudden shortness of breath", "sharp chest pain on deep breathing", "a heart rate of 118/min", "a 12-hour flight last week", "a swollen, tender left calf"), "CT pulmonary angiography", "", ("tension pneumothorax", "community-acquired pneumonia", "ST-elevation myocardial infarction", "acute decompensated heart failure")),
    C("tension pneumothorax", ("sudden severe shortness of breath after a stab wound to the chest", "absent breath sounds on the right", "tracheal deviation to the left", "a blood pressure of 80/50 mm Hg", "distended neck veins"), "immediate needle decompression", "", ("pulmonary embolism", "community-acquired pneumonia", "acute asthma exacerbation", "ST-elevation myocardial infarction"), (18, 45)),
    C("community-acquired pneumonia", ("fever and productive cough for four days", "crackles over the right lower lobe", "dullness to percussion on the right", "a white cell count of 15,000/mm3", "rust-colored sputum"), "chest X-ray", "", ("pulmonary embolism", "acute decompensated heart failure", "acute asthma exacerbation", "tension pneumothorax")),
    C("ST-elevation myocardial infarction", ("crushing substernal chest pain for 40 minutes", "sweating", "ST elevation in leads II, III and aVF", "a history of smoking and hypertension", "nausea"), "emergency percutaneous coronary intervention", "", ("aortic dissection", "pulmonary embolism", "acute pericarditis", "acute pancreatitis"), (45, 80)),
    C("acute pericarditis", ("sharp chest pain that improves when leaning forward", "a pericardial friction rub", "diffuse ST elevation with PR depression", "a viral illness two weeks ago"), "", "ibuprofen plus colchicine", ("ST-elevation myocardial infarction", "pulmonary embolism", "aortic dissection", "tension pneumothorax"), (20, 50), avoid=("indomethacin", "high-dose prednisone")),
    C("aortic dissection", ("tearing chest pain radiating to the back", "a 30 mm Hg blood pressure difference between the arms", "a widened mediastinum on chest X-ray", "long-standing poorly controlled hypertension"), "CT angiography of the chest", "intravenous esmolol", ("ST-elevation myocardial infarction", "pulmonary embolism", "acute pericarditis", "acute pancreatitis"), (50, 80)),
    C("diabetic ketoacidosis", ("increased thirst and urination for a week", "deep, rapid breathing", "a fruity odor on the breath", "a serum glucose of 520 mg/dL", "an anion gap metabolic acidosis"), "intravenous normal saline", "intravenous regular insulin", ("hyperosmolar hyperglycemic state", "acute pancreatitis", "primary adrenal insufficiency", "acetaminophen overdose"), (14, 35)),
    C("hyperosmolar hyperglycemic state", ("marked confusion", "a serum glucose of 980 mg/dL", "a serum osmolality of 350 mOsm/kg", "no ketones in the urine", "severe dehydration"), "intravenous normal saline", "", ("diabetic ketoacidosis", "acute ischemic stroke", "bacterial meningitis", "opioid overdose"), (60, 85)),
    C("Graves disease", ("heat intolerance", "weight loss despite a good appetite", "bulging eyes", "a diffusely enlarged nontender thyroid", "a fine tremor of the hands"), "serum TSH and free T4", "methimazole", ("primary hypothyroidism", "Cushing syndrome", "primary adrenal insufficiency", "iron deficiency anemia"), (20, 50), "F"),
    C("primary hypothyroidism", ("fatigue and cold intolerance", "weight gain", "constipation", "dry skin", "slow relaxation of the ankle reflexes"), "serum TSH", "levothyroxine", ("Graves disease", "iron deficiency anemia", "vitamin B12 deficiency", "primary adrenal insufficiency"), (30, 70), "F"),
    C("primary adrenal insufficiency", ("fatigue and weight loss", "darkening of the skin creases", "a blood pressure of 88/56 mm Hg", "a serum sodium of 128 mEq/L", "a serum potassium of 5.8 mEq/L"), "ACTH stimulation test", "hydrocortisone", ("primary hypothyroidism", "Cushing syndrome", "diabetic ketoacidosis", "Graves disease")),
    C("Cushing syndrome", ("central obesity", "purple abdominal stretch marks", "a rounded face", "new hypertension", "easy bruising"), "low-dose dexamethasone suppression test", "", ("primary adrenal insufficiency", "primary hypothyroidism", "Graves disease", "hyperosmolar hyperglycemic state")),
    C("iron deficiency anemia", ("fatigue", "a craving to chew ice", "spoon-shaped nails", "a microcytic anemia", "heavy menstrual periods"), "serum ferritin", "oral ferrous sulfate", ("vitamin B12 deficiency", "primary hypothyroidism", "systemic lupus erythematosus", "Graves disease"), (20, 45), "F"),
    C("vitamin B12 deficiency", ("numbness and tingling in both feet", "loss of vibration sense in the toes", "a smooth, sore tongue", "a macrocytic anemia", "a strict vegan diet for years"), "serum vitamin B12 level", "intramuscular cyanocobalamin", ("iron deficiency anemia", "primary hypothyroidism", "hyperosmolar hyperglycemic state", "acute ischemic stroke")),
    C("bacterial meningitis", ("fever and severe headache", "neck stiffness", "sensitivity to light", "confusion", "a petechial rash on the legs"), "blood cultures and empiric intravenous antibiotics", "intravenous ceftriaxone plus vancomycin", ("subarachnoid hemorrhage", "migraine", "acute ischemic stroke", "giant cell arteritis"), (18, 30)),
    C("subarachnoid hemorrhage", ("a sudden headache that is the worst ever experienced", "onset while lifting weights", "neck stiffness", "a brief loss of consciousness"), "noncontrast CT of the head", "", ("bacterial meningitis", "migraine", "acute ischemic stroke", "cluster headache"), (30, 65)),
    C("acute ischemic stroke", ("sudden weakness of the right arm and leg", "a right facial droop", "difficulty finding words", "symptom onset one hour ago", "atrial fibrillation without anticoagulation"), "noncontrast CT of the head", "intravenous alteplase", ("subarachnoid hemorrhage", "Bell palsy", "migraine", "hyperosmolar hyperglycemic state"), (55, 85)),
    C("migraine", ("recurrent one-sided throbbing headaches", "nausea during attacks", "sensitivity to light", "zigzag lines in the vision before the headache", "a normal neurologic examination"), "", "sumatriptan", ("cluster headache", "subarachnoid hemorrhage", "giant cell arteritis", "bacterial meningitis"), (18, 45), avoid=("indomethacin", "ibuprofen plus colchicine")),
    C("cluster headache", ("severe stabbing pain behind one eye", "tearing and a blocked nose on the same side", "attacks at the same time every night", "episodes lasting 45 minutes", "pacing restlessly during attacks"), "", "100% oxygen by face mask", ("migraine", "giant cell arteritis", "subarachnoid hemorrhage", "bacterial meningitis"), (25, 50), "M", avoid=("sumatriptan",)),
    C("giant cell arteritis", ("a new headache over the temples", "jaw pain when chewing", "scalp tenderness", "an erythrocyte sedimentation rate of 90 mm/h", "brief episodes of blurred vision"), "temporal artery biopsy after starting steroids", "high-dose prednisone", ("migraine", "cluster headache", "subarachnoid hemorrhage", "acute ischemic stroke"), (60, 85)),
    C("gout", ("sudden severe pain at the base of the big toe", "a red, swollen first metatarsophalangeal joint", "onset overnight after drinking beer", "needle-shaped negatively birefringent crystals in joint fluid"), "arthrocentesis with synovial fluid analysis", "indomethacin", ("septic arthritis", "rheumatoid arthritis", "cellulitis", "Lyme disease"), (40, 70), "M", avoid=("ibuprofen plus colchicine", "high-dose prednisone")),
    C("septic arthritis", ("a hot, swollen right knee", "a temperature of 38.9 °C", "pain with any movement of the knee", "a synovial fluid white cell count of 80,000/mm3", "inability to bear weight"), "arthrocentesis with synovial fluid analysis", "", ("gout", "rheumatoid arthritis", "Lyme disease", "cellulitis")),
    C("rheumatoid arthritis", ("symmetric pain and swelling of the hand joints", "morning stiffness lasting over an hour", "swelling of the knuckles", "positive anti-CCP antibodies", "fatigue"), "", "methotrexate", ("systemic lupus erythematosus", "gout", "septic arthritis", "Lyme disease"), (30, 60), "F"),
    C("systemic lupus erythematosus", ("a rash over the cheeks that spares the nasolabial folds", "joint pain in both hands", "painless mouth ulcers", "a rash after sun exposure", "positive antinuclear antibodies"), "anti-double-stranded DNA antibody test", "hydroxychloroquine", ("rheumatoid arthritis", "Lyme disease", "iron deficiency anemia", "primary hypothyroidism"), (18, 40), "F"),
    C("acute cystitis", ("burning with urination", "urinary frequency and urgency", "suprapubic tenderness", "no fever or flank pain", "a urine dipstick positive for nitrites"), "", "nitrofurantoin", ("acute pyelonephritis", "nephrolithiasis", "genital herpes", "ectopic pregnancy"), (18, 45), "F"),
    C("acute pyelonephritis", ("a temperature of 39.2 °C with chills", "right flank pain", "costovertebral angle tenderness", "burning with urination", "white cell casts in the urine"), "urinalysis and urine culture", "", ("acute cystitis", "nephrolithiasis", "acute appendicitis", "acute cholecystitis"), (18, 50), "F"),
    C("ectopic pregnancy", ("seven weeks since the last menstrual period", "vaginal spotting", "left lower abdominal pain", "a positive urine pregnancy test", "left adnexal tenderness"), "transvaginal ultrasound", "methotrexate", ("acute appendicitis", "acute pyelonephritis", "nephrolithiasis", "acute cystitis"), (18, 40), "F"),
    C("nephrolithiasis", ("colicky right flank pain radiating to the groin", "blood in the urine", "restlessness and inability to lie still", "nausea", "no fever"), "noncontrast CT of the abdomen and pelvis", "", ("acute pyelonephritis", "acute appendicitis", "acute cholecystitis", "aortic dissection")),
    C("acute asthma exacerbation", ("wheezing and shortness of breath", "a history of seasonal allergies", "prolonged expiration", "symptoms that started with a cold", "use of neck muscles to breathe"), "", "inhaled albuterol", ("community-acquired pneumonia", "anaphylaxis", "acute decompensated heart failure", "pulmonary embolism"), (15, 40)),
    C("anaphylaxis", ("hives all over the body minutes after a bee sting", "swelling of the lips", "wheezing", "a blood pressure of 78/40 mm Hg"), "", "intramuscular epinephrine", ("acute asthma exacerbation", "opioid overdose", "tension pneumothorax", "cellulitis"), (15, 60)),
    C("opioid overdose", ("pinpoint pupils", "a respiratory rate of 6/min", "minimal response to painful stimuli", "needle marks on the arms"), "", "naloxone", ("acetaminophen overdose", "hyperosmolar hyperglycemic state", "acute ischemic stroke", "anaphylaxis"), (18, 45)),
    C("acetaminophen overdose", ("ingestion of 40 tablets of a pain reliever 6 hours ago", "nausea and vomiting", "a normal level of consciousness", "a toxic serum level on the treatment nomogram"), "", "N-acetylcysteine", ("opioid overdose", "diabetic ketoacidosis", "acute pancreatitis", "anaphylaxis"), (16, 40)),
    C("primary syphilis", ("a single painless genital ulcer with a firm base", "painless swelling of the groin lymph nodes", "unprotected sex three weeks ago"), "", "intramuscular benzathine penicillin G", ("genital herpes", "acute cystitis", "Lyme disease", "streptococcal pharyngitis"), (18, 40)),
    C("genital herpes", ("painful clustered blisters on the genitals", "tender groin lymph nodes", "tingling before the blisters appeared", "a new sexual partner"), "", "acyclovir", ("primary syphilis", "acute cystitis", "Lyme disease", "cellulitis"), (18, 40)),
    C("streptococcal pharyngitis", ("sore throat and a temperature of 38.7 °C", "white exudate on the tonsils", "tender lymph nodes in the front of the neck", "no cough"), "rapid streptococcal antigen test", "oral penicillin V", ("infectious mononucleosis", "primary syphilis", "bacterial meningitis", "community-acquired pneumonia"), (5, 30)),
    C("infectious mononucleosis", ("sore throat and fatigue for a week", "swollen lymph nodes at the back of the neck", "an enlarged spleen", "atypical lymphocytes on the blood smear"), "heterophile antibody test", "", ("streptococcal pharyngitis", "bacterial meningitis", "Lyme disease", "primary syphilis"), (15, 24)),
    C("Lyme disease", ("an expanding red rash with central clearing", "a camping trip in Connecticut two weeks ago", "fatigue and muscle aches", "a low-grade fever"), "", "doxycycline", ("cellulitis", "systemic lupus erythematosus", "septic arthritis", "primary syphilis")),
    C("acute decompensated heart failure", ("shortness of breath when lying flat", "waking at night gasping for air", "swelling of both legs", "distended neck veins", "crackles at both lung bases"), "transthoracic echocardiography", "intravenous furosemide", ("community-acquired pneumonia", "pulmonary embolism", "acute asthma exacerbation", "ST-elevation myocardial infarction"), (55, 85)),
    C("deep vein thrombosis", ("swelling and tenderness of the left calf", "hip replacement surgery two weeks ago", "a left calf 3 cm larger than the right", "pitting edema of the left leg"), "compression ultrasound of the leg", "", ("cellulitis", "pulmonary embolism", "septic arthritis", "gout"), (45, 80)),
    C("cellulitis", ("a red, warm, tender area on the shin", "a temperature of 38.1 °C", "poorly defined borders of the redness", "a small cut on the leg a few days earlier"), "", "", ("deep vein thrombosis", "Lyme disease", "gout", "septic arthritis")),
    C("duodenal ulcer", ("burning upper abdominal pain that improves after eating", "pain two to three hours after meals", "pain that wakes the patient at night", "regular use of ibuprofen for back pain"), "urea breath test for Helicobacter pylori", "", ("acute pancreatitis", "acute cholecystitis", "ST-elevation myocardial infarction", "acute appendicitis")),
    C("Bell palsy", ("sudden weakness of the whole right side of the face", "inability to wrinkle the right forehead", "loss of taste on the front of the tongue", "no weakness of the arms or legs"), "", "", ("acute ischemic stroke", "Lyme disease", "giant cell arteritis", "migraine")),
)
# fmt: on
BY_NAME = {c.name: c for c in CONDITIONS}
assert all(r in BY_NAME for c in CONDITIONS for r in c.related), "every related condition must be in the table"
SETTINGS = ("the emergency department", "the clinic", "an urgent care center", "the office")


def _answer_of(c: Condition, qtype: str) -> str:
    return {"diagnosis": c.name, "next_step": c.next_step, "drug_of_choice": c.drug}[qtype]


def _distractors(rng: random.Random, c: Condition, qtype: str, k: int) -> list[tuple[str, Condition]]:
    """k wrong options (text, the condition they belong to): related conditions first, then any other."""
    answer = _answer_of(c, qtype)
    others = [BY_NAME[r] for r in c.related] + rng.sample(CONDITIONS, len(CONDITIONS))
    out: list[tuple[str, Condition]] = []
    for o in others:
        text = _answer_of(o, qtype)
        if o is c or not text or text == answer or text in c.avoid or any(text == t for t, _ in out):
            continue
        out.append((text, o))
        if len(out) == k:
            break
    return out


def _vignette(rng: random.Random, c: Condition, findings: list[str]) -> tuple[str, int, str]:
    age = rng.randint(*c.ages)
    sex = c.sex or rng.choice("MF")
    noun = ("boy" if sex == "M" else "girl") if age < 18 else ("man" if sex == "M" else "woman")
    first, rest = findings[0], findings[1:]
    text = f"{article(age)} {age}-year-old {noun} comes to {rng.choice(SETTINGS)} with {first}."
    if rest:
        listed = ", ".join(rest[:-1]) + (" and " if len(rest) > 1 else "") + rest[-1]
        text += f" {rng.choice(('Evaluation shows', 'There is also', 'Findings include'))} {listed}."
    return text, age, sex


def _explain(qtype: str, name: str, answer: str, clues: list[str]) -> str:
    cited = " and ".join(clues)
    if qtype == "diagnosis":
        return f"{cited[:1].upper()}{cited[1:]} point{'s' if len(clues) == 1 else ''} to {name}."
    if qtype == "next_step":
        return f"The presentation ({cited}) suggests {name}; the next step is {answer}."
    return f"The presentation ({cited}) suggests {name}, for which {answer} is the treatment of choice."


def make_item(rng: random.Random, counter: int, letters: dict[int, ErrorPicker]) -> Item:
    qtype = ("diagnosis", "next_step", "drug_of_choice")[counter % 3]
    c = rng.choice([c for c in CONDITIONS if _answer_of(c, qtype)])
    findings = rng.sample(c.findings, k=min(len(c.findings), rng.choice((3, 4))))
    n_opts = rng.choice((4, 5))
    wrong = _distractors(rng, c, qtype, n_opts - 1)
    letter = letters[len(wrong) + 1].pick(LETTERS[: len(wrong) + 1], rng)
    pos = LETTERS.index(letter)
    answer = _answer_of(c, qtype)
    opts = [t for t, _ in wrong]
    opts.insert(pos, answer)
    options = {LETTERS[i]: t for i, t in enumerate(opts)}
    vignette, age, sex = _vignette(rng, c, findings)
    text = vignette + " " + STEMS[qtype] + "\n" + "\n".join(f"{k}. {v}" for k, v in options.items())
    chosen = f"Answer: {letter}\nExplanation: {_explain(qtype, c.name, answer, findings[:2])}"
    meta = {"answer": letter, "options": options, "question_type": qtype}
    key = (c.name, qtype, tuple(sorted(findings)), age // 5, sex)
    sources = {LETTERS[i if i < pos else i + 1]: cond for i, (_, cond) in enumerate(wrong)}
    return Item(key, INSTRUCTION, text, chosen, meta, {"condition": c, "findings": findings, "sources": sources})


def corrupt(item: Item, error_type: str, rng: random.Random, letters: RejectedLabelPicker) -> tuple[str, dict]:
    c, findings, sources = item.data["condition"], item.data["findings"], item.data["sources"]
    qtype, options = item.meta["question_type"], item.meta["options"]
    if error_type == "wrong_reason":
        wrong_cond = rng.choice(sorted(sources.values(), key=lambda o: o.name))
        absent = [f for f in wrong_cond.findings if f not in findings] or ["the patient's age"]
        letter, explanation = item.meta["answer"], _explain(qtype, c.name, _answer_of(c, qtype), absent[:1])
    else:
        letter = letters.pick(item.meta["answer"], sorted(sources), rng)
        wrong_cond = sources[letter]
        # the distractor's reasoning: the patient's first finding read as the other condition's
        explanation = _explain(qtype, wrong_cond.name, options[letter], [findings[0], wrong_cond.findings[0]])
    return f"Answer: {letter}\nExplanation: {explanation}", {"rejected_answer": letter}


def build(n: dict[str, int], seed: int, error_mix: dict[str, float] | None = None) -> Rows:
    """{split: {"sft": rows, "pref": rows}} with n[split] distinct questions per split."""
    rng = random.Random(f"{seed}-{TASK}")
    # answer positions balanced the same way as error types, separately for 4- and 5-option questions so that
    # "E" is not over-used to catch up
    letters = {k: ErrorPicker(dict.fromkeys(LETTERS[:k], 1.0)) for k in (2, 3, 4, 5)}
    items = assign_splits(n, lambda counter: make_item(rng, counter, letters))
    err_rng = random.Random(f"{seed}-{TASK}-err")
    add_errors(items, resolve_mix(error_mix, DEFAULT_MIX), lambda it: list(DEFAULT_MIX), corrupt, err_rng)
    return to_rows(TASK, items)
