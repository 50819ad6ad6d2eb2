"""Mixing by weight, and carving an eval split from train (`data.test_split_size`: a fraction or a row count)."""

from __future__ import annotations

import pytest

from align.data.mixing import mix, split_rows
from align.errors import UserError

ROWS = [{"id": str(i), "prompt": [{"role": "user", "content": f"p{i // 2}"}]} for i in range(20)]  # 10 prompts x 2


def ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


def test_mix_weights_are_deterministic() -> None:
    a = [{"id": f"a{i}"} for i in range(10)]
    b = [{"id": f"b{i}"} for i in range(4)]
    mixed = mix([(a, 0.5), (b, 2.0)], seed=0)
    assert len(mixed) == 5 + 8
    assert sum(i.startswith("a") for i in ids(mixed)) == 5 and len({i for i in ids(mixed) if i.startswith("a")}) == 5
    assert sorted(i for i in ids(mixed) if i.startswith("b")) == sorted([f"b{i}" for i in range(4)] * 2)
    assert mix([(a, 0.5), (b, 2.0)], seed=0) == mixed
    assert mix([(a, 0.5), (b, 2.0)], seed=1) != mixed
    assert sorted(ids(mix([(a, 1.0)], seed=3))) == sorted(ids(a))
    with pytest.raises(UserError) as err:
        mix([(a, -1.0)], seed=0)
    assert str(err.value) == "mixing weight must be a number >= 0, got -1.0; use e.g. 1.0 (all rows once)"


def test_a_fraction_splits_by_prompt_and_keeps_row_order() -> None:
    train, evals = split_rows(ROWS, 0.2, seed=0)
    assert len(evals) == 4 and len(train) == 16
    assert not {r["prompt"][0]["content"] for r in train} & {r["prompt"][0]["content"] for r in evals}
    assert split_rows(ROWS, 0.2, seed=0) == (train, evals)
    assert ids(train) == sorted(ids(train), key=int) and ids(evals) == sorted(ids(evals), key=int)


@pytest.mark.parametrize("size", [4, 4.0])  # a YAML `4` may arrive as an int or, through a float field, as 4.0
def test_a_row_count_moves_that_many_rows(size: float) -> None:
    train, evals = split_rows(ROWS, size, seed=0)
    assert len(evals) == 4 and len(train) == 16
    assert not {r["prompt"][0]["content"] for r in train} & {r["prompt"][0]["content"] for r in evals}
    assert split_rows(ROWS, 4, seed=0) == (train, evals)


def test_a_count_rounds_up_to_whole_prompt_groups_and_a_fraction_is_of_rows() -> None:
    assert len(split_rows(ROWS, 3, seed=1)[1]) == 4  # 3 rows need 2 groups of 2
    assert len(split_rows(ROWS, 1, seed=1)[1]) == 2
    assert len(split_rows(ROWS, 0.25, seed=1)[1]) == 6  # round(0.25 * 20) = 5 rows -> 3 groups


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (
            1.5,
            "data.test_split_size=1.5 is neither a fraction in (0, 1) nor a whole number of rows >= 1; "
            "use e.g. 0.1 (a tenth of the rows) or 3 (three rows)",
        ),
        (
            -0.1,
            "data.test_split_size=-0.1 is neither a fraction in (0, 1) nor a whole number of rows >= 1; "
            "use e.g. 0.1 (a tenth of the rows) or 3 (three rows)",
        ),
        (
            0,
            "data.test_split_size=0 is neither a fraction in (0, 1) nor a whole number of rows >= 1; "
            "use e.g. 0.1 (a tenth of the rows) or 3 (three rows)",
        ),
        (
            20,
            "data.test_split_size=20 leaves no training rows (20 rows, 10 unique prompts); "
            "use a smaller test_split_size or give a separate data.eval file",
        ),
        (
            19,
            "data.test_split_size=19 leaves no training rows (20 rows, 10 unique prompts); "
            "use a smaller test_split_size or give a separate data.eval file",
        ),
        (
            0.99,
            "data.test_split_size=0.99 leaves no training rows (20 rows, 10 unique prompts); "
            "use a smaller test_split_size or give a separate data.eval file",
        ),
        (True, "data.test_split_size must be a number, got True; use e.g. 0.1 (a tenth of the rows) or 3 (three rows)"),
        ("3", "data.test_split_size must be a number, got '3'; use e.g. 0.1 (a tenth of the rows) or 3 (three rows)"),
    ],
)
def test_bad_sizes_are_one_line(size: object, message: str) -> None:
    with pytest.raises(UserError) as err:
        split_rows(ROWS, size, seed=0)  # type: ignore[arg-type]
    assert str(err.value) == message
