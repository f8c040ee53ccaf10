"""Training knobs chosen on the dev split: train a model (RT, or SRG on its synthesised data) at
each (learning rate, epochs) and run the dev check on each (refusal vs benign non-refusal vs
over-refusal, and for SRG the share of closed reasoning blocks: the frontier). Not part of the DAG
(each point is one training); the chosen point goes into config/default.yaml by hand, with the
frontier file beside it as the evidence (README "Dev split").

    python -m srg.dev_sweep --results results --out results/dev/rt_frontier.json \\
        --grid '[[1e-3, 1], [3e-4, 1], [1e-4, 2]]'
    python -m srg.dev_sweep --method srg --max-new-tokens 192 --out results/dev/srg_frontier.json \\
        --grid '[[3e-4, 2], [1e-3, 2]]'
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from srg import training
from srg.backends import Request, SamplingParams
from srg.backends.hf import HFBackend
from srg.dev_check import dev_check
from srg.io import read_jsonl, write_json
from srg.judges import KeywordJudge
from srg.reasoning import ReasoningFormat

DEV_SETS = ("dev_harmful", "dev_benign", "dev_overrefusal")


def sweep_point(
    results: Path,
    base_model: str,
    resources: str,
    lr: float,
    epochs: int,
    base_cfg: dict,
    *,
    method: str = "rt",
    max_new_tokens: int = 24,
    fmt: ReasoningFormat | None = None,
) -> dict:
    """Train ``method`` on ``results/data/<method>_train.jsonl`` at (lr, epochs); dev-check it."""
    sets = {s: read_jsonl(results / "prompts" / f"{s}.jsonl") for s in DEV_SETS}
    base = {}
    for s in DEV_SETS:
        by_id = {g["prompt_id"]: g["response"] for g in read_jsonl(results / "generations/base" / f"{s}.greedy.jsonl")}
        base[s] = [by_id[r["id"]] for r in sets[s]]
    with tempfile.TemporaryDirectory() as out:
        cfg = training.TrainConfig.from_dict(
            {**base_cfg, "method": method, "learning_rate": lr, "num_train_epochs": epochs}
        )
        log = training.train(str(results / f"data/{method}_train.jsonl"), base_model, out, cfg)
        backend = HFBackend(str(Path(out) / "merged"), dtype="bfloat16", batch_size=32)
        flat = [(s, r) for s in DEV_SETS for r in sets[s]]
        outs = backend.generate(
            [Request(r["prompt"]) for _, r in flat], SamplingParams(n=1, greedy=True, max_new_tokens=max_new_tokens)
        )
    texts = {s: [] for s in DEV_SETS}
    tokens = {s: [] for s in DEV_SETS}
    for (s, _), o in zip(flat, outs):
        texts[s].append(o[0].text)
        tokens[s].append(o[0].n_tokens)
    check = dev_check(texts, base, KeywordJudge(resources).is_refusal, fmt=fmt, n_tokens=tokens, n_bootstrap=500)
    examples = {s: [t[:240] for t in texts[s][:3]] for s in DEV_SETS}  # truncated, for diagnosis
    return {
        "method": method,
        "max_new_tokens": max_new_tokens,
        "learning_rate": lr,
        "num_train_epochs": epochs,
        "final_loss": log["final_loss"],
        "steps": log["global_steps"],
        **check,
        "examples": examples,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="srg.dev_sweep", description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--base-model", default="resources/models/smollm2-135m-instruct")
    ap.add_argument("--resources", default="resources")
    ap.add_argument("--method", default="rt", help="rt, srg or an ablation (its data/<method>_train.jsonl)")
    ap.add_argument("--max-new-tokens", type=int, default=24, help="the dev check's greedy token budget")
    ap.add_argument("--reasoning", default='{"open_tag": "<reasoning>", "close_tag": "</reasoning>"}')
    ap.add_argument("--grid", required=True, help="JSON list of [learning_rate, epochs]")
    ap.add_argument("--append", action="store_true", help="add to the points already in --out")
    ap.add_argument("--train-config", default='{"lora": true, "per_device_train_batch_size": 4}')
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    points = json.loads(Path(a.out).read_text())["points"] if a.append and Path(a.out).exists() else []
    fmt = None if a.method == "rt" else ReasoningFormat(**json.loads(a.reasoning))
    for lr, epochs in json.loads(a.grid):
        p = sweep_point(
            Path(a.results),
            a.base_model,
            a.resources,
            lr,
            epochs,
            json.loads(a.train_config),
            method=a.method,
            max_new_tokens=a.max_new_tokens,
            fmt=fmt,
        )
        points.append(p)
        print(
            json.dumps(
                {k: p[k] for k in ("learning_rate", "num_train_epochs")}
                | {s: p["sets"][s]["rate"] for s in DEV_SETS}
                | {f"{s}_closed": p["sets"][s].get("closed_rate") for s in DEV_SETS}
            ),
            flush=True,
        )
        write_json(a.out, {"split": "dev", "points": points})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
