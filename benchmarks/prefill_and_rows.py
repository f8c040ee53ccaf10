"""Session 17's CPU knobs, each against the setting it replaced, on the DAG's own prompt files.

    python benchmarks/prefill_and_rows.py [--out results/benchmarks/prefill_and_rows.json]
        [--prompt-dir results/prompts] [--sets jailbreakchat id_eval pasttense base64 codeattack selfcipher]
        [--reasoning-model results/models/srg/merged] [--threads 1]

One process, one thread (a DAG model job's), bf16 where native (the DAG's dtype):

- ``prefill``: greedy decoding of every prompt of ``--sets`` (24 new tokens, the plain models'
  budget) with the ``hf`` backend's prompts prefilled in left-padded batches (before) vs one
  forward per prompt, stacked (``row_prefill``, the CPU default): wall and prefill seconds, and
  the share of outputs that are the same text;
- ``hidden_states``: ``srg.hidden_states.extract_hidden_states`` over ``--hidden-prompts`` of those
  prompts in float32, batches of 16 (the schema's default) vs the model's dtype one prompt per
  forward (the embedded default since session 17), with the median relative difference of the
  states;
- ``rows``: ``generation.batch_size`` 32 vs 64 decode rows, for BoN sampling (n = 8, T 0.7,
  top-p 0.9, 24 tokens) over ``--sample-prompts`` prompts, and for budgeted reasoning (256 + 24
  tokens, greedy) over ``--reasoning-prompts`` dev prompts with ``--reasoning-model`` (a trained
  reasoning model of a full run; default: the base model, whose reasoning ends at EOS or the budget).

Only token counts and timings are written, no prompt or output text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation import (  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
    ROOT,
    add_model_args,
    phase,
    run_environment,
    start_run,
)

ATTACK_SETS = ["jailbreakchat", "id_eval", "pasttense", "base64", "codeattack", "selfcipher"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "prefill_and_rows.json"))
    p.add_argument("--prompt-dir", default=str(ROOT / "results" / "prompts"), help="a full run's prompt sets")
    p.add_argument("--sets", nargs="+", default=ATTACK_SETS)
    p.add_argument("--hidden-prompts", type=int, default=60)
    p.add_argument("--sample-prompts", type=int, default=60)
    p.add_argument("--reasoning-sets", nargs="+", default=["dev_benign", "dev_harmful"])
    p.add_argument("--reasoning-prompts", type=int, default=48)
    p.add_argument("--reasoning-model", default=None, help="a trained reasoning model (merged directory)")
    add_model_args(p, dtype="bfloat16_if_native", threads=1)
    return p.parse_args(argv)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 2)


def main(argv=None) -> dict:
    a = parse_args(argv)
    load_start, t_start, threads, model_dir = start_run(a)

    import numpy as np

    from srg import generation, io, models
    from srg.backends import Request, SamplingParams, hf
    from srg.hidden_states import extract_hidden_states

    dtype = models.resolve_dtype(a.dtype)

    def records(sets):
        missing = [s for s in sets if not (Path(a.prompt_dir) / f"{s}.jsonl").exists()]
        if missing:
            raise SystemExit(f"{a.prompt_dir}: no prompt files for {missing}; run the DAG (make reproduce) first")
        return [r for s in sets for r in io.read_jsonl(Path(a.prompt_dir) / f"{s}.jsonl")]

    recs = records(a.sets)
    reqs = [Request(r["prompt"], (r.get("meta") or {}).get("system")) for r in recs]
    backend = hf.HFBackend(str(model_dir), dtype=dtype, batch_size=32, max_prompt_tokens=a.max_prompt_tokens)
    backend.generate(reqs[:2], SamplingParams(max_new_tokens=4))  # warm-up, untimed
    prompt_tokens = [len(x) for x in backend._encode(reqs, count=False)]
    result: dict = {
        "model": str(model_dir),
        "dtype": str(backend.model.dtype).replace("torch.", ""),
        "threads": threads,
        "sets": a.sets,
        "prompts": len(reqs),
        "prompt_tokens": {"sum": int(sum(prompt_tokens)), "mean": round(float(np.mean(prompt_tokens)), 1)},
    }

    # 1. prefill: padded batches vs one forward per prompt
    real_prefill = hf.HFBackend._prefill
    spent = [0.0]

    def counting(self, rows):
        t0 = time.perf_counter()
        out = real_prefill(self, rows)
        spent[0] += time.perf_counter() - t0
        return out

    hf.HFBackend._prefill = counting
    greedy = SamplingParams(max_new_tokens=24)
    runs, texts = {}, {}
    try:
        for name, rows in (("padded", False), ("per_prompt", True)):
            backend.row_prefill, spent[0] = rows, 0.0
            with phase(f"prefill_{name}", threads):
                outs, wall = timed(lambda: backend.generate(reqs, greedy))
            texts[name] = [o[0].text for o in outs]
            runs[name] = {"wall_s": wall, "prefill_s": round(spent[0], 2)}
    finally:
        hf.HFBackend._prefill = real_prefill
    same = np.mean([x == y for x, y in zip(texts["padded"], texts["per_prompt"])])
    result["prefill"] = {
        **runs,
        "prefill_speedup": round(runs["padded"]["prefill_s"] / runs["per_prompt"]["prefill_s"], 2),
        "wall_speedup": round(runs["padded"]["wall_s"] / runs["per_prompt"]["wall_s"], 2),
        "same_text_share": round(float(same), 3),
    }

    # 2. hidden states: float32 in padded batches of 16 vs the model's dtype one prompt a forward
    hs_recs = recs[: a.hidden_prompts]
    states = {}
    hidden = {}
    for name, dt, bs in (("float32_batch16", "float32", 16), ("model_dtype_batch1", dtype, 1)):
        model = models.load_model(str(model_dir), dt)
        with phase(f"hidden_{name}", threads):
            (last, _), wall = timed(
                lambda: extract_hidden_states(model, backend.tokenizer, hs_recs, bs, "all", a.max_prompt_tokens)
            )
        states[name] = last.astype(np.float32)
        hidden[name] = {"dtype": str(model.dtype).replace("torch.", ""), "batch_size": bs, "wall_s": wall}
    ref = states["float32_batch16"]
    rel = np.abs(states["model_dtype_batch1"] - ref) / (np.abs(ref) + 1e-3)
    result["hidden_states"] = {
        "prompts": len(hs_recs),
        **hidden,
        "speedup": round(hidden["float32_batch16"]["wall_s"] / hidden["model_dtype_batch1"]["wall_s"], 2),
        "median_relative_difference": round(float(np.median(rel)), 4),
    }

    # 3. decode rows: 32 vs 64
    rows: dict = {}
    sample = SamplingParams(n=8, greedy=False, temperature=0.7, top_p=0.9, top_k=0, max_new_tokens=24, seed=a.seed)
    sample_reqs = reqs[: a.sample_prompts]
    backend.row_prefill = True
    for bs in (32, 64):
        backend.batch_size = bs
        with phase(f"sample_rows{bs}", threads):
            outs, wall = timed(lambda: backend.generate(sample_reqs, sample))
        rows.setdefault("bon_sampling", {"prompts": len(sample_reqs), "n": 8})[f"rows_{bs}"] = {
            "wall_s": wall,
            "tokens": int(sum(c.n_tokens for o in outs for c in o)),
        }
    rmodel = a.reasoning_model or str(model_dir)
    rback = hf.HFBackend(rmodel, dtype=dtype, batch_size=32, max_prompt_tokens=a.max_prompt_tokens)
    rrecs = records(a.reasoning_sets)[: a.reasoning_prompts]
    rreqs = [Request(r["prompt"], (r.get("meta") or {}).get("system")) for r in rrecs]
    budget = generation.ReasoningBudget(reasoning_tokens=256, answer_tokens=24)
    for bs in (32, 64):
        rback.batch_size = bs
        with phase(f"reasoning_rows{bs}", threads):
            outs, wall = timed(
                lambda: generation.generate_budgeted(rback, rreqs, SamplingParams(max_new_tokens=1), budget)
            )
        rows.setdefault("budgeted_reasoning", {"model": rmodel, "prompts": len(rreqs)})[f"rows_{bs}"] = {
            "wall_s": wall,
            "tokens": int(sum(c.n_tokens for o in outs for c in o)),
        }
    for v in rows.values():
        v["speedup_64_over_32"] = round(v["rows_32"]["wall_s"] / v["rows_64"]["wall_s"], 2)
    result["rows"] = rows
    result["environment"] = run_environment(load_start, t_start)
    io.write_json(a.out, result)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
