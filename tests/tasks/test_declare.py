"""Tasks declared in a recipe without code: each type scores by its declaration; bad declarations fail at load with
the recipe's line."""

from __future__ import annotations

import pytest

from align.config import load_recipe
from align.errors import UserError
from align.tasks import registry, task_for
from align.tasks.base import Scored


def _row(task: str, meta: dict, completion: str = "x") -> dict:
    return {
        "id": f"{task}-0",
        "task": task,
        "prompt": [{"role": "user", "content": "q"}],
        "completion": [{"role": "assistant", "content": completion}],
        "meta": meta,
    }


def test_a_declared_label_set_with_synonyms_and_an_ordinal_scale() -> None:
    tasks = registry(
        {
            "lab_flag": {
                "type": "label",
                "labels": ["critical", "abnormal", "normal"],  # most severe first
                "gold": "flag",
                "synonyms": {"critical": ["panic value"]},
                "ordinal": True,
                "answer_prefix": "Flag: ",
            }
        }
    )
    task = task_for("lab_flag", tasks)
    rows = [_row("lab_flag", {"flag": g}) for g in ("Critical", "abnormal", "normal", "normal")]
    answers = ["Flag: panic value", "Flag: normal, nothing to do", "It looks abnormal", "no idea"]
    scores = task.score(answers, rows)
    assert scores.per_example["accuracy"] == [1, 0, 0, 0]  # the gold "Critical" matches its label case-insensitively
    assert scores.per_example["under_call_rate"] == [0, 1, 0, 0]  # normal for an abnormal result
    assert scores.per_example["over_call_rate"] == [0, 0, 1, 0]  # abnormal for a normal one
    assert scores.per_example["unparsed_rate"] == [0, 0, 0, 1]
    assert task.candidates(rows[0]) == ["Flag: critical", "Flag: abnormal", "Flag: normal"]
    assert [task.parse(c, rows[0]) for c in task.candidates(rows[0])] == ["critical", "abnormal", "normal"]
    assert task.pair_score("Flag: normal", rows[1]) == Scored(-2.0, "under_call", "normal")  # default: 2 per step under


def test_a_declared_cost_matrix_weighs_the_errors() -> None:
    costs = [[0, 5], [1, 0]]  # missing a positive costs 5, a false alarm 1
    task = task_for("sepsis", registry({"sepsis": {"type": "label", "labels": ["yes", "no"], "costs": costs}}))
    rows = [_row("sepsis", {"label": g}) for g in ("yes", "no", "yes")]
    scores = task.score(["Answer: no", "Answer: yes", "?"], rows)
    assert scores.per_example["error_cost"] == [5, 1, 5]  # unparsed: the worst cost there is
    assert task.pair_score("Answer: no", rows[0]) == Scored(-5.0, "wrong", "no")


def test_a_declared_choice_task_with_options_in_a_list_and_the_gold_as_text() -> None:
    task = task_for("quiz", registry({"quiz": {"type": "choice", "options": "choices", "gold": "correct"}}))
    row = _row("quiz", {"choices": '["aspirin", "heparin", "warfarin"]', "correct": "heparin"})  # a CSV cell of JSON
    assert task.gold(row) == "B" and task.candidates(row) == ["Answer: A", "Answer: B", "Answer: C"]
    assert task.score(["Answer: B", "warfarin"], [row, row]).per_example["accuracy"] == [1, 0]
    assert task.chance([row]) == {"accuracy": pytest.approx(1 / 3)}


def test_a_declared_text_task_with_facts_and_a_source() -> None:
    task = task_for("handoff", registry({"handoff": {"type": "text", "facts": "facts", "source": "note"}}))
    row = _row("handoff", {"facts": ["on heparin"], "note": "Patient on heparin 5000 units."}, "On heparin.")
    scores = task.score(["on heparin 5000 units, started warfarin"], [row])
    assert scores.metrics["key_fact_recall"] == 1.0
    assert scores.metrics["unsupported_fact_rate"] == pytest.approx(1 / 3)  # warfarin is not in the note


def test_a_built_in_task_takes_a_scoring_override_without_a_type() -> None:
    tasks = registry({"medqa": {"scoring": "loglik", "max_new_tokens": 8}})
    assert tasks["medqa"].scoring == "loglik" and tasks["medqa"].max_new_tokens == 8
    assert registry()["medqa"].scoring == "generate"  # the built-in definition itself is untouched


@pytest.mark.parametrize(
    ("declaration", "line", "message"),
    [
        ("  x:\n    type: lable\n", 4, "tasks.x.type = 'lable' is not a task type; choose one of label, choice, text"),
        ("  x:\n    labels: [a, b]\n", 3, "tasks.x.type = None is not a task type; set tasks.x.type to one of"),
        (
            "  x:\n    type: label\n    lables: [a, b]\n",
            5,
            "unknown key 'tasks.x.lables' for a label task; did you mean 'labels'?",
        ),
        ("  x:\n    type: label\n    labels: [a]\n", 5, "tasks.x.labels must list at least two labels"),
        ("  x:\n    type: label\n    labels: [a, A]\n", 5, "tasks.x.labels repeats a label"),
        ("  x:\n    type: label\n    labels: [a, b]\n    costs: [[0, 1]]\n", 6, "tasks.x.costs must be a 2 x 2 matrix"),
        ("  x:\n    type: text\n    scoring: loglik\n", 5, "tasks.x.scoring = 'loglik' needs closed answers"),
        ("  x:\n    type: choice\n    labels: [a, b]\n", 5, "unknown key 'tasks.x.labels' for a choice task"),
        (
            "  medqa:\n    options: opts\n",
            4,
            "unknown key 'tasks.medqa.options' for the built-in task 'medqa' without a type",
        ),
        (
            "  x:\n    type: label\n    labels: [a, b]\n    synonyms: {c: [see]}\n",
            6,
            "tasks.x.synonyms names 'c', which is not a label",
        ),
    ],
)
def test_bad_declarations_fail_at_load_with_the_line(tmp_path, declaration, line, message) -> None:
    path = tmp_path / "sft.yaml"
    path.write_text("stage: sft\ntasks:\n" + declaration)
    with pytest.raises(UserError) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}:{line}: {message}"), str(err.value)


def test_declarations_survive_the_saved_recipe(tmp_path) -> None:
    from align.config import dump_recipe

    path = tmp_path / "sft.yaml"
    path.write_text("stage: sft\ntasks:\n  lab_flag: {type: label, labels: [low, high], gold: flag}\n")
    recipe = load_recipe(path)
    assert recipe.tasks == {"lab_flag": {"type": "label", "labels": ["low", "high"], "gold": "flag"}}
    assert "lab_flag:" in dump_recipe(recipe)
