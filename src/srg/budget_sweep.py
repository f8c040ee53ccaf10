"""The reasoning budget, chosen on the dev split (README "Reasoning budget").

Greedy decoding is a prefix of itself: a block the model closes after t reasoning tokens closes
under every budget >= t, and never under a smaller one. One budgeted greedy run per trained
reasoning model on the dev split at a generous cap therefore gives the whole closure curve
(model-closed share vs reasoning budget). The chosen budget is the smallest grid point at which
every (model, dev set) closes at least ``target``; if none does, the smallest one within
``plateau`` of every curve's value at the cap (``reached_target`` false). Not part of the DAG (a hand-run choice, like ``srg.dev_sweep``); the chosen
value goes into config/default.yaml (``srg.max_new_tokens`` = budget + the answer budget) with
the output file beside it as the evidence.

    python -m srg.budget_sweep --results results --models srg srg_seed1 --cap 320 \\
        --out results/dev/reasoning_budget.json
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

DEV_SETS = ("dev_harmful", "dev_benign", "dev_overrefusal")


def closure_curve(closed_at: Sequence[int | None], grid: Sequence[int]) -> dict[int, float]:
    """Share of outputs the model closes within each budget: ``closed_at`` holds the reasoning
    tokens of a model-closed block, None for one it did not close within the cap."""
    if not closed_at:
        raise ValueError("closure curve of no outputs")
    return {b: sum(t is not None and t <= b for t in closed_at) / len(closed_at) for b in grid}


def choose_budget(
    curves: dict[str, dict[str, dict[int, float]]], target: float, plateau: float = 0.02
) -> tuple[int, bool]:
    """(budget, reached): the smallest budget at which every (model, set) curve reaches
    ``target``; if none does, the smallest budget within ``plateau`` of every curve's value at the
    largest budget (more tokens would close almost nothing more), with ``reached`` False."""
    flat = [c for sets in curves.values() for c in sets.values()]
    grid = sorted({b for c in flat for b in c})
    for b in grid:
        if all(c[b] >= target for c in flat):
            return b, True
    top = grid[-1]
    return next(b for b in grid if all(c[b] >= c[top] - plateau for c in flat)), False


def closed_lengths(model_dir: str, sets: dict[str, list[dict]], cap: int, **backend_kw) -> dict[str, list]:
    """Per dev set, the reasoning tokens of each greedy block the model closed within ``cap``."""
    from srg.backends import Request, SamplingParams
    from srg.backends.hf import HFBackend
    from srg.generation import ReasoningBudget, generate_budgeted

    backend = HFBackend(model_dir, **backend_kw)
    budget = ReasoningBudget(reasoning_tokens=cap, answer_tokens=1)
    out = {}
    for name, rows in sets.items():
        reqs = [Request(r["prompt"], (r.get("meta") or {}).get("system")) for r in rows]
        comps = generate_budgeted(backend, reqs, SamplingParams(n=1, greedy=True, max_new_tokens=cap), budget)
        out[name] = [c[0].reasoning_tokens if c[0].closed_by == "model" else None for c in comps]
    return out


def main(argv: list[str] | None = None) -> None:
    from srg.io import read_jsonl, write_json
    from srg.models import resolve_dtype

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--models", nargs="+", required=True, help="trained reasoning models under results/models")
    ap.add_argument("--cap", type=int, default=320, help="reasoning tokens of the one greedy run")
    ap.add_argument("--grid", type=int, nargs="+", default=[128, 168, 192, 224, 256, 288, 320])
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--plateau", type=float, default=0.02)
    ap.add_argument("--dtype", default="bfloat16_if_native")
    ap.add_argument("--max-prompt-tokens", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if max(a.grid) > a.cap:
        raise SystemExit(f"--grid {a.grid} goes past --cap {a.cap}: the curve is only known up to the cap")
    results = Path(a.results)
    sets = {s: read_jsonl(results / "prompts" / f"{s}.jsonl") for s in DEV_SETS}
    lengths, curves = {}, {}
    for m in a.models:
        lengths[m] = closed_lengths(
            str(results / "models" / m / "merged"),
            sets,
            a.cap,
            dtype=resolve_dtype(a.dtype),
            batch_size=32,
            max_prompt_tokens=a.max_prompt_tokens,
            threads=a.threads,
        )
        curves[m] = {s: closure_curve(v, a.grid) for s, v in lengths[m].items()}
        print(m, {s: c for s, c in curves[m].items()}, flush=True)
    chosen, reached = choose_budget(curves, a.target, a.plateau)
    write_json(
        a.out,
        {
            "split": "dev",
            "cap": a.cap,
            "grid": a.grid,
            "target": a.target,
            "plateau": a.plateau,
            "chosen_reasoning_tokens": chosen,
            "reached_target": reached,
            "curves": {m: {s: {str(b): v for b, v in c.items()} for s, c in cs.items()} for m, cs in curves.items()},
            "closed_at": lengths,
        },
    )
    print("chosen reasoning budget:", chosen, "target reached" if reached else "target not reached (plateau)")


if __name__ == "__main__":
    main()
