"""The triage complaint table: each chief complaint's expected ESI resources, high-risk situation and patient ranges.

`COMPLAINTS` is grouped by the level a vignette is generated for (L1, high-risk, two/one/zero resources);
`L1_OVERRIDES` gives the vital signs that make an L1 complaint need a life-saving intervention. The ESI algorithm
that labels the vignettes is in `triage.py`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Complaint:
    """A chief complaint with the ESI resources it is expected to need."""

    text: str  # as written in the vignette
    short: str  # as written in a rationale
    group: str  # which level it is generated for: "L1" | "high_risk" | "two" | "one" | "zero"
    resources: tuple[str, ...] = ()
    high_risk: str = ""  # the ESI high-risk situation, if any
    ages: tuple[int, int] = (18, 80)
    sex: str = ""  # "" = either
    pain: tuple[int, int] = (1, 5)
    fever: bool = False
    histories: tuple[str, ...] = ("", "hypertension", "asthma", "type 2 diabetes", "no significant history")


# fmt: off
CARDIAC = ("hypertension", "type 2 diabetes", "prior myocardial infarction", "high cholesterol, smoker")
_L, _E, _X, _CT, _US = "labs", "ECG", "X-ray", "CT", "ultrasound"
_IVF, _MED, _CONS, _PROC = "IV fluids", "IV/IM/nebulized medication", "specialist consult", "simple procedure"
RESOURCE_TYPES = (_L, _E, _X, _CT, _US, _IVF, _MED, _CONS, _PROC)  # the ESI resource types counted here
C = Complaint
COMPLAINTS: dict[str, Complaint] = {
    # level 1: life-saving intervention (the vital-sign overrides are in L1_OVERRIDES)
    "overdose": C("found unresponsive next to empty pill bottles", "possible overdose", "L1", (_L, _E, _MED)),
    "resp_failure": C("severe shortness of breath, speaking one word at a time", "respiratory failure", "L1",
                      (_L, _X, _MED), histories=("COPD", "asthma", "heart failure")),
    "gi_bleed": C("vomiting large amounts of blood", "upper GI bleeding", "L1", (_L, _IVF, _CONS),
                  histories=("alcohol use disorder", "cirrhosis", "peptic ulcer disease")),
    "septic_shock": C("fever and weakness, barely able to stand", "possible sepsis", "L1", (_L, _X, _IVF, _MED),
                      ages=(55, 90), fever=True, histories=("type 2 diabetes", "dementia", "chronic kidney disease")),
    "arrest": C("sudden collapse at the gym", "cardiac arrest", "L1", (_L, _E, _MED), ages=(35, 75)),
    "anaphylaxis": C("lip and tongue swelling with wheezing after eating peanuts", "anaphylaxis", "L1", (_MED, _IVF),
                     ages=(8, 60), histories=("peanut allergy", "asthma", "")),
    # level 2: high-risk situations
    "acs": C("crushing chest pressure radiating to the left arm with sweating", "chest pressure", "high_risk",
             (_L, _E, _X), "possible acute coronary syndrome", (45, 85), pain=(3, 9), histories=CARDIAC),
    "stroke": C("sudden right-sided weakness and slurred speech for 40 minutes", "focal weakness", "high_risk",
                (_L, _CT, _CONS), "possible acute stroke", (50, 90), pain=(0, 2), histories=CARDIAC),
    "ectopic": C("lower abdominal pain and light-headedness with a positive pregnancy test", "pelvic pain",
                 "high_risk", (_L, _US, _IVF), "possible ectopic pregnancy", (18, 40), "F", (3, 8)),
    "suicidal": C("thoughts of suicide with a plan to overdose", "suicidal thoughts", "high_risk", (_L, _CONS),
                  "suicidal ideation with a plan", (16, 70), pain=(0, 0),
                  histories=("depression", "bipolar disorder", "no significant history")),
    "neutropenic": C("fever five days after chemotherapy", "fever on chemotherapy", "high_risk", (_L, _X, _MED),
                     "fever in an immunocompromised patient", (30, 80), pain=(0, 3), fever=True,
                     histories=("breast cancer on chemotherapy", "leukemia on chemotherapy")),
    "thunderclap": C("sudden severe headache, the worst of their life", "headache", "high_risk", (_L, _CT, _CONS),
                     "possible subarachnoid hemorrhage", (25, 75), pain=(6, 10)),
    "torsion": C("sudden severe pain in the left testicle", "testicular pain", "high_risk", (_US, _CONS),
                 "possible testicular torsion", (12, 30), "M", (6, 10), histories=("", "no prior illnesses")),
    # two or more resources
    "rlq_pain": C("right lower abdominal pain and nausea since yesterday", "abdominal pain", "two", (_L, _CT, _IVF),
                  ages=(12, 70), pain=(3, 6)),
    "flank_pain": C("left flank pain radiating to the groin", "flank pain", "two", (_L, _CT, _MED), pain=(3, 6)),
    "fever_cough": C("fever and productive cough for three days", "cough and fever", "two", (_L, _X), ages=(3, 85),
                     pain=(1, 4), fever=True),
    "gastro": C("vomiting and diarrhea since last night, unable to keep fluids down", "vomiting", "two", (_L, _IVF),
                ages=(3, 80), pain=(2, 5)),
    "hip_fall": C("hip pain after a fall at home", "hip pain", "two", (_X, _L), ages=(65, 92), pain=(3, 6),
                  histories=("osteoporosis", "atrial fibrillation on warfarin", "hypertension")),
    "cellulitis": C("spreading redness and swelling of the lower leg", "leg redness", "two", (_L, _MED), pain=(2, 5),
                    fever=True, histories=("type 2 diabetes", "obesity", "")),
    "ruq_pain": C("upper right abdominal pain after fatty meals", "abdominal pain", "two", (_L, _US), pain=(3, 6),
                  histories=("gallstones", "obesity", "")),
    "syncope": C("fainting briefly in a hot room, now feels fine", "fainting", "two", (_L, _E), ages=(16, 35),
                 pain=(0, 1), histories=("", "no significant history")),
    # one resource
    "ankle": C("a twisted ankle playing football, able to limp", "ankle injury", "one", (_X,), ages=(9, 60), pain=(2, 6)),
    "wrist": C("wrist pain after falling on an outstretched hand", "wrist injury", "one", (_X,), ages=(5, 70),
               pain=(2, 6)),
    "laceration": C("a 3 cm cut on the forearm, bleeding controlled", "forearm cut", "one", (_PROC,), ages=(5, 80),
                    pain=(2, 5)),
    "dysuria": C("burning with urination for two days", "urinary symptoms", "one", (_L,), ages=(18, 60), sex="F",
                 pain=(1, 4)),
    "mild_asthma": C("wheezing and cough despite using the inhaler twice", "wheezing", "one", (_MED,), ages=(5, 50),
                     pain=(0, 2), histories=("asthma",)),
    # no resources
    "sore_throat": C("a sore throat for two days", "sore throat", "zero", ages=(5, 60), pain=(2, 5)),
    "rash": C("an itchy rash on the arms after gardening", "rash", "zero", ages=(5, 70), pain=(0, 2)),
    "refill": C("running out of blood pressure tablets and needing a refill", "medication refill", "zero",
                ages=(40, 85), pain=(0, 0), histories=("hypertension",)),
    "ear_pain": C("ear pain since yesterday", "ear pain", "zero", ages=(3, 40), pain=(2, 5)),
    "bee_sting": C("a bee sting on the hand with local swelling", "bee sting", "zero", ages=(5, 70), pain=(1, 4)),
    "cold": C("a runny nose and cough for four days", "cold symptoms", "zero", ages=(3, 70), pain=(0, 2)),
    "sutures": C("sutures to be removed from a healed scalp cut", "suture removal", "zero", pain=(0, 1)),
}
L1_OVERRIDES = {
    "overdose": lambda r: {"mental": "unresponsive", "rr": r.randint(5, 8), "spo2": r.randint(78, 88), "pain": 0},
    "resp_failure": lambda r: {"spo2": r.randint(80, 89), "rr": r.randint(32, 42), "hr": r.randint(115, 140),
                               "distress": "severe"},
    "gi_bleed": lambda r: {"sbp": r.randint(62, 79), "dbp": r.randint(35, 48), "hr": r.randint(122, 148),
                           "perfusion": "poor"},
    "septic_shock": lambda r: {"sbp": r.randint(64, 79), "dbp": r.randint(34, 45), "hr": r.randint(118, 140),
                               "rr": r.randint(24, 32), "perfusion": "poor", "mental": r.choice(("alert", "confused"))},
    "arrest": lambda r: {"hr": 0, "rr": 0, "sbp": 0, "dbp": 0, "spo2": 0, "mental": "unresponsive", "pain": 0},
    "anaphylaxis": lambda r: {"spo2": r.randint(84, 89), "sbp": r.randint(68, 79), "dbp": r.randint(35, 45),
                              "hr": r.randint(120, 145), "distress": "severe", "perfusion": "poor"},
}
# fmt: on
MENTAL_TEXT = {
    "alert": "alert and oriented",
    "confused": "newly confused according to family",
    "lethargic": "lethargic and hard to keep awake",
    "disoriented": "disoriented to time and place",
    "unresponsive": "unresponsive to voice and pain",
}
