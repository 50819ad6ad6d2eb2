"""`align data import` (align/data/importer.py) end to end: the real benchmarks with default settings, splits,
balance, determinism, --limit, --force, nothing half-written, and every bad input as one UserError."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from align.cli import main
from align.data.build import FILES
from align.data.importer import ImportSettings, import_dataset
from align.errors import UserError
from tests.conftest import REALDATA

FIXTURES = Path(__file__).parent / "fixtures" / "medmcqa"
OUTPUTS = (*FILES, "manifest.json")
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} is absent")
DEFAULTS = {  # format -> rows per split (train, eval, test) with --test-size 0.2 --eval-size 0.1 --seed 0
    "medqa": (891, 127, 255),  # 1,273 questions: 20% and 10% of them, rounded
    "pubmedqa": (450, 50, 500),  # the 500 official test PMIDs; eval = 10% of the other 500
    "mts-dialog": (280, 40, 80),  # 400 rows, 399 distinct prompts (two share one) -> 279 + 40 + 80 prompts
    "aci-bench": (84, 12, 24),  # 3 x 40 encounters
}


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _load(out: Path) -> dict[str, list[dict]]:
    return {name: _read(out / name) for name in FILES}


def _bytes(out: Path, names=OUTPUTS) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in names}


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, Path]:
    """Each real dataset imported once with the defaults, from its folder."""
    if not REALDATA.is_dir():
        pytest.skip(f"{REALDATA} is absent")
    root = tmp_path_factory.mktemp("imports")
    for fmt in DEFAULTS:
        import_dataset(fmt, str(REALDATA / fmt), str(root / fmt))
    return {fmt: root / fmt for fmt in DEFAULTS}


# ---- the real benchmarks with default settings ---------------------------------------------------------------------


@needs_realdata
@pytest.mark.parametrize("fmt", list(DEFAULTS))
def test_default_import_writes_the_canonical_contract(imported, fmt):
    out = imported[fmt]
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    rows, manifest = _load(out), json.loads((out / "manifest.json").read_text())
    task = manifest["task"]
    assert task == {"mts-dialog": "mts_dialog", "aci-bench": "aci_bench"}.get(fmt, fmt)
    prompts = {}
    for split, n in zip(("train", "eval", "test"), DEFAULTS[fmt], strict=True):
        sft, pref = rows[f"sft_{split}.jsonl"], rows[f"pref_{split}.jsonl"]
        assert len(sft) == len(pref) == n and manifest["counts"][split] == {"sft": n, "pref": n}
        for s, p in zip(sft, pref, strict=True):
            assert set(s) == {"id", "task", "prompt", "completion", "meta"}
            assert set(p) == {"id", "task", "prompt", "chosen", "rejected", "meta"}
            assert s["id"] == p["id"] and s["task"] == p["task"] == task and s["prompt"] == p["prompt"]
            assert p["chosen"] == s["completion"] and p["rejected"] != p["chosen"]
            assert {k: v for k, v in p["meta"].items() if k not in ("error_type", "rejected_answer")} == s["meta"]
            assert [m["role"] for m in s["prompt"] + s["completion"] + p["rejected"]] == [
                "user",
                "assistant",
                "assistant",
            ]
        prompts[split] = {s["prompt"][0]["content"] for s in sft}
    assert not (
        prompts["train"] & prompts["eval"] or prompts["train"] & prompts["test"] or prompts["eval"] & prompts["test"]
    )
    ids = [r["id"] for name in FILES if name.startswith("sft") for r in rows[name]]
    assert len(ids) == len(set(ids)) == sum(DEFAULTS[fmt])
    for src in manifest["sources"]:
        assert src["sha256"] == hashlib.sha256(Path(src["path"]).read_bytes()).hexdigest()
    for name in FILES:
        assert manifest["files"][name]["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    assert "may have seen" in manifest["note"] and manifest["dropped"] == {"duplicate": 0}


@needs_realdata
def test_manifest_records_sources_license_and_settings(imported):
    medqa = json.loads((imported["medqa"] / "manifest.json").read_text())
    assert medqa["settings"] == {
        "path": str(REALDATA / "medqa"),
        "test_size": 0.2,
        "eval_size": 0.1,
        "seed": 0,
        "limit": None,
        "test_ids": None,
        "force": False,
    }
    assert [(s["path"], s["rows"]) for s in medqa["sources"]] == [(str(REALDATA / "medqa" / "test.jsonl"), 1273)]
    assert medqa["license"] == "MIT" and medqa["citation"].startswith("Jin et al. 2021")
    aci = json.loads((imported["aci-bench"] / "manifest.json").read_text())
    assert [Path(s["path"]).name for s in aci["sources"]] == [
        "clef_taskC_test3.csv",
        "clinicalnlp_taskB_test1.csv",
        "clinicalnlp_taskC_test2.csv",
    ]
    assert aci["license"] == "CC BY 4.0" and "Yim et al." in aci["citation"] and "Sci" in aci["citation"]
    mts = json.loads((imported["mts-dialog"] / "manifest.json").read_text())
    assert mts["license"] == "CC BY 4.0" and "Ben Abacha et al." in mts["citation"] and "EACL 2023" in mts["citation"]
    assert [s["rows"] for s in mts["sources"]] == [200, 200]
    assert json.loads((imported["pubmedqa"] / "manifest.json").read_text())["license"] == "MIT"


@needs_realdata
def test_medqa_rejected_letters_are_balanced_per_split(imported):
    rows, manifest = _load(imported["medqa"]), json.loads((imported["medqa"] / "manifest.json").read_text())
    for split in ("train", "eval", "test"):
        sft, pref = rows[f"sft_{split}.jsonl"], rows[f"pref_{split}.jsonl"]
        chosen = Counter(r["meta"]["answer"] for r in sft)
        rejected = Counter(r["meta"]["rejected_answer"] for r in pref)
        assert all(abs(chosen[k] - rejected[k]) <= 2 for k in "ABCD"), (split, chosen, rejected)
        assert manifest["labels"][split] == {
            "chosen": dict(sorted(chosen.items())),
            "rejected": dict(sorted(rejected.items())),
        }
        for p in pref:
            letter, options = p["meta"]["rejected_answer"], p["meta"]["options"]
            assert letter != p["meta"]["answer"] and p["meta"]["error_type"] == "distractor"
            assert p["rejected"][0]["content"] == f"Answer: {letter}. {options[letter]}"
    assert manifest["labels"]["train"]["chosen"] == {"A": 236, "B": 220, "C": 260, "D": 175}


@needs_realdata
def test_pubmedqa_official_test_split_and_label_balance(imported):
    rows = _load(imported["pubmedqa"])
    truth = json.loads((REALDATA / "pubmedqa" / "test_ground_truth.json").read_text())
    assert {r["meta"]["pmid"]: r["meta"]["answer"] for r in rows["sft_test.jsonl"]} == truth
    data = json.loads((REALDATA / "pubmedqa" / "ori_pqal.json").read_text())
    for name in FILES:
        for r in rows[name]:
            assert data[r["meta"]["pmid"]]["LONG_ANSWER"] not in r["prompt"][0]["content"]
    for split in ("train", "eval", "test"):
        sft, pref = rows[f"sft_{split}.jsonl"], rows[f"pref_{split}.jsonl"]
        n, chosen = len(sft), Counter(r["meta"]["answer"] for r in sft)
        rejected = Counter(r["meta"]["rejected_answer"] for r in pref)
        assert all(p["rejected"][0]["content"] == f"Answer: {p['meta']['rejected_answer']}" for p in pref)
        # "yes" is over half of every split, so it can be rejected at most n - chosen["yes"] times (once per non-yes
        # row); the picker gets within 4 of that bound and never rejects "no" or "maybe" less often than chosen.
        assert n - chosen["yes"] - 4 <= rejected["yes"] <= n - chosen["yes"], (split, chosen, rejected)
        assert rejected["no"] >= chosen["no"] and rejected["maybe"] >= chosen["maybe"]
    assert json.loads((imported["pubmedqa"] / "manifest.json").read_text())["labels"]["test"] == {
        "chosen": {"maybe": 55, "no": 169, "yes": 276},
        "rejected": {"maybe": 83, "no": 197, "yes": 220},
    }


@needs_realdata
@pytest.mark.parametrize("fmt", ["mts-dialog", "aci-bench"])
def test_dialogue_rejected_is_another_encounters_reference(imported, fmt):
    rows = _load(imported[fmt])
    group = "section_header" if fmt == "mts-dialog" else "dataset"
    same_group = 0
    for split in ("train", "eval", "test"):
        by_id = {r["id"]: r for r in rows[f"sft_{split}.jsonl"]}
        for p in rows[f"pref_{split}.jsonl"]:
            other = by_id[p["meta"]["rejected_answer"]]  # from the same split
            assert p["meta"]["error_type"] == "other_encounter" and other["meta"]["source"] != p["meta"]["source"]
            assert p["rejected"] == other["completion"] != p["chosen"]
            same_group += other["meta"][group] == p["meta"][group]
        uses = Counter(p["meta"]["rejected_answer"] for p in rows[f"pref_{split}.jsonl"])
        assert max(uses.values()) <= 2  # no reference becomes the rejected answer again and again
    manifest = json.loads((imported[fmt] / "manifest.json").read_text())
    expected = {"mts-dialog": 375, "aci-bench": 120}[fmt]
    assert (
        same_group == expected == sum(r.get("same group, unsupported", 0) for r in manifest["rejected_from"].values())
    )


@needs_realdata
def test_rows_sharing_a_prompt_share_a_split(imported):
    where = {}
    for name in FILES:
        for r in _read(imported["mts-dialog"] / name):
            where.setdefault(r["id"], set()).add(name.split("_")[1])
    pair = ["MTS-Dialog-TestSet-2-MEDIQA-Sum-2023-59", "MTS-Dialog-TestSet-2-MEDIQA-Sum-2023-153"]  # same dialogue
    assert where[pair[0]] == where[pair[1]] and len(where[pair[0]]) == 1


# ---- determinism, sizes, --limit -----------------------------------------------------------------------------------


@needs_realdata
def test_same_inputs_and_seed_give_the_same_bytes(tmp_path, imported):
    import_dataset("medqa", str(REALDATA / "medqa"), str(tmp_path / "again"))
    assert _bytes(tmp_path / "again") == _bytes(imported["medqa"])
    import_dataset("medqa", str(REALDATA / "medqa"), str(tmp_path / "seed1"), ImportSettings(seed=1))
    other = _load(tmp_path / "seed1")
    assert {r["id"] for r in other["sft_test.jsonl"]} != {r["id"] for r in _load(imported["medqa"])["sft_test.jsonl"]}
    assert [len(other[n]) for n in FILES] == [891, 127, 255] * 2


@needs_realdata
def test_row_order_of_the_input_does_not_matter(tmp_path, imported):
    lines = (REALDATA / "medqa" / "test.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    random.Random(5).shuffle(lines)
    (tmp_path / "shuffled").mkdir()
    (tmp_path / "shuffled" / "test.jsonl").write_text("".join(lines), encoding="utf-8")
    import_dataset("medqa", str(tmp_path / "shuffled"), str(tmp_path / "out"))
    assert _bytes(tmp_path / "out", FILES) == _bytes(imported["medqa"], FILES)


@needs_realdata
def test_limit_keeps_a_deterministic_prefix_of_each_split(tmp_path, imported):
    manifest = import_dataset("medqa", str(REALDATA / "medqa"), str(tmp_path / "cpu"), ImportSettings(limit=200))
    assert manifest["counts"] == {s: {"sft": n, "pref": n} for s, n in (("train", 200), ("eval", 127), ("test", 200))}
    assert manifest["dropped"] == {"duplicate": 0, "over_limit": {"train": 691, "eval": 0, "test": 55}}
    full, cut = _load(imported["medqa"]), _load(tmp_path / "cpu")
    for split, n in (("train", 200), ("eval", 127), ("test", 200)):
        assert cut[f"sft_{split}.jsonl"] == full[f"sft_{split}.jsonl"][:n]
        chosen = Counter(r["meta"]["answer"] for r in cut[f"sft_{split}.jsonl"])
        rejected = Counter(r["meta"]["rejected_answer"] for r in cut[f"pref_{split}.jsonl"])
        assert all(abs(chosen[k] - rejected[k]) <= 2 for k in "ABCD")  # balanced within what was kept


@needs_realdata
def test_sizes_as_counts_and_duplicates_dropped(tmp_path):
    src = (REALDATA / "medqa" / "test.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "q.jsonl").write_text("".join(src[:300] + src[:1]), encoding="utf-8")  # row 0 twice
    settings = ImportSettings(test_size="100", eval_size="50")
    manifest = import_dataset("medqa", str(tmp_path / "in" / "q.jsonl"), str(tmp_path / "out"), settings)
    assert [manifest["counts"][s]["sft"] for s in ("train", "eval", "test")] == [150, 50, 100]
    assert manifest["dropped"]["duplicate"] == 1 and manifest["settings"]["test_size"] == 100


# ---- MedMCQA (synthetic fixtures in the upstream layouts) ----------------------------------------------------------


def test_medmcqa_both_cop_conventions_import_the_same_answers(tmp_path):
    release = import_dataset("medmcqa", str(FIXTURES / "release" / "train.json"), str(tmp_path / "gh"))
    hf = import_dataset("medmcqa", str(FIXTURES / "hf" / "train.jsonl"), str(tmp_path / "hf"))
    assert release["cop_convention"] == {
        str(FIXTURES / "release" / "train.json"): "1-based (cop 4 on line 4, as in the GitHub release)"
    }
    assert hf["cop_convention"] == {
        str(FIXTURES / "hf" / "train.jsonl"): "0-based (cop 0 on line 3, as in the Hugging Face export)"
    }
    assert release["skipped"] == {"no_gold": 0} and hf["skipped"] == {"no_gold": 2}
    assert hf["sources"][0]["rows"] == 12 and release["counts"] == hf["counts"]
    assert [manifest["counts"]["train"]["sft"] for manifest in (release, hf)] == [7, 7]
    for name in FILES:  # same ids, prompts, letters and rejected answers; only meta.source names the other file
        gh_rows, hf_rows = _read(tmp_path / "gh" / name), _read(tmp_path / "hf" / name)
        assert [r["meta"].pop("source") for r in gh_rows] == ["medmcqa/train.json"] * len(gh_rows)
        assert [r["meta"].pop("source") for r in hf_rows] == ["medmcqa/train.jsonl"] * len(hf_rows)
        assert gh_rows == hf_rows
    rows = {r["id"]: r for name in FILES if name.startswith("pref") for r in _read(tmp_path / "gh" / name)}
    scurvy = rows["train-syn-0000"]
    assert scurvy["task"] == "medmcqa"
    assert (
        scurvy["chosen"][0]["content"]
        == "Answer: C. Vitamin C\nExplanation: Vitamin C is needed for collagen synthesis."
    )
    letter = scurvy["meta"]["rejected_answer"]
    assert scurvy["rejected"][0]["content"] == f"Answer: {letter}. {scurvy['meta']['options'][letter]}"


def test_medmcqa_folder_and_unlabelled_file(tmp_path):
    manifest = import_dataset("medmcqa", str(FIXTURES / "release"), str(tmp_path / "out"))
    assert [Path(s["path"]).name for s in manifest["sources"]] == ["dev.json", "train.json"]  # sorted by name
    assert manifest["cop_convention"][str(FIXTURES / "release" / "dev.json")].startswith("1-based, assumed")
    assert sum(c["sft"] for c in manifest["counts"].values()) == 13
    with pytest.raises(UserError, match=r"unlabelled/test.json:1: no labelled row"):
        import_dataset("medmcqa", str(FIXTURES / "unlabelled"), str(tmp_path / "none"))
    assert not (tmp_path / "none").exists()


# ---- the output folder: refuse, --force, nothing half-written ------------------------------------------------------


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_refuses_a_non_empty_folder_unless_force(tmp_path):
    src, out = str(FIXTURES / "hf" / "train.jsonl"), tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=rf"^{re.escape(str(out))}: folder is not empty; .*--force"):
        import_dataset("medmcqa", src, str(out))
    with pytest.raises(UserError, match=r"folder holds files an import did not write \(notes.txt\)"):
        import_dataset("medmcqa", src, str(out), ImportSettings(force=True))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (out / "notes.txt").unlink()
    import_dataset("medmcqa", src, str(out))  # an empty folder is fine
    first = _bytes(out)
    with pytest.raises(UserError, match="folder is not empty"):
        import_dataset("medmcqa", src, str(out), ImportSettings(seed=3))
    import_dataset("medmcqa", src, str(out), ImportSettings(seed=3, force=True))
    assert _bytes(out) != first and json.loads((out / "manifest.json").read_text())["settings"]["seed"] == 3
    assert _hidden(tmp_path) == []


def test_a_failed_write_keeps_the_earlier_import(tmp_path, monkeypatch):
    src, out = str(FIXTURES / "hf" / "train.jsonl"), tmp_path / "out"
    import_dataset("medmcqa", src, str(out))
    before = _bytes(out)
    real_write = Path.write_bytes
    written = []

    def fail_on_third(self, data):
        written.append(self.name)
        if len(written) == 3:
            raise OSError("disk full")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", fail_on_third)
    with pytest.raises(OSError, match="disk full"):
        import_dataset("medmcqa", src, str(out), ImportSettings(seed=9, force=True))
    monkeypatch.undo()
    assert _bytes(out) == before and _hidden(tmp_path) == []


def test_bad_input_creates_nothing(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "Q?", "options": {"A": "x", "B": "y"}, "answer_idx": "A"}\n{oops\n')
    with pytest.raises(UserError, match=r"q.jsonl:2: malformed JSON"):
        import_dataset("medqa", str(bad), str(tmp_path / "out" / "nested"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.jsonl"]


# ---- bad command lines ---------------------------------------------------------------------------------------------


def test_bad_arguments_are_one_line_errors(tmp_path):
    src, out = str(FIXTURES / "hf" / "train.jsonl"), str(tmp_path / "out")
    cases = [
        (
            ("csv", src),
            ImportSettings(),
            r"^unknown format 'csv'; use one of: medqa, medmcqa, pubmedqa, mts-dialog, aci-bench$",
        ),
        (("medqa", str(tmp_path / "nope")), ImportSettings(), r"nope: no such file or folder"),
        (
            ("medqa", str(FIXTURES / "release")),
            ImportSettings(),
            r"release: no medqa file in this folder \(looked for \*\.jsonl\)",
        ),
        (("medmcqa", src), ImportSettings(test_size="0.6", eval_size="0.5"), r"leave no train rows"),
        (
            ("medmcqa", src),
            ImportSettings(test_size="10"),
            r"take 10 \+ 1 of 10 distinct prompts and leave no train rows",
        ),
        (("medmcqa", src), ImportSettings(eval_size="1.5"), r"--eval-size '1.5' is neither a fraction in \(0, 1\) nor"),
        (("medmcqa", src), ImportSettings(test_size="a"), r"--test-size 'a' is neither"),
        (("medmcqa", src), ImportSettings(limit=0), r"--limit 0 keeps no rows"),
        (("medmcqa", src), ImportSettings(test_ids=src), r"--test-ids applies to pubmedqa only, not medmcqa"),
    ]
    for (fmt, path), settings, message in cases:
        with pytest.raises(UserError, match=message):
            import_dataset(fmt, path, out, settings)
    assert not Path(out).exists()


def test_pubmedqa_test_ids_problems(tmp_path):
    folder = tmp_path / "pqa"
    folder.mkdir()
    entry = {"QUESTION": "q?", "CONTEXTS": ["c"], "LABELS": ["RESULTS"], "final_decision": "yes"}
    data = {str(i): {**entry, "QUESTION": f"q{i}?", "final_decision": "yes no maybe".split()[i % 3]} for i in range(12)}
    (folder / "ori_pqal.json").write_text(json.dumps(data, indent=4))
    (folder / "test_ground_truth.json").write_text('{\n    "1": "no",\n    "99": "yes"\n}')
    with pytest.raises(UserError, match=r"test_ground_truth.json:3: PMID 99 is not in the data"):
        import_dataset("pubmedqa", str(folder), str(tmp_path / "out"))
    (folder / "test_ground_truth.json").write_text('{\n    "1": "no",\n    "2": "yes"\n}')
    with pytest.raises(
        UserError, match=r"test_ground_truth.json:3: PMID 2 is labelled 'yes' here but 'maybe' at .*ori_pqal.json:\d+"
    ):
        import_dataset("pubmedqa", str(folder), str(tmp_path / "out"))
    (folder / "test_ground_truth.json").write_text('{\n    "1": "no",\n    "2": "maybe"\n}')
    with pytest.raises(UserError, match=r"--test-size does not apply: the official test ids decide the test split"):
        import_dataset("pubmedqa", str(folder), str(tmp_path / "out"), ImportSettings(test_size="0.3"))
    manifest = import_dataset("pubmedqa", str(folder), str(tmp_path / "out"))
    assert manifest["counts"]["test"]["sft"] == 2 and manifest["counts"]["eval"]["sft"] == 1  # 10% of 10, rounded
    assert {r["meta"]["pmid"] for r in _read(tmp_path / "out" / "sft_test.jsonl")} == {"1", "2"}
    file_only = import_dataset("pubmedqa", str(folder / "ori_pqal.json"), str(tmp_path / "all"))
    assert file_only["split"]["test"] == "seeded hash order of the prompts" and file_only["counts"]["test"]["sft"] == 2


def test_cli_import_prints_one_line_and_exits_2_on_errors(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(["data", "import", "medmcqa", str(FIXTURES / "hf" / "train.jsonl"), "--out", str(out), "--seed", "1"]) == 0
    )
    assert capsys.readouterr().out == (
        f"data import: wrote {out} (medmcqa; SFT and preference rows per split: train 7, eval 1, test 2)\n"
    )
    assert json.loads((out / "manifest.json").read_text())["settings"]["seed"] == 1
    assert main(["data", "import", "medmcqa", str(FIXTURES / "hf" / "train.jsonl"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"{out}: folder is not empty; choose an empty or new --out, or pass --force to replace it\n"
    assert main(["data", "import", "medmcqa", str(FIXTURES), "--out", str(tmp_path / "x"), "--limit", "0"]) == 2
    assert capsys.readouterr().err == "--limit 0 keeps no rows; give a positive number of rows per split\n"
