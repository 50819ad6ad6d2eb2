"""Parse a model's free-text answer into a task label; None when no answer can be read.

An unparseable answer counts as wrong in every accuracy and is reported separately (`unparsed_rate`), so these
parsers prefer returning None over guessing: a parser that guesses hides format failures inside accuracy.
"""

from __future__ import annotations

import re

# "ESI level: 2", "ESI 2", "esi-level 2", "ESI-2", "Level 2", "triage level 3". The digit must stand alone
# ("ESI 10" is not ESI 1). The first match in the text wins: "I'd say ESI 3, not 2" -> 3.
_ESI = re.compile(r"\b(?:esi(?:[\s_-]*level)?|level)\s*[:=#-]?\s*([1-5])(?![\d.]\d|\d)", re.IGNORECASE)
_BARE_DIGIT = re.compile(r"^\s*([1-5])\s*\.?\s*$")


def parse_esi(text: str) -> int | None:
    """ESI level 1..5 from the first `ESI ...`/`Level ...` mention; a reply that is only a digit also counts."""
    match = _ESI.search(text) or _BARE_DIGIT.match(text)
    return int(match.group(1)) if match else None


# Synonyms per route; matched as whole words, case-insensitive. "provider"/"clinician" are left out on purpose:
# they do not say whether a physician or a nurse is meant.
ROUTE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "physician": ("physician", "doctor", "md", "attending", "primary care provider", "pcp"),
    "nurse": ("nurse", "nursing", "rn", "triage nurse"),
    "pharmacist": ("pharmacist", "pharmacy", "pharmd"),
    "front_desk": (
        "front_desk",
        "front desk",
        "front-desk",
        "front office",
        "scheduling",
        "scheduler",
        "billing",
        "reception",
        "receptionist",
        "administrative staff",
        "admin staff",
    ),
}
_ROUTE_WORD = {syn: route for route, syns in ROUTE_SYNONYMS.items() for syn in syns}
# Longest synonym first so "triage nurse" wins over "nurse" at the same position (same route anyway).
_ROUTE = re.compile(
    r"\b(" + "|".join(re.escape(s) for s in sorted(_ROUTE_WORD, key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_ROUTE_LINE = re.compile(r"route(?:d)?\s*(?:to)?\s*[:=-]\s*(.*)", re.IGNORECASE)


def parse_route(text: str) -> str | None:
    """physician|nurse|pharmacist|front_desk; the `Route to:` line is read first, else the first synonym in the text."""
    for segment in (m.group(1) for m in _ROUTE_LINE.finditer(text)):
        match = _ROUTE.search(segment)
        if match:
            return _ROUTE_WORD[match.group(1).lower()]
    match = _ROUTE.search(text)
    return _ROUTE_WORD[match.group(1).lower()] if match else None


# An explicit answer cue followed by one letter or a list of letters ("A or C", "B, D").
_CUE = re.compile(
    r"\b(?:answer|correct\s+(?:option|choice))(?:\s+(?:is|would\s+be|should\s+be))?\s*(?P<colon>[:=-])?\s*"
    r"(?P<list>\(?[A-Za-z]\)?(?:\s*(?:,|/|&|\bor\b|\band\b)\s*\(?[A-Za-z]\)?)*)(?P<after>[^\w]|$)",
    re.IGNORECASE,
)
_LETTER_IN_LIST = re.compile(r"(?<![A-Za-z])(\(?)([A-Za-z])\)?(?![A-Za-z])")
# A reply that starts with the letter: "C.", "(C)", "C)", "C:" or just "C".
_LEADING = re.compile(r"^\s*\(?([A-Za-z])(?:\)|[.:](?!\w)|\s*$)")
# A free-standing capital letter anywhere, e.g. "... it is C".
_LOOSE = re.compile(r"(?<![\w'’-])\(?([A-Z])\)?(?![\w'’-])")
_NEGATION_BEFORE = re.compile(
    r"(?:\bnot|n't|\bthan|\binstead\s+of|\bexcept|\bexcluding|\brule\s+out|\bruled\s+out)\s*(?:option\s*|choice\s*)?\(?$",
    re.IGNORECASE,
)
_ARTICLE_NEXT = re.compile(r"\s+(?!(?:or|and|nor)\b)[a-z0-9]")


def _cue_letters(text: str, keys: set[str]) -> set[str]:
    letters: set[str] = set()
    for match in _CUE.finditer(text):
        found = _LETTER_IN_LIST.findall(match.group("list"))  # [(paren, letter), ...]
        ends_clause = not match.group("after").isspace()
        for i, (paren, letter) in enumerate(found):
            # A lowercase letter is usually an article ("the answer is a tricky one", "Answer: C, a basal insulin").
            # Accept it in parentheses, as the first letter after a colon ("answer: c"), or last before punctuation.
            first_after_colon = i == 0 and bool(match.group("colon"))
            last_before_punct = i == len(found) - 1 and ends_clause
            if letter.isupper() or paren or first_after_colon or last_before_punct:
                letters.add(letter.upper())
    return letters & keys


def _loose_letters(text: str, keys: set[str]) -> set[str]:
    letters: set[str] = set()
    for match in _LOOSE.finditer(text):
        letter = match.group(1)
        if letter not in keys or _NEGATION_BEFORE.search(text[: match.start()]):
            continue
        # "A" and "I" are also English words: "A 45-year-old ...", "I think ...". Skip them when a word follows.
        if letter in {"A", "I"} and _ARTICLE_NEXT.match(text, match.end()):
            continue
        letters.add(letter)
    return letters


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w%]+", " ", text.lower()).split())


def _option_text_choice(text: str, options: dict[str, str]) -> str | None:
    reply = _normalise(text)
    exact = [k for k, v in options.items() if _normalise(v) and _normalise(v) == reply]
    if len(exact) == 1:
        return exact[0]
    found = {k: _normalise(v) for k, v in options.items() if _normalise(v) and f" {_normalise(v)} " in f" {reply} "}
    # Drop options whose text is inside a longer found option ("aspirin" inside "aspirin and clopidogrel").
    kept = [k for k, v in found.items() if not any(v != w and f" {v} " in f" {w} " for w in found.values())]
    return kept[0] if len(kept) == 1 else None


def _one(letters: set[str]) -> str | None:
    return next(iter(letters)) if len(letters) == 1 else None


def parse_choice(text: str, options: dict[str, str]) -> str | None:
    """Option letter (upper case) of a multiple-choice reply, or None when absent or ambiguous.

    Order: (1) explicit claims: "Answer: C", "the answer is (b)", "The correct option is C", or a reply starting
    with "C."/"(C)"; (2) an option's text in the reply (exact reply first, then the longest match); (3) a lone capital
    letter that is not negated ("the answer is not A; it is C" -> C). Within a step, two different letters -> None.
    """
    keys = {k.upper() for k in options} or set("ABCDEFGHIJ")
    upper_options = {k.upper(): v for k, v in options.items()}
    claimed = _cue_letters(text, keys)
    leading = _LEADING.match(text)
    if leading and leading.group(1).upper() in keys:
        claimed.add(leading.group(1).upper())
    if claimed:
        return _one(claimed)
    by_text = _option_text_choice(text, upper_options)
    if by_text is not None:
        return by_text
    return _one(_loose_letters(text, keys))


_YNM_CUE = re.compile(r"\b(?:answer|decision)\s*(?:is)?\s*[:=-]?\s*(yes|no|maybe)\b", re.IGNORECASE)
_YNM = re.compile(r"\b(yes|no|maybe)\b", re.IGNORECASE)


def parse_yes_no_maybe(text: str) -> str | None:
    """'yes'|'no'|'maybe': the word after an `Answer:` cue if any, else the first of the three words in the text."""
    match = _YNM_CUE.search(text) or _YNM.search(text)
    return match.group(1).lower() if match else None
