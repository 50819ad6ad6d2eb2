"""Patient-portal message routing: synthetic messages labelled physician, nurse, pharmacist or front_desk.

Each template belongs to one route (refills and medication questions -> pharmacist; appointments, billing, forms
-> front_desk; symptom follow-up, wound care, education -> nurse; new concerning symptoms, diagnostic questions and
results interpretation -> physician). Rejected answers either route one step or more down the escalation order
(under_escalation), up it (over_escalation), or keep the route with a wrong reason.
"""

from __future__ import annotations

import random
import string

from align.data.tasks.common import Item, RejectedLabelPicker, Rows, add_errors, assign_splits, resolve_mix, to_rows
from align.tasks.builtin import ROUTING

TASK = "provider_routing"
ROUTES: tuple[str, ...] = ("front_desk", "pharmacist", "nurse", "physician")  # escalation order, lowest first
INSTRUCTION = ROUTING.instruction  # the task's own definition: align/tasks/builtin.py
DEFAULT_MIX = {"under_escalation": 0.4, "over_escalation": 0.4, "wrong_reason": 0.2}

# fmt: off
# (message body, topic for the rationale, why this route is right); {slots} are filled from SLOTS
TEMPLATES: dict[str, list[tuple[str, str, str]]] = {
    "pharmacist": [
        ("I'm almost out of my {drug}, only {n} tablets left. Can you send a refill to my usual pharmacy?",
         "refill request for {drug}", "a routine refill that a pharmacist can process"),
        ("I forgot to take my {drug} this morning and it is now {time}. Should I take it now or skip it until tomorrow?",
         "missed dose of {drug}", "dosing advice on a current medication"),
        ("Is it safe to take {otc} for my {minor} while I'm on {drug}?",
         "possible interaction between {otc} and {drug}", "a drug interaction question"),
        ("The new bottle of {drug} looks different from my last one. Should I take it with food or on an empty stomach?",
         "how to take {drug}", "a question about taking a dispensed medication"),
        ("My insurance now wants a 90-day supply of {drug}. Can the prescription be changed so I can refill it?",
         "90-day refill of {drug}", "a prescription quantity change for a refill"),
    ],
    "front_desk": [
        ("I need to move my appointment on {day} with {doc} to later in the week because of {conflict}.",
         "rescheduling an appointment", "scheduling, which the front desk handles"),
        ("I received a bill for ${amount} for my visit in {month}. I thought insurance covered it. Can someone explain?",
         "a ${amount} bill", "a billing question"),
        ("Could someone complete my {form} form? My {office} needs it back by {day}.",
         "completing the {form} form", "paperwork that the front desk coordinates"),
        ("I have new insurance through {insurer}. How do I update it before my visit on {day}?",
         "updating insurance details", "an insurance update"),
        ("Please send a copy of my records from {month} to my new clinic in {city}.",
         "a records request", "a records request"),
        ("I'd like to book my yearly physical with {doc}, ideally on a {day} morning.",
         "booking a yearly physical", "scheduling, which the front desk handles"),
    ],
    "nurse": [
        ("I had {procedure} on {day} and the dressing got wet in the shower. How should I change it?",
         "dressing care after {procedure}", "routine wound care advice"),
        ("My {minor} is getting better but I still have a mild cough after {n} days. Is that normal?",
         "a resolving {minor}", "symptom follow-up of an improving illness"),
        ("Can someone explain how to use my new {device}? I'm not sure I'm doing it right.",
         "how to use a {device}", "patient education"),
        ("When am I due for my next {vaccine} vaccine? I can't find my card.",
         "timing of the {vaccine} vaccine", "vaccine schedule education"),
        ("My home blood pressure readings this week were around {bp_ok}. Should I keep logging them every day?",
         "home blood pressure log", "routine follow-up of home readings"),
        ("My child has had a temperature of {low_fever} since {day} but is drinking well. How much fluid is enough?",
         "a mild fever at home", "symptom follow-up with home-care advice"),
        ("What foods should I avoid on my new {diet} diet?", "the {diet} diet", "patient education"),
        ("I'm recovering from {procedure} and wonder when I can start {activity} again.",
         "activity after {procedure}", "recovery education"),
        ("Is it okay to get the {vaccine} vaccine while I have a {minor}?", "{vaccine} vaccine during a {minor}",
         "vaccine education"),
        ("The stitches from my {procedure} came out {n} days ago and the scar is a bit itchy. Any tips?",
         "scar care after {procedure}", "routine wound care advice"),
    ],
    "physician": [
        ("For the past {n} days I've had {concern}. Nothing like this has happened before. Should I be worried?",
         "new {concern}", "a new concerning symptom"),
        ("My {test} came back with {result}. What does that mean, and do I need treatment?",
         "{test} showing {result}", "results interpretation"),
        ("Could my {symptom} be caused by {cause}? It has been going on for {n} weeks.",
         "whether {symptom} is from {cause}", "a diagnostic question"),
        ("Since starting {drug} I have {side_effect}. Should I stop it?",
         "{side_effect} after starting {drug}", "a possibly serious reaction that needs assessment"),
    ],
}
SLOTS: dict[str, tuple[str, ...]] = {
    "drug": ("lisinopril", "metformin", "atorvastatin", "levothyroxine", "amlodipine", "sertraline", "omeprazole",
             "losartan", "metoprolol", "gabapentin"),
    "n": ("two", "three", "four", "five", "six", "ten"),
    "time": ("noon", "3 pm", "6 pm", "9 pm"),
    "otc": ("ibuprofen", "pseudoephedrine", "acetaminophen", "diphenhydramine", "naproxen"),
    "minor": ("cold", "sinus infection", "sore throat", "headache", "back strain"),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
    "doc": ("my primary care doctor", "the cardiologist", "my surgeon", "the dermatologist", "my family doctor", "the orthopedist"),
    "conflict": ("a work trip", "a family funeral", "my child's school event", "a car repair"),
    "amount": ("85", "140", "260", "415", "1,200"),
    "month": ("January", "March", "May", "August", "October", "December"),
    "form": ("FMLA", "school sports", "disability parking", "work return", "daycare health"),
    "office": ("employer", "school", "HR department", "county office"),
    "insurer": ("Aetna", "Blue Cross", "Cigna", "UnitedHealthcare", "Medicaid"),
    "city": ("Denver", "Austin", "Boston", "Portland", "Atlanta"),
    "procedure": ("a mole removal", "knee arthroscopy", "a skin biopsy", "carpal tunnel surgery", "a cyst removal"),
    "device": ("inhaler spacer", "glucose meter", "blood pressure cuff", "insulin pen", "peak flow meter",
               "nebulizer", "CPAP machine", "pulse oximeter"),
    "low_fever": ("37.9 °C", "38.0 °C", "38.2 °C", "38.3 °C", "37.8 °C"),
    "diet": ("low-salt", "diabetic", "low-fat", "gluten-free", "kidney"),
    "activity": ("driving", "swimming", "running", "lifting weights", "gardening"),
    "vaccine": ("tetanus", "shingles", "pneumonia", "hepatitis B", "flu"),
    "bp_ok": ("118/76", "124/80", "121/78", "116/74"),
    "concern": ("chest tightness when I climb stairs", "blood in my stool", "a new lump in my left breast",
                "blurry vision in my right eye", "black tarry stools", "numbness in my right hand and face",
                "fainting spells when I stand up", "severe headaches that wake me at night"),
    "test": ("potassium", "TSH", "chest CT", "hemoglobin A1c", "PSA", "liver panel"),
    "result": ("a value flagged high", "a result marked abnormal", "a 6 mm nodule", "a number twice the range"),
    "symptom": ("constant tiredness", "hair loss", "weight gain", "hand tremor", "night sweats"),
    "cause": ("my thyroid", "low iron", "my new medication", "diabetes", "menopause"),
    "side_effect": ("swollen lips and a rash", "dark urine and yellow eyes", "shortness of breath",
                    "a racing heartbeat", "muscle pain and weakness"),
}
# fmt: on
GREETINGS = ("Hi,", "Hello,", "Good morning,", "Dear care team,", "", "Hi there,")
CLOSINGS = ("Thanks.", "Thank you!", "Thanks for your help.", "", "Appreciate it.", "Thank you so much.")
NAMES = ("Maria", "James", "Aisha", "Tom", "Linda", "Wei", "Carlos", "Grace", "Ahmed", "Olga", "Sam", "Priya")
ROUTE_WHY = {  # how a (mis)router justifies each route
    "front_desk": "administrative, no clinical judgement needed",
    "pharmacist": "a medication question for the pharmacist",
    "nurse": "routine follow-up that a nurse can handle",
    "physician": "needs a physician's assessment",
}
WRONG_HEURISTICS = {  # right route, wrong reason: rules of thumb that do not decide the route
    "front_desk": ("no medication is named, so no clinician is needed", "the message mentions a date"),
    "pharmacist": ("all messages naming a medication go to the pharmacist", "the patient mentions their pharmacy"),
    "nurse": ("nurses answer every clinical question first", "the patient mentions a procedure"),
    "physician": ("the patient sounds anxious and wants reassurance", "any message mentioning a test needs a doctor"),
}


def _fill(rng: random.Random, body: str, topic: str, reason: str) -> tuple[dict[str, str], str, str, str]:
    names = {f for text in (body, topic) for _, f, _, _ in string.Formatter().parse(text) if f}
    slots = {name: rng.choice(SLOTS[name]) for name in sorted(names)}
    return slots, body.format(**slots), topic.format(**slots), reason


def _reason(route_or_text: str, topic: str) -> str:
    return f"{topic[:1].upper()}{topic[1:]}: {route_or_text}."


def answer_text(route: str, reason: str) -> str:
    return f"Route to: {route}\nReason: {reason}"


def make_item(rng: random.Random, counter: int) -> Item:
    route = ROUTES[counter % len(ROUTES)]
    t = rng.randrange(len(TEMPLATES[route]))
    slots, body, topic, why = _fill(rng, *TEMPLATES[route][t])
    greeting, closing, name = rng.choice(GREETINGS), rng.choice(CLOSINGS), rng.choice(NAMES)
    message = " ".join(p for p in (greeting, body, closing, f"- {name}") if p)
    meta = {"label": route}
    key = (route, t, tuple(sorted(slots.items())))
    return Item(key, INSTRUCTION, f"Message: {message}", answer_text(route, _reason(why, topic)), meta, topic)


def corrupt(item: Item, error_type: str, rng: random.Random, routes: RejectedLabelPicker) -> tuple[str, dict]:
    route, topic = item.meta["label"], item.data
    i = ROUTES.index(route)
    if error_type == "wrong_reason":
        return answer_text(route, _reason(rng.choice(WRONG_HEURISTICS[route]), topic)), {"rejected_label": route}
    wrong = routes.pick(route, ROUTES[:i] if error_type == "under_escalation" else ROUTES[i + 1 :], rng)
    return answer_text(wrong, _reason(ROUTE_WHY[wrong], topic)), {"rejected_label": wrong}


def allowed_errors(item: Item) -> list[str]:
    i = ROUTES.index(item.meta["label"])
    allowed = ["wrong_reason"]
    if i > 0:
        allowed.append("under_escalation")
    if i < len(ROUTES) - 1:
        allowed.append("over_escalation")
    return allowed


def build(n: dict[str, int], seed: int, error_mix: dict[str, float] | None = None) -> Rows:
    """{split: {"sft": rows, "pref": rows}} with n[split] distinct portal messages per split."""
    rng = random.Random(f"{seed}-{TASK}")
    items = assign_splits(n, lambda counter: make_item(rng, counter))
    err_rng = random.Random(f"{seed}-{TASK}-err")
    add_errors(
        items, resolve_mix(error_mix, DEFAULT_MIX), allowed_errors, corrupt, err_rng, lambda it: it.meta["label"]
    )
    return to_rows(TASK, items)
