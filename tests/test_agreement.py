"""Cohen's kappa and judge agreement: hand-computed values, sklearn, degenerate cases, CLI."""

from __future__ import annotations

import csv
import json
import math
import random

import pytest
from sklearn.metrics import cohen_kappa_score

from srg.judges.agreement import agreement, cohen_kappa, main


def _rows(labels, label="unsafe"):
    return [{"prompt_id": f"p{i // 2}", "sample": i % 2, label: v} for i, v in enumerate(labels)]


def test_hand_computed():
    # 10 items: both 1 on 4, both 0 on 3, A=1/B=0 on 2, A=0/B=1 on 1
    a = [1] * 4 + [0] * 3 + [1] * 2 + [0]
    b = [1] * 4 + [0] * 3 + [0] * 2 + [1]
    # p_o = 0.7; p_a = 0.6, p_b = 0.5; p_e = 0.3 + 0.2 = 0.5; kappa = 0.2 / 0.5 = 0.4
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    r = agreement(_rows(a), _rows(b))
    assert r["n"] == 10 and r["agreement"] == pytest.approx(0.7) and r["kappa"] == pytest.approx(0.4)
    assert r["rate_a"] == pytest.approx(0.6) and r["rate_b"] == pytest.approx(0.5) and not r["degenerate"]


def test_perfect_and_opposite():
    a = [True, False, True, False]
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(a, [not x for x in a]) == pytest.approx(-1.0)


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn(seed):
    rng = random.Random(seed)
    a = [rng.random() < 0.3 for _ in range(200)]
    b = [x if rng.random() < 0.8 else not x for x in a]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_degenerate_cases():
    # both judges put everything in one class: p_e = 1, kappa undefined (NaN), agreement 1
    r = agreement(_rows([True] * 6), _rows([True] * 6))
    assert r["agreement"] == 1.0 and math.isnan(r["kappa"]) and r["degenerate"]
    # one judge constant, the other not: defined, and 0 (no agreement beyond chance)
    a, b = [False] * 6, [False] * 5 + [True]
    assert cohen_kappa(a, b) == pytest.approx(0.0)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    # nothing to compare
    r = agreement([], [])
    assert r["n"] == 0 and math.isnan(r["kappa"]) and math.isnan(r["agreement"]) and r["degenerate"]


def test_join_on_keys_not_order():
    a = _rows([True, False, True, False])
    b = list(reversed(_rows([True, False, False, False])))
    assert agreement(a, b)["agreement"] == pytest.approx(0.75)


def test_mismatched_or_duplicate_keys():
    with pytest.raises(ValueError, match="different responses"):
        agreement(_rows([True, False]), _rows([True, False, True]))
    with pytest.raises(ValueError, match="duplicate"):
        agreement(_rows([True]) * 2, _rows([True]))
    with pytest.raises(ValueError, match="length"):
        cohen_kappa([True], [True, False])


def test_other_label_and_cli(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in _rows([1, 1, 0, 0], "refusal")))
    b.write_text("".join(json.dumps(r) + "\n" for r in _rows([1, 0, 0, 0], "refusal")))
    out = tmp_path / "agreement.csv"
    assert (
        main(
            [
                "--pair",
                "rt/toy/sample",
                str(a),
                str(b),
                "--pair",
                "same",
                str(a),
                str(a),
                "--label",
                "refusal",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(out.open()))
    assert [r["pair"] for r in rows] == ["rt/toy/sample", "same"]
    assert float(rows[0]["agreement"]) == pytest.approx(0.75) and float(rows[1]["kappa"]) == pytest.approx(1.0)
    assert float(rows[0]["kappa"]) == pytest.approx(cohen_kappa_score([1, 1, 0, 0], [1, 0, 0, 0]))
