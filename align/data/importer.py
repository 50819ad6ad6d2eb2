"""`align data import FORMAT PATH --out DIR`: a real public benchmark -> align's six canonical files + manifest.json.

Read every file of FORMAT (align/data/realdata.py) -> drop exact duplicates (same prompt and reference) -> split by
unique prompt text in a seeded hash order (PubMedQA's official test PMIDs, when present, are the test split) ->
`--limit` rows per split -> one rejected answer per row, each split on its own -> write into a temporary folder
beside DIR and rename it into place, so a failed or interrupted import leaves nothing half-written.

Rejected answers: closed-answer tasks take a wrong option, chosen by a per-split `RejectedLabelPicker` so that each
label is rejected about as often as it is chosen; dialogue tasks take the reference of another encounter in the same
split (same MTS-Dialog section header / ACI-Bench subset when there is one), `error_type: other_encounter`, with
`rejected_answer` the id of that encounter. Same inputs and seed give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets
import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from align.data.build import FILES, dumps
from align.data.realdata import FORMATS, Example, FileRead, FormatSpec, read_pubmedqa_test_ids
from align.data.tasks.common import SPLITS, RejectedLabelPicker
from align.errors import UserError

DEFAULT_SIZES = {"test": 0.2, "eval": 0.1}
PUBLIC_NOTE = (
    "Public benchmark: its questions and references have been online for years, so large pretrained models may "
    "have seen them; treat scores on it as possibly optimistic and cite the dataset when you report them."
)


@dataclass(frozen=True)
class ImportSettings:
    """The command line's choices; sizes stay as typed (None = default) so the manifest can show them."""

    test_size: str | None = None
    eval_size: str | None = None
    seed: int = 0
    limit: int | None = None
    test_ids: str | None = None
    force: bool = False


@dataclass
class Loaded:
    examples: list[Example]
    sources: list[dict]  # path as given, sha256, rows read (+ role)
    skipped: Counter
    fixed_test: set[str]  # example ids that the official test ids put in test
    notes: dict[str, dict]  # path -> what its reader noted (the MedMCQA cop convention)


# ---- reading -------------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files(fmt: str, path: Path) -> list[Path]:
    """PATH itself, or every file of the format in the folder PATH, sorted by name."""
    if not path.exists():
        raise UserError("no such file or folder", "check PATH (relative paths start at the current folder)", str(path))
    if path.is_file():
        return [path]
    spec = FORMATS[fmt]
    files = sorted({p for pattern in spec.patterns for p in path.glob(pattern) if p.is_file()}, key=lambda p: p.name)
    if not files:
        raise UserError(
            f"no {fmt} file in this folder (looked for {', '.join(spec.patterns)})",
            "give the file itself or the folder that holds it",
            str(path),
        )
    return files


def _test_ids_file(fmt: str, path: Path, given: str | None) -> Path | None:
    if given is not None and fmt != "pubmedqa":
        raise UserError(f"--test-ids applies to pubmedqa only, not {fmt}", "drop --test-ids")
    if given is not None:
        if not Path(given).is_file():
            raise UserError("no such file (--test-ids)", "give PubMedQA's test_ground_truth.json", given)
        return Path(given)
    found = path / "test_ground_truth.json" if fmt == "pubmedqa" and path.is_dir() else None
    return found if found is not None and found.is_file() else None


def _fixed_test(examples: list[Example], ids_path: Path) -> set[str]:
    """Ids of the examples the official test file names; every PMID must exist and agree on its label."""
    by_pmid = {e.meta["pmid"]: e for e in examples}
    fixed = set()
    for pmid, (label, line) in read_pubmedqa_test_ids(ids_path).items():
        ex = by_pmid.get(pmid)
        if ex is None:
            raise UserError(
                f"PMID {pmid} is not in the data", "use the test ids of this ori_pqal.json", str(ids_path), line
            )
        if label is not None and label != ex.meta["answer"]:
            raise UserError(
                f"PMID {pmid} is labelled {label!r} here but {ex.meta['answer']!r} at {ex.where}",
                "use the ground truth that belongs to this ori_pqal.json",
                str(ids_path),
                line,
            )
        fixed.add(ex.id)
    return fixed


def load_sources(fmt: str, path: str, test_ids: str | None = None) -> Loaded:
    """Read every source file of the format; ids must be unique across them."""
    spec, root = FORMATS[fmt], Path(path)
    ids_path = _test_ids_file(fmt, root, test_ids)
    examples, sources, skipped, notes = [], [], Counter(), {}
    for file in source_files(fmt, root):
        got: FileRead = spec.read(file)
        examples.extend(got.examples)
        skipped.update(got.skipped)
        sources.append({"path": str(file), "sha256": _sha256(file), "rows": got.rows})
        notes[str(file)] = got.notes
    fixed = set()
    if ids_path is not None:
        fixed = _fixed_test(examples, ids_path)
        sources.append({"path": str(ids_path), "sha256": _sha256(ids_path), "rows": len(fixed), "role": "test ids"})
    return Loaded(examples, sources, skipped, fixed, notes)


# ---- splitting -----------------------------------------------------------------------------------------------------


def parse_size(text: str | None, flag: str) -> int | float:
    """A fraction in (0, 1) or a whole number of prompts; None -> the default."""
    if text is None:
        return DEFAULT_SIZES[flag.removeprefix("--").removesuffix("-size")]
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value.is_integer() and value >= 0 and "." not in text:
        return int(value)
    if 0 < value < 1:
        return value
    raise UserError(f"{flag} {text!r} is neither a fraction in (0, 1) nor a whole number", f"use e.g. {flag} 0.2 or 50")


def _count(size: int | float, total: int) -> int:
    return min(total, max(1, round(size * total)) if isinstance(size, float) else size)


def _order(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}\n{text}".encode()).hexdigest()


def dedupe(examples: list[Example]) -> tuple[list[Example], int]:
    """Drop exact duplicates (same prompt and reference; the smallest id stays); ids must then be unique."""
    kept, seen, ids = [], set(), {}
    for ex in sorted(examples, key=lambda e: e.id):
        if (ex.prompt, ex.completion) in seen:
            continue
        if ex.id in ids:
            file, _, line = ex.where.rpartition(":")
            raise UserError(f"id {ex.id!r} is also used at {ids[ex.id]}", "give every row its own ID", file, int(line))
        seen.add((ex.prompt, ex.completion))
        ids[ex.id] = ex.where
        kept.append(ex)
    return kept, len(examples) - len(kept)


def split_examples(
    examples: list[Example], test: int | float, eval_: int | float, seed: int, fixed_test: set[str]
) -> dict[str, list[Example]]:
    """Rows with the same prompt always share a split. Prompts are ordered by a seeded hash (not by input order);
    the first go to test, the next to eval, the rest to train. With fixed test ids, those prompts are the test split
    and the sizes apply to the rest."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.prompt, []).append(ex)
    prompts = sorted(groups, key=lambda p: _order(seed, p))
    fixed = [p for p in prompts if any(e.id in fixed_test for e in groups[p])]
    fixed_set = set(fixed)
    rest = [p for p in prompts if p not in fixed_set]
    n_test = 0 if fixed_test else _count(test, len(prompts))
    n_eval = _count(eval_, len(rest) if fixed_test else len(prompts))
    if len(rest) - n_test - n_eval <= 0:
        raise UserError(
            f"test and eval sizes take {n_test + len(fixed)} + {n_eval} of {len(prompts)} distinct prompts and leave "
            "no train rows",
            "use a smaller --test-size / --eval-size",
        )
    chosen = {"test": fixed + rest[:n_test], "eval": rest[n_test : n_test + n_eval], "train": rest[n_test + n_eval :]}
    return {s: [e for p in chosen[s] for e in sorted(groups[p], key=lambda e: e.id)] for s in SPLITS}


# ---- rows with rejected answers --------------------------------------------------------------------------------------


_WORD = re.compile(r"[a-z0-9]+")
# Words too common in notes to show that a reference is about another encounter.
_COMMON = frozenset("that this with have from were they there which their been also does about patient none".split())
MIN_UNSUPPORTED_WORDS = 2
MIN_UNSUPPORTED_SHARE = 0.25
MAX_UNSUPPORTED_USES = 2  # past this, a reference is taken from another group rather than rejected again and again
REJECTED_RULES = ("same group, unsupported", "other group, unsupported", "same group", "other group")


def _content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if len(w) >= 4 and w not in _COMMON)


def _unsupported(reference: frozenset[str], known: frozenset[str]) -> bool:
    """Whether another encounter's reference says enough that this row does not: at least 2 of its content words,
    and a quarter of them, occur neither in this conversation nor in its own reference. Paraphrases of the chosen
    answer ("She has no known drug allergies." for "No known drug allergies.") fail this, so a correct answer is not
    made the rejected one."""
    missing = len(reference - known)
    return missing >= MIN_UNSUPPORTED_WORDS and missing >= MIN_UNSUPPORTED_SHARE * len(reference)


def _other_encounter(
    ex: Example, rows: list[Example], words: dict[str, frozenset[str]], uses: dict, split: str
) -> tuple[str, list[Example]]:
    """(rule, candidates): rows of another conversation with a different reference, preferring, in REJECTED_RULES
    order, the same group (MTS-Dialog section / ACI-Bench subset) and a reference this row does not support that
    has been rejected fewer than MAX_UNSUPPORTED_USES times (`uses`: the split's rejected counts by id)."""
    others = [o for o in rows if o.meta["source"] != ex.meta["source"] and o.completion != ex.completion]
    if not others:
        raise UserError(
            f"the {split} split holds no other conversation to take {ex.id}'s rejected note from",
            "raise --test-size / --eval-size / --limit so every split holds at least two conversations",
        )
    known = words[ex.meta["source"]] | words[ex.completion]
    unsupported = [
        o for o in others if uses.get(o.id, 0) < MAX_UNSUPPORTED_USES and _unsupported(words[o.completion], known)
    ]
    tiers = (
        [o for o in unsupported if o.group == ex.group],
        unsupported,
        [o for o in others if o.group == ex.group],
        others,
    )
    return next((rule, tier) for rule, tier in zip(REJECTED_RULES, tiers, strict=True) if tier)


def pair_rows(spec: FormatSpec, split: str, rows: list[Example], seed: int) -> tuple[list[dict], list[dict], Counter]:
    """Canonical SFT rows and preference rows (same id, prompt, meta; chosen == completion) for one split, and how
    many rejected answers each REJECTED_RULES rule picked (dialogue tasks)."""
    rng, picker = random.Random(f"{seed}-{spec.task}-{split}"), RejectedLabelPicker()
    by_id = {ex.id: ex for ex in rows}
    words = {t: _content_words(t) for ex in rows if not ex.answers for t in (ex.completion, ex.meta["source"])}
    sft, pref, rules = [], [], Counter()
    for ex in rows:
        if ex.answers:
            gold = ex.meta["answer"]
            wrong = picker.pick(gold, [k for k in ex.answers if k != gold], rng)
            rejected = ex.answers[wrong]
        else:
            rule, candidates = _other_encounter(ex, rows, words, picker.rejected, split)
            wrong = picker.pick(ex.id, [o.id for o in candidates], rng)
            rejected, rules[rule] = by_id[wrong].completion, rules[rule] + 1
        prompt = [{"role": "user", "content": ex.prompt}]
        chosen = [{"role": "assistant", "content": ex.completion}]
        base = {"id": ex.id, "task": spec.task, "prompt": prompt}
        sft.append({**base, "completion": chosen, "meta": dict(ex.meta)})
        pair_meta = {**ex.meta, "error_type": spec.error_type, "rejected_answer": wrong}
        pref.append(
            {**base, "chosen": chosen, "rejected": [{"role": "assistant", "content": rejected}], "meta": pair_meta}
        )
    return sft, pref, rules


def _labels(sft: list[dict], pref: list[dict]) -> dict[str, dict[str, int]]:
    chosen = Counter(r["meta"]["answer"] for r in sft)
    rejected = Counter(r["meta"]["rejected_answer"] for r in pref)
    return {"chosen": dict(sorted(chosen.items())), "rejected": dict(sorted(rejected.items()))}


# ---- writing -------------------------------------------------------------------------------------------------------


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError("--out is a file, not a folder", "choose a folder for the imported data", str(out))
    present = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if present and not force:
        raise UserError("folder is not empty", "choose an empty or new --out, or pass --force to replace it", str(out))
    foreign = [name for name in present if name not in (*FILES, "manifest.json")]
    if foreign:
        raise UserError(
            f"folder holds files an import did not write ({', '.join(foreign[:5])})",
            "choose another --out; --force only replaces an earlier import",
            str(out),
        )


def write_output(out: Path, files: dict[str, bytes], force: bool) -> None:
    """Write every file into a temp folder beside `out`, then swap it in with renames; on any failure the earlier
    contents of `out` (if any) are put back and the temp folder is removed."""
    _check_out(out, force)
    out = out.resolve()  # `--out .` must get its temp folder beside it, not inside it
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.import-{secrets.token_hex(4)}"
    old = tmp.with_name(tmp.name + ".old")
    tmp.mkdir()
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def build_rows(spec: FormatSpec, splits: dict[str, list[Example]], seed: int) -> tuple[dict[str, list[dict]], dict]:
    """{file name: rows} for the six files, and the per-split facts the manifest reports."""
    files, facts = {}, {"counts": {}, "labels": {}, "rejected_from": {}}
    for split in SPLITS:
        sft, pref, rules = pair_rows(spec, split, splits[split], seed)
        files[f"sft_{split}.jsonl"], files[f"pref_{split}.jsonl"] = sft, pref
        facts["counts"][split] = {"sft": len(sft), "pref": len(pref)}
        if spec.error_type == "other_encounter":
            facts["rejected_from"][split] = {r: rules[r] for r in REJECTED_RULES if rules[r]}
        else:
            facts["labels"][split] = _labels(sft, pref)
    return files, {k: v for k, v in facts.items() if v}


def import_dataset(fmt: str, path: str, out: str, settings: ImportSettings | None = None) -> dict:
    """Run the import and return the manifest (also written to `out/manifest.json`)."""
    settings = settings or ImportSettings()
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    if settings.limit is not None and settings.limit < 1:
        raise UserError(f"--limit {settings.limit} keeps no rows", "give a positive number of rows per split")
    test, eval_ = parse_size(settings.test_size, "--test-size"), parse_size(settings.eval_size, "--eval-size")
    _check_out(Path(out), settings.force)  # fail before the reading work; checked again right before writing
    spec, loaded = FORMATS[fmt], load_sources(fmt, path, settings.test_ids)
    if loaded.fixed_test and settings.test_size is not None:
        raise UserError(
            "--test-size does not apply: the official test ids decide the test split",
            "drop --test-size, or give ori_pqal.json itself as PATH to split every PMID by --test-size",
        )
    examples, duplicates = dedupe(loaded.examples)
    splits = split_examples(examples, test, eval_, settings.seed, loaded.fixed_test)
    dropped = {"duplicate": duplicates}
    if settings.limit:
        dropped["over_limit"] = {s: max(0, len(rows) - settings.limit) for s, rows in splits.items()}
        splits = {s: rows[: settings.limit] for s, rows in splits.items()}
    files, facts = build_rows(spec, splits, settings.seed)
    data = {name: "".join(dumps(r) + "\n" for r in files[name]).encode("utf-8") for name in FILES}
    manifest = {
        "format": fmt,
        "task": spec.task,
        "settings": {"path": path, **asdict(settings), "test_size": test, "eval_size": eval_},
        "split": {
            "unit": "distinct prompt text (rows with the same prompt share a split)",
            "test": "the official test ids" if loaded.fixed_test else "seeded hash order of the prompts",
        },
        "sources": loaded.sources,
        **({"cop_convention": {p: n["cop"] for p, n in loaded.notes.items()}} if fmt == "medmcqa" else {}),
        **facts,
        "skipped": dict(sorted(loaded.skipped.items())),
        "dropped": dropped,
        "rejected_error_type": spec.error_type,
        "license": spec.license,
        "citation": spec.citation,
        "note": PUBLIC_NOTE,
        "files": {name: {"rows": len(files[name]), "sha256": hashlib.sha256(data[name]).hexdigest()} for name in FILES},
    }
    data["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    write_output(Path(out), data, settings.force)
    return manifest
