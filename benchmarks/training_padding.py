"""Padding in the DAG's training batches, and what padding-free training would cost instead.

    python benchmarks/training_padding.py [--results results] [--out results/benchmarks/training_padding.json]
                                          [--methods rt,srg] [--time-steps 0] [--threads 2]

For each method's training file, the trainer is built exactly as the DAG builds it
(``srg.training.build_trainer`` with the method's config from ``config/default.yaml``), and its own
dataloader (TRL's collator, the configured sampler) is walked once: per step, real tokens, padded
tokens and the padding fraction; for comparison the same under a random sampler (no length grouping).
With ``--time-steps K`` it also times K optimizer steps padded (as the DAG trains) and K steps with
TRL's ``padding_free=True`` (one flattened row per batch; transformers builds the block-diagonal
mask from the position ids under SDPA), and checks that both losses cover the same completion tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from training_step import BASE_MODEL, add_common_args, method_data, run_steps  # noqa: E402


def walk(trainer) -> dict:
    """Real and padded token counts over one epoch of the trainer's dataloader."""
    real = padded = loss_tokens = 0
    steps = []
    for batch in trainer.get_train_dataloader():
        ids = batch["input_ids"]
        n_real = int(batch["attention_mask"].sum()) if "attention_mask" in batch else int(ids.numel())
        real += n_real
        padded += int(ids.numel())
        loss_tokens += int((batch["labels"] != -100).sum())
        steps.append(round(1 - n_real / ids.numel(), 4))
    return {
        "steps": len(steps),
        "real_tokens": real,
        "tokens_in_batches": padded,
        "padding_fraction": round(1 - real / padded, 4) if padded else 0.0,
        "loss_tokens": loss_tokens,
        "padding_fraction_per_step": steps,
    }


def time_steps(trainer, k: int) -> float:
    """Seconds per optimizer step over k steps of the trainer's own loop (after one untimed step)."""
    return run_steps(trainer, k)[0]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--time-steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)

    import torch

    from srg import io
    from srg.config import load
    from srg.training import TrainConfig, build_trainer

    torch.set_num_threads(a.threads)
    cfg = load(a.config)
    results = Path(a.results)
    base = BASE_MODEL
    out: dict = {"config": a.config, "threads": a.threads, "methods": {}}
    for method in a.methods.split(","):
        data, fields = method_data(cfg, results, method)
        res: dict = {"train_jsonl": str(data)}
        with tempfile.TemporaryDirectory() as tmp:
            for name, extra in (("as_trained", {}), ("random_sampler", {"train_sampling_strategy": "random"})):
                trainer, _, _ = build_trainer(data, base, tmp, TrainConfig(method=method, **{**fields, **extra}))
                res[name] = walk(trainer)
            if a.time_steps:
                trainer, _, _ = build_trainer(data, base, tmp, TrainConfig(method=method, **fields))
                res["padded_s_per_step"] = round(time_steps(trainer, a.time_steps), 3)
                trainer, _, _ = build_trainer(data, base, tmp, TrainConfig(method=method, **fields))
                trainer.args.padding_free = True
                trainer.data_collator.padding_free = True
                res["padding_free"] = walk(trainer)
                res["padding_free_s_per_step"] = round(time_steps(trainer, a.time_steps), 3)
                res["time_steps"] = a.time_steps
        out["methods"][method] = res
        print(
            f"[bench] {method}: padding {res['as_trained']['padding_fraction']:.1%} as trained, "
            f"{res['random_sampler']['padding_fraction']:.1%} with a random sampler"
            + (
                f"; s/step padded {res['padded_s_per_step']} vs padding-free {res['padding_free_s_per_step']}"
                if a.time_steps
                else ""
            ),
            flush=True,
        )
    io.write_json(a.out or results / "benchmarks" / "training_padding.json", out)
    print(json.dumps({m: {k: v for k, v in r.items() if not isinstance(v, dict)} for m, r in out["methods"].items()}))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
