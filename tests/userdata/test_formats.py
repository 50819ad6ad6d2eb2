"""Shapes -> canonical rows, column mapping, drops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from align.data.formats import SHAPES, parse_columns_arg, to_canonical
from align.data.readers import Record, read_records
from align.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"


def convert(name: str, kind: str, **kwargs):
    return to_canonical(read_records(FIXTURES / name), kind, **kwargs)


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def bot(text: str) -> dict:
    return {"role": "assistant", "content": text}


def recs(*rows: dict) -> list[Record]:
    return [Record(r, "mem.jsonl", i + 1) for i, r in enumerate(rows)]


def test_explicit_text_and_messages_with_drops() -> None:
    result = convert("explicit.jsonl", "preference", task="triage")
    assert result.shape == "explicit"
    assert result.dropped == {"chosen_equals_rejected": 1, "empty_field": 1}
    first, second = result.rows
    assert first == {
        "id": "triage-0",
        "task": "triage",
        "prompt": [user("Patient with chest pain radiating to the left arm. Triage?")],
        "chosen": [bot("ESI level: 2\nRationale: possible ACS.")],
        "rejected": [bot("ESI level: 4\nRationale: stable.")],
        "meta": {"source": f"{FIXTURES / 'explicit.jsonl'}:1"},
    }
    assert second["prompt"][0] == {"role": "system", "content": "You are a triage nurse."}
    assert second["id"] == "triage-1"


def test_implicit_message_lists_split_at_last_turn() -> None:
    result = convert("implicit_messages.jsonl", "preference")
    assert result.shape == "implicit"
    assert result.dropped == {"chosen_equals_rejected": 1}
    row = result.rows[0]
    assert row["prompt"] == [user("I have a cough."), bot("How long?"), user("Two weeks.")]
    assert row["chosen"] == [bot("See your doctor if it persists or you have fever.")]
    assert row["rejected"] == [bot("Ignore it.")]


def test_implicit_anthropic_hh_transcripts() -> None:
    result = convert("hh.jsonl", "preference")
    assert result.shape == "implicit"
    assert result.rows[0]["prompt"] == [
        user("What is a normal resting heart rate?"),
        bot("Usually 60 to 100 beats per minute."),
        user("And for athletes?"),
    ]
    assert result.rows[0]["chosen"] == [bot("It can be as low as 40.")]
    assert result.rows[1]["rejected"] == [bot("Yes, always fine.")]


def test_implicit_conversations_that_differ_earlier_are_dropped() -> None:
    chosen = [user("q"), bot("a1"), user("q2"), bot("a2")]
    rejected = [user("q"), bot("b1"), user("q2"), bot("b2")]
    other = {"chosen": [user("x"), bot("y")], "rejected": [user("z"), bot("w")]}
    ok = {"chosen": [user("q"), bot("good")], "rejected": [user("q"), bot("bad")]}
    result = to_canonical(recs({"chosen": chosen, "rejected": rejected}, other, ok), "preference")
    assert result.dropped == {"differs_before_last_turn": 1, "no_shared_prompt": 1}
    assert [r["meta"]["source"] for r in result.rows] == ["mem.jsonl:3"]


def test_scored_best_vs_worst_and_margin() -> None:
    result = convert("scored.jsonl", "preference")
    assert result.shape == "scored"
    assert result.dropped == {"below_margin": 1}  # the 5 vs 5 tie; 5.5 - 5 = 0.5 > 0.0 is kept
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in result.rows] == [
        ("IM epinephrine", "Observe"),
        ("Patch", "Tablet"),
        ("B", "A"),
    ]
    assert result.rows[0]["meta"]["chosen_score"] == 9.0 and result.rows[0]["meta"]["rejected_score"] == 1.0
    strict = convert("scored.jsonl", "preference", min_score_margin=2.5)
    assert strict.dropped == {"below_margin": 3}  # 4.5 - 2.0 = 2.5 is not > 2.5, nor 0 or 0.5; 9 - 1 = 8 is
    assert [r["chosen"][0]["content"] for r in strict.rows] == ["IM epinephrine"]


def test_scored_needs_numeric_scores() -> None:
    with pytest.raises(UserError, match=r"mem.jsonl:1: response 1 has score 'high'"):
        to_canonical(recs({"prompt": "p", "responses": ["a", "b"], "scores": [1, "high"]}), "preference")


def test_sharegpt_preference() -> None:
    result = convert("sharegpt_pref.jsonl", "preference", task="provider_routing")
    assert result.shape == "sharegpt_preference"
    row = result.rows[0]
    assert row["prompt"] == [
        {"role": "system", "content": "Route portal messages."},
        user("I need a refill of lisinopril."),
    ]
    assert row["chosen"] == [bot("Route to: pharmacist\nReason: refill.")]
    assert row["id"] == "provider_routing-0"


@pytest.mark.parametrize(
    ("name", "shape", "prompt", "completion"),
    [
        (
            "messages.jsonl",
            "messages",
            [user("Summarize: 60M with HTN on lisinopril.")],
            "60M, hypertension, on lisinopril.",
        ),
        ("prompt_completion.jsonl", "prompt_completion", [user("What does NPO mean?")], "Nothing by mouth."),
        (
            "sharegpt_sft.json",
            "sharegpt",
            [{"role": "system", "content": "You are a clinician."}, user("Define tachycardia.")],
            "Heart rate above 100.",
        ),
        ("alpaca.json", "alpaca", [user("Expand the abbreviation.\n\nSOB")], "Shortness of breath."),
    ],
)
def test_sft_shapes(name: str, shape: str, prompt: list, completion: str) -> None:
    result = convert(name, "sft")
    assert result.shape == shape
    assert result.rows[0]["prompt"] == prompt
    assert result.rows[0]["completion"] == [bot(completion)]
    assert set(result.rows[0]) == {"id", "task", "prompt", "completion", "meta"}


def test_messages_multi_turn_and_missing_assistant() -> None:
    result = convert("messages.jsonl", "sft")
    assert result.dropped == {"no_assistant_turn": 1}
    assert result.rows[1]["prompt"][-1] == user("Q2") and len(result.rows[1]["prompt"]) == 4
    assert result.rows[1]["completion"] == [bot("A2")]


def test_alpaca_without_input_and_sft_from_preference_file() -> None:
    assert convert("alpaca.json", "sft").rows[1]["prompt"] == [user("Name a loop diuretic.")]
    sft = convert("explicit.jsonl", "sft")
    assert sft.shape == "chosen_as_completion"
    assert sft.rows[0]["completion"] == [bot("ESI level: 2\nRationale: possible ACS.")]


def test_column_mapping_on_csv() -> None:
    columns = parse_columns_arg("prompt=question, chosen=good_answer,rejected=bad_answer")
    result = convert("mapped.csv", "preference", columns=columns)
    assert result.rows[0]["prompt"] == [user("Fever and neck stiffness, triage?")]
    assert result.rows[0]["rejected"] == [bot("ESI level: 5\nRationale: viral.")]
    assert result.rows[1]["meta"]["source"] == f"{FIXTURES / 'mapped.csv'}:5"


def test_missing_mapped_column_names_file_line_and_columns() -> None:
    with pytest.raises(UserError) as err:
        convert("mapped.csv", "preference", columns={"prompt": "question", "chosen": "good", "rejected": "bad_answer"})
    message = str(err.value)
    assert message.startswith(f"{FIXTURES / 'mapped.csv'}:2: missing column 'good' (mapped to 'chosen')")
    assert "the columns are question, good_answer, bad_answer" in message


def test_column_missing_on_a_later_line() -> None:
    rows = recs({"prompt": "p", "completion": "c"}, {"prompt": "p2", "answer": "c2"})
    with pytest.raises(UserError, match=r"^mem.jsonl:2: missing column 'completion', shape 'prompt_completion'"):
        to_canonical(rows, "sft")


def test_undetectable_shape_lists_expected_columns() -> None:
    with pytest.raises(UserError) as err:
        to_canonical(recs({"question": "q", "answer": "a"}), "sft")
    assert str(err.value).startswith("mem.jsonl:1: cannot tell the sft data shape from columns question, answer")
    assert "alpaca (instruction, output)" in str(err.value) and "--columns" in str(err.value)


def test_unknown_shape_kind_and_role() -> None:
    with pytest.raises(UserError, match="unknown preference shape 'alpaca'"):
        to_canonical(recs({"instruction": "i", "output": "o"}), "preference", shape="alpaca")
    with pytest.raises(UserError, match="unknown data kind 'rl'"):
        to_canonical(recs({"prompt": "p"}), "rl")  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"mem.jsonl:1: unknown role 'doctor' in column 'messages'"):
        to_canonical(recs({"messages": [{"role": "doctor", "content": "x"}]}), "sft")


def test_all_rows_chosen_equals_rejected_is_an_error() -> None:
    rows = recs({"prompt": "p", "chosen": "same", "rejected": "same"}, {"prompt": "q", "chosen": "x", "rejected": "x"})
    with pytest.raises(UserError) as err:
        to_canonical(rows, "preference")
    assert str(err.value).startswith("mem.jsonl: no usable rows: all 2 were dropped (chosen_equals_rejected: 2)")


def test_system_prompt_column_and_argument() -> None:
    rows = recs({"prompt": "p", "completion": "c", "system": "From column."}, {"prompt": "p2", "completion": "c2"})
    result = to_canonical(rows, "sft")
    assert result.rows[0]["prompt"] == [{"role": "system", "content": "From column."}, user("p")]
    assert result.rows[1]["prompt"] == [user("p2")]
    forced = to_canonical(recs({"prompt": "p", "completion": "c"}), "sft", system_prompt="Be safe.")
    assert forced.rows[0]["prompt"] == [{"role": "system", "content": "Be safe."}, user("p")]


def test_json_messages_in_csv_cells_and_full_conversation_chosen() -> None:
    chosen = json.dumps([user("q"), bot("good")])  # UltraFeedback-style: chosen repeats the prompt
    result = to_canonical(recs({"prompt": "q", "chosen": chosen, "rejected": [user("q"), bot("bad")]}), "preference")
    assert result.rows[0]["chosen"] == [bot("good")] and result.rows[0]["rejected"] == [bot("bad")]
    with pytest.raises(UserError, match="does not continue the prompt"):
        to_canonical(recs({"prompt": "q", "chosen": [user("other"), bot("a")], "rejected": "b"}), "preference")


def test_canonical_rows_round_trip_keeping_task_and_meta() -> None:
    row = {
        "id": "summarization-7",
        "task": "summarization",
        "prompt": [user("Summarize the note.")],
        "chosen": [bot("Faithful.")],
        "rejected": [bot("Unfaithful.")],
        "meta": {"source": "the note", "key_facts": ["left knee"]},
    }
    out = to_canonical(recs(row), "preference").rows[0]
    assert out == row  # id, task and meta exactly as written: the report grades against meta
    assert out.source == "mem.jsonl:1"  # the location is an attribute, never a key
    mapped = to_canonical(recs(row | {"question": "Summarize the note."}), "preference", columns={"prompt": "question"})
    assert mapped.rows[0]["id"] == "summarization-0"  # a mapped row is the user's own format: converted
    assert mapped.rows[0]["meta"] == {"source": "the note", "key_facts": ["left knee"], "location": "mem.jsonl:1"}


def test_shapes_table_covers_both_kinds() -> None:
    assert {n for n, s in SHAPES.items() if s.kind == "preference"} == {
        "sharegpt_preference",
        "explicit",
        "scored",
        "implicit",
    }
    assert {n for n, s in SHAPES.items() if s.kind == "sft"} == {
        "messages",
        "sharegpt",
        "alpaca",
        "prompt_completion",
        "chosen_as_completion",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prompt", "bad column mapping 'prompt'"),
        ("prompt=", "bad column mapping 'prompt='"),
        ("prompt=a,,chosen=b", "bad column mapping ''"),
        ("prompt=a,prompt=b", "column 'prompt' is mapped twice"),
        ("question=prompt", "cannot map column 'question'"),
    ],
)
def test_parse_columns_arg_errors(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_columns_arg(text)


def test_parse_columns_arg() -> None:
    assert parse_columns_arg("prompt=question,chosen=good_answer") == {"prompt": "question", "chosen": "good_answer"}
