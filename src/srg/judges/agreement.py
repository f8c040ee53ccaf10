"""Agreement between two judges on the same responses: raw agreement and Cohen's kappa.

Rows are judgement records (``prompt_id``, ``sample``, and a boolean label such as ``unsafe``),
joined on (prompt_id, sample). Cohen's kappa = (p_o - p_e) / (1 - p_e). Degenerate case: when
both judges give every response the same single class, p_e = 1 and kappa is undefined; it is
reported as NaN with ``degenerate: true`` (as sklearn does), never as 0 or 1.

CLI: ``python -m srg.judges.agreement --out agreement.csv --pair LABEL A.jsonl B.jsonl [--pair ...]``
writes one row per pair (LABEL is free text, e.g. ``rt/pasttense/sample``).
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Iterable, Sequence

Key = tuple[str, int]


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa of two binary label lists (``sklearn.metrics.cohen_kappa_score``); NaN when
    undefined (no items, or p_e = 1: both judges give every response one and the same class)."""
    import warnings

    from sklearn.metrics import cohen_kappa_score

    if len(a) != len(b):
        raise ValueError(f"label lists differ in length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        return math.nan
    with warnings.catch_warnings():  # p_e = 1: sklearn warns and returns nan
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score([bool(x) for x in a], [bool(y) for y in b], labels=[False, True]))


def _index(rows: Iterable[dict], label: str, which: str) -> dict[Key, bool]:
    out: dict[Key, bool] = {}
    for r in rows:
        key = (str(r["prompt_id"]), int(r["sample"]))
        if key in out:
            raise ValueError(f"judge {which}: duplicate verdict for {key}")
        out[key] = bool(r[label])
    return out


def agreement(rows_a: Iterable[dict], rows_b: Iterable[dict], label: str = "unsafe") -> dict:
    """{n, agreement, kappa, rate_a, rate_b, degenerate} over the responses both judges labelled.

    Both row lists must cover the same (prompt_id, sample) keys (they judged one generation file).
    """
    a, b = _index(rows_a, label, "A"), _index(rows_b, label, "B")
    if a.keys() != b.keys():
        only_a, only_b = sorted(a.keys() - b.keys())[:3], sorted(b.keys() - a.keys())[:3]
        raise ValueError(f"the judges labelled different responses (only A: {only_a}, only B: {only_b})")
    keys = sorted(a)
    la, lb = [a[k] for k in keys], [b[k] for k in keys]
    n = len(keys)
    kappa = cohen_kappa(la, lb)
    return {
        "n": n,
        "agreement": sum(x == y for x, y in zip(la, lb)) / n if n else math.nan,
        "kappa": kappa,
        "rate_a": sum(la) / n if n else math.nan,
        "rate_b": sum(lb) / n if n else math.nan,
        "degenerate": n == 0 or math.isnan(kappa),
    }


def main(argv: list[str] | None = None) -> int:
    from srg.io import read_jsonl

    ap = argparse.ArgumentParser(prog="python -m srg.judges.agreement", description=__doc__.splitlines()[0])
    ap.add_argument("--pair", nargs=3, action="append", required=True, metavar=("LABEL", "A", "B"))
    ap.add_argument("--label", default="unsafe", help="boolean verdict field compared (default: unsafe)")
    ap.add_argument("--out", required=True, help="CSV path")
    a = ap.parse_args(argv)
    rows = []
    for name, path_a, path_b in a.pair:
        rows.append(
            {
                "pair": name,
                "judge_a": path_a,
                "judge_b": path_b,
                "label": a.label,
                **agreement(read_jsonl(path_a), read_jsonl(path_b), a.label),
            }
        )
    with open(a.out, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(f"{r['pair']}: n={r['n']} agreement={r['agreement']:.3f} kappa={r['kappa']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
