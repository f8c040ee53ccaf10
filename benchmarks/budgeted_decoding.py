"""Budgeted reasoning decoding (what every reasoning-model generation job runs) three ways.

    python benchmarks/budgeted_decoding.py [--out results/benchmarks/budgeted_decoding.json]
        [--threads 1] [--prompts 40] [--reasoning-tokens 256] [--answer-tokens 24] [--n 1]

On the same prompts, model object, dtype and torch threads:

- ``one_pass``: ``HFBackend.generate_budgeted``, what the DAG runs: continuous batching, the
  answer prompt fed in place after the reasoning (each prompt prefilled once);
- ``two_calls``: ``srg.generation.generate_budgeted_two_calls`` with the same backend: a reasoning
  call, then an answer call that prefills prompt + reasoning again (every other backend's path,
  and the DAG's own before session 14);
- ``hf_generate``: what a user would write with HF alone (stock ``sdpa`` attention and
  ``DynamicCache``): ``model.generate`` on length-sorted,
  left-padded batches of ``--batch-size`` rows, the reasoning stopped by ``stop_strings`` at the
  closing tag, then ``model.generate`` on the re-encoded answer prompts.

Greedy by default (the SRG models' evaluation); ``--n 8 --temperature 0.7 --top-p 0.9`` is the
SRG Best-of-N shape. The base model writes no closing tag: its reasoning ends at EOS or the
budget, so the row lengths spread as a reasoning model's do. Reported: generated tokens, wall
seconds, tokens per second and the speedups of ``one_pass`` over the other two; and whether
``one_pass`` and ``two_calls`` gave the same outputs (greedy: they should, up to float order).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation import (  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
    ROOT,
    add_model_args,
    batches_like_backend,
    benign_prompts,
    phase,
    rate,
    run_environment,
    start_run,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "budgeted_decoding.json"))
    p.add_argument("--prompts", type=int, default=40, help="two DAG eval sets of 20 prompts")
    p.add_argument("--reasoning-tokens", type=int, default=256, help="srg.reasoning_tokens")
    p.add_argument("--answer-tokens", type=int, default=24, help="generation.max_new_tokens")
    p.add_argument("--n", type=int, default=1, help="samples per prompt (1: greedy)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--skip-hf", action="store_true", help="leave out the HF generate baseline")
    add_model_args(p, dtype="float32", threads=1)  # the DAG gives a model job 1 thread
    return p.parse_args(argv)


def hf_generate_two_calls(backend, reqs, params, budget, seed: int) -> dict:
    """Reasoning then answer with ``model.generate`` on static length buckets."""
    from dataclasses import replace

    import torch

    from srg.models import left_pad

    model, tok = backend.model, backend.tokenizer
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    kw = {"pad_token_id": tok.pad_token_id}
    if params.greedy:
        kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)

    def run(encoded, max_new, n, stop):
        texts, tokens = [], 0
        for b, batch in enumerate(batches_like_backend(encoded, max(1, backend.batch_size // n), backend.bucket_ratio)):
            torch.manual_seed(seed * 1_000_003 + b)
            ids, mask = left_pad(batch, tok.pad_token_id)
            extra = {"stop_strings": list(stop), "tokenizer": tok} if stop else {}
            if n > 1:
                extra["num_return_sequences"] = n
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, **kw, **extra)
            for row in out[:, ids.shape[1] :].tolist():
                real = next((j for j, t in enumerate(row) if t in eos_ids), len(row))
                tokens += real
                texts.append(tok.decode(row[:real], skip_special_tokens=True).split(budget.close_tag)[0])
        return texts, tokens

    t0 = time.perf_counter()
    with torch.inference_mode():
        firsts = [replace(r, prefill=r.prefill + budget.opening) for r in reqs]
        reasoning, t1 = run(
            backend._encode(firsts, count=False), budget.reasoning_tokens, params.n, (budget.close_tag,)
        )
        per_prompt = [r for r in reqs for _ in range(params.n)]
        answers = [replace(r, prefill=r.prefill + budget.answer_prefill(t)) for r, t in zip(per_prompt, reasoning)]
        _, t2 = run(backend._encode(answers, count=False), budget.answer_tokens, 1, ())
    return {"tokens": t1 + t2, "wall_s": time.perf_counter() - t0}


def main(argv=None) -> dict:
    a = parse_args(argv)
    load_start, t_start, threads, model_dir = start_run(a)
    resources = Path(a.resources)

    from srg import generation, io
    from srg.backends import Request, SamplingParams
    from srg.backends.hf import HFBackend

    reqs = [Request(t) for t in benign_prompts(resources, a.prompts, a.seed)]
    backend = HFBackend(str(model_dir), dtype=a.dtype, batch_size=a.batch_size, max_prompt_tokens=a.max_prompt_tokens)
    budget = generation.ReasoningBudget(reasoning_tokens=a.reasoning_tokens, answer_tokens=a.answer_tokens)
    greedy = a.n == 1
    params = SamplingParams(
        n=a.n, greedy=greedy, temperature=a.temperature, top_p=a.top_p, top_k=0, max_new_tokens=1, seed=a.seed
    )
    backend.generate(reqs[:2], SamplingParams(max_new_tokens=4))  # warm-up, untimed
    runs, outputs = {}, {}
    ways = {"one_pass": backend.generate_budgeted, "two_calls": generation.generate_budgeted_two_calls}
    for name, fn in ways.items():
        with phase(name, threads):
            t0 = time.perf_counter()
            outs = fn(reqs, params, budget) if name == "one_pass" else fn(backend, reqs, params, budget)
            wall = time.perf_counter() - t0
        flat = [c for cs in outs for c in cs]
        outputs[name] = [(c.text, c.closed_by) for c in flat]
        tokens = sum(c.n_tokens for c in flat)
        runs[name] = {
            "tokens": tokens,
            "wall_s": round(wall, 2),
            "tokens_per_s": rate(tokens, wall),
            "closed_by": {k: sum(c.closed_by == k for c in flat) for k in generation.CLOSED_BY},
            "mean_reasoning_tokens": round(sum(c.reasoning_tokens for c in flat) / len(flat), 1),
        }
        print(f"[bench] {name}: {tokens} tokens in {wall:.1f}s ({runs[name]['tokens_per_s']} tok/s)", flush=True)
    if not a.skip_hf:
        backend.model.set_attn_implementation("sdpa")  # HF as a user has it: stock attention and cache
        with phase("hf_generate", threads):
            hf = hf_generate_two_calls(backend, reqs, params, budget, a.seed)
        runs["hf_generate"] = {"tokens": hf["tokens"], "wall_s": round(hf["wall_s"], 2)}
        runs["hf_generate"]["tokens_per_s"] = rate(hf["tokens"], hf["wall_s"])
        print(f"[bench] hf_generate: {hf['tokens']} tokens in {hf['wall_s']:.1f}s", flush=True)
    one = runs["one_pass"]["wall_s"]
    out = {
        "shape": {
            "prompts": a.prompts,
            "n": a.n,
            "greedy": greedy,
            "temperature": None if greedy else a.temperature,
            "top_p": None if greedy else a.top_p,
            "reasoning_tokens": a.reasoning_tokens,
            "answer_tokens": a.answer_tokens,
            "batch_size": a.batch_size,
        },
        "runs": runs,
        "wall_speedup_vs_two_calls": round(runs["two_calls"]["wall_s"] / one, 3),
        "wall_speedup_vs_hf_generate": round(runs["hf_generate"]["wall_s"] / one, 3) if "hf_generate" in runs else None,
        "same_outputs_one_pass_two_calls": outputs["one_pass"] == outputs["two_calls"] if greedy else None,
        "model": model_dir.name,
        "dtype": a.dtype,
        "threads": threads,
        "prompt_source": "srg.prompts.load_benign (train_benign pool), seeded shuffle",
        **run_environment(load_start, t_start),
    }
    io.write_json(a.out, out)
    print(
        f"[bench] wrote {a.out}: one pass x{out['wall_speedup_vs_two_calls']} vs two calls, "
        f"x{out['wall_speedup_vs_hf_generate']} vs HF generate",
        flush=True,
    )
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
