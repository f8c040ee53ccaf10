"""Seconds per SFT step on CPU: TRL's stock step against the suite's (``srg.sft_cpu``).

    python benchmarks/training_step.py [--results results] [--out results/benchmarks/training_step.json]
                                       [--methods rt,srg] [--steps 8] [--repeats 2] [--threads 1]

For each method's training file (written by the DAG), the trainer is built exactly as the DAG
builds it (``srg.training.build_trainer``, the method's config from ``config/default.yaml``), once
with TRL 1.16's stock step (fused chunked LM head over every position, ``sdpa``, frozen weights
cast by autocast at every call) and once with the suite's CPU step. Each runs ``--steps`` optimizer
steps after one untimed step, on the same batches in the same order; the variants alternate
``--repeats`` times so a drift in the machine's speed hits both. Reported: seconds per step, the
speedup, and the training loss of the same steps under each (the same loss up to bf16 rounding).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_steps(trainer, k: int) -> tuple[float, list[float]]:
    """Seconds per optimizer step over k steps (after one untimed step) and the logged losses."""
    from transformers import TrainerCallback

    trainer.args.max_steps = k + 1
    trainer.args.logging_steps = 1
    t: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            t.setdefault("first", time.perf_counter())
            t["last"] = time.perf_counter()

    trainer.add_callback(Clock())
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return (t["last"] - t["first"]) / k, losses


def method_data(cfg: dict, results: Path, method: str) -> tuple[Path, dict]:
    """A method's training file under ``results`` and its ``training`` config section."""
    section = cfg["rt"] if method.startswith("rt") else cfg["srg"]
    return results / "data" / f"{method}_train.jsonl", dict(section["training"])


BASE_MODEL = ROOT / "resources" / "models" / "smollm2-135m-instruct"


def add_common_args(ap: argparse.ArgumentParser) -> None:
    """The arguments the training benchmarks share: where the DAG's files are, which methods."""
    ap.add_argument("--results", default="results")
    ap.add_argument("--config", default=str(ROOT / "config" / "default.yaml"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--methods", default="rt,srg")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)

    import torch

    from srg import io
    from srg.config import load
    from srg.provenance import cpu_model
    from srg.training import TrainConfig, build_trainer

    torch.set_num_threads(a.threads)
    cfg = load(a.config)
    results = Path(a.results)
    out: dict = {"config": a.config, "threads": a.threads, "steps": a.steps, "cpu": cpu_model(), "methods": {}}
    for method in a.methods.split(","):
        data, fields = method_data(cfg, results, method)
        res: dict = {"train_jsonl": str(data), "s_per_step": {"trl_stock": [], "srg_cpu": []}, "losses": {}}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(a.repeats):
                for name, cpu_step in (("trl_stock", False), ("srg_cpu", True)):
                    trainer, _, _ = build_trainer(
                        data, BASE_MODEL, tmp, TrainConfig(method=method, **fields), cpu_step=cpu_step
                    )
                    s, losses = run_steps(trainer, a.steps)
                    res["s_per_step"][name].append(round(s, 3))
                    res["losses"][name] = losses
                    res["bf16"] = bool(trainer.args.bf16)
        stock = statistics.median(res["s_per_step"]["trl_stock"])
        ours = statistics.median(res["s_per_step"]["srg_cpu"])
        res["median_s_per_step"] = {"trl_stock": stock, "srg_cpu": ours}
        res["speedup"] = round(stock / ours, 3)
        pairs = list(zip(res["losses"]["trl_stock"], res["losses"]["srg_cpu"]))
        res["max_abs_loss_diff"] = round(max(abs(x - y) for x, y in pairs), 5)
        out["methods"][method] = res
        print(f"[bench] {method}: {stock:.2f} -> {ours:.2f} s/step ({res['speedup']}x)", flush=True)
    io.write_json(a.out or results / "benchmarks" / "training_step.json", out)
    print(
        json.dumps(
            {
                m: {"median_s_per_step": r["median_s_per_step"], "speedup": r["speedup"]}
                for m, r in out["methods"].items()
            }
        )
    )
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
