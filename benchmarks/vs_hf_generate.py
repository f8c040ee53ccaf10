"""The ``hf`` backend against HF's own batched ``model.generate`` at the DAG's shapes.

    python benchmarks/vs_hf_generate.py [--out results/benchmarks/vs_hf_generate.json] [--threads 2]
                                        [--model DIR] [--plain-tokens 24] [--reasoning-tokens 192]

For every shape (greedy at the plain and the reasoning token budgets; n-sample Best-of-N at both)
three things run on the same prompts, the same model object, dtype and torch threads:

- ``backend``: ``HFBackend.generate`` exactly as the DAG calls it;
- ``hf_generate``: ``model.generate`` (stock ``sdpa`` attention and cache) on length-sorted,
  left-padded buckets of ``batch_size // n`` prompts (``num_return_sequences=n``, ``do_sample``,
  the same temperature / top_p and ``top_k=0`` for sampling), what a user would write instead
  of this backend;
- ``ceiling``: one prefill per batch (the cache repeated n times for sampling) plus T cached
  single-token forward steps for every row, no EOS: the forward passes alone.

Reported per shape: real generated tokens (up to EOS) per second for the backend and HF generate,
``speedup_vs_hf_generate`` and ``fraction_of_forward_ceiling`` (backend tokens/s over the ceiling's
rows x T / wall, prefill included). Benign prompts only (``srg.prompts.load_benign``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation import (  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
    MODEL_NAME,
    ROOT,
    add_model_args,
    batches_like_backend,
    benign_prompts,
    ensure_model,
    forward_ceiling,
    loadavg,
    phase,
    rate,
    run_environment,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "vs_hf_generate.json"))
    p.add_argument("--greedy-prompts", type=int, default=20, help="one DAG eval set: 20 prompts")
    p.add_argument("--sample-prompts", type=int, default=8, help="prompts for the n-sample shapes")
    p.add_argument("--plain-tokens", type=int, default=24, help="generation.max_new_tokens")
    p.add_argument("--reasoning-tokens", type=int, default=192, help="srg.max_new_tokens")
    p.add_argument("--n", type=int, default=8, help="bon.n")
    p.add_argument("--temperature", type=float, default=0.7, help="bon.temperature")
    p.add_argument("--top-p", type=float, default=0.9, help="bon.top_p")
    p.add_argument("--shapes", default="all", help="comma-separated subset of the shape names, or all")
    add_model_args(p, dtype="bfloat16")
    return p.parse_args(argv)


def shapes(a) -> dict[str, dict]:
    return {
        "greedy_plain": {"n": 1, "greedy": True, "max_new_tokens": a.plain_tokens, "prompts": a.greedy_prompts},
        "greedy_reasoning": {
            "n": 1,
            "greedy": True,
            "max_new_tokens": a.reasoning_tokens,
            "prompts": a.greedy_prompts,
        },
        "bon_plain": {"n": a.n, "greedy": False, "max_new_tokens": a.plain_tokens, "prompts": a.sample_prompts},
        "bon_reasoning": {
            "n": a.n,
            "greedy": False,
            "max_new_tokens": a.reasoning_tokens,
            "prompts": a.sample_prompts,
        },
    }


def real_tokens(row: list[int], eos_ids: set[int]) -> int:
    """Generated tokens up to (not including) the first EOS or pad-after-EOS."""
    return next((j for j, t in enumerate(row) if t in eos_ids), len(row))


def hf_generate(model, tok, batches, shape: dict, temperature: float, top_p: float, seed: int) -> dict:
    """``model.generate`` on the backend's batches; returns real tokens and wall seconds."""
    import torch

    from srg.models import left_pad

    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    kw = {"max_new_tokens": shape["max_new_tokens"], "pad_token_id": tok.pad_token_id}
    if shape["greedy"]:
        kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kw.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0, num_return_sequences=shape["n"])
    tokens = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b, batch in enumerate(batches):
            torch.manual_seed(seed * 1_000_003 + b)
            ids, mask = left_pad(batch, tok.pad_token_id)
            out = model.generate(input_ids=ids, attention_mask=mask, **kw)
            tokens += sum(real_tokens(r, eos_ids) for r in out[:, ids.shape[1] :].tolist())
    return {"tokens": tokens, "wall_s": time.perf_counter() - t0}


def run_shape(name: str, shape: dict, backend, texts: list[str], a, threads: int) -> dict:
    from srg.backends import Request, SamplingParams

    reqs = [Request(t) for t in texts[: shape["prompts"]]]
    n = shape["n"]
    params = SamplingParams(
        n=n,
        greedy=shape["greedy"],
        temperature=a.temperature,
        top_p=a.top_p,
        top_k=0,
        max_new_tokens=shape["max_new_tokens"],
        seed=a.seed,
    )
    batches = batches_like_backend(backend._encode(reqs), max(1, backend.batch_size // n), backend.bucket_ratio)
    with phase(f"{name}.backend", threads):
        t0 = time.perf_counter()
        outs = backend.generate(reqs, params)
        b_wall = time.perf_counter() - t0
    b_tokens = sum(c.n_tokens for cs in outs for c in cs)
    attn = backend.model.config._attn_implementation
    backend.model.set_attn_implementation("sdpa")  # HF as a user has it: stock attention and cache
    with phase(f"{name}.hf_generate", threads):
        hf = hf_generate(backend.model, backend.tokenizer, batches, shape, a.temperature, a.top_p, a.seed)
    backend.model.set_attn_implementation(attn)
    with phase(f"{name}.ceiling", threads):
        t0 = time.perf_counter()
        ceil = forward_ceiling(backend.model, batches, backend.tokenizer.pad_token_id, shape["max_new_tokens"], n)
        ceil["wall_s"] = time.perf_counter() - t0
    b_tps, hf_tps, c_tps = (
        rate(b_tokens, b_wall),
        rate(hf["tokens"], hf["wall_s"]),
        rate(ceil["tokens"], ceil["wall_s"]),
    )
    res = {
        **shape,
        "temperature": None if shape["greedy"] else a.temperature,
        "top_p": None if shape["greedy"] else a.top_p,
        "rows": len(reqs) * n,
        "batch_rows": [len(b) * n for b in batches],
        "backend": {"tokens": b_tokens, "wall_s": round(b_wall, 3), "tokens_per_s": b_tps},
        "hf_generate": {"tokens": hf["tokens"], "wall_s": round(hf["wall_s"], 3), "tokens_per_s": hf_tps},
        "ceiling": {"tokens": ceil["tokens"], "wall_s": round(ceil["wall_s"], 3), "tokens_per_s": c_tps},
        "speedup_vs_hf_generate": round(b_tps / hf_tps, 3) if b_tps and hf_tps else None,
        "wall_speedup_vs_hf_generate": round(hf["wall_s"] / b_wall, 3) if b_wall > 0 else None,
        "fraction_of_forward_ceiling": round(b_tps / c_tps, 3) if b_tps and c_tps else None,
    }
    print(
        f"[bench] {name}: backend {b_tps} tok/s ({b_tokens} in {b_wall:.1f}s) | hf generate {hf_tps} "
        f"({hf['tokens']} in {hf['wall_s']:.1f}s) x{res['speedup_vs_hf_generate']} | ceiling {c_tps} "
        f"-> {res['fraction_of_forward_ceiling']}",
        flush=True,
    )
    return res


def main(argv=None) -> dict:
    a = parse_args(argv)
    load_start, t_start = loadavg(), time.perf_counter()

    import torch

    from srg import io
    from srg.backends import Request, SamplingParams
    from srg.backends.hf import HFBackend

    if a.threads:
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    resources = Path(a.resources)
    model_dir = ensure_model(resources, Path(a.model) if a.model else resources / "models" / MODEL_NAME)
    todo = shapes(a)
    if a.shapes != "all":
        unknown = sorted(set(a.shapes.split(",")) - set(todo))
        if unknown:
            raise SystemExit(f"unknown shapes {unknown}; known: {sorted(todo)}")
        todo = {k: v for k, v in todo.items() if k in a.shapes.split(",")}
    texts = benign_prompts(resources, max(s["prompts"] for s in todo.values()), a.seed)
    backend = HFBackend(str(model_dir), dtype=a.dtype, batch_size=a.batch_size, max_prompt_tokens=a.max_prompt_tokens)
    backend.generate([Request(t) for t in texts[:2]], SamplingParams(max_new_tokens=4))  # warm-up, untimed
    results = {name: run_shape(name, s, backend, texts, a, threads) for name, s in todo.items()}
    out = {
        "shapes": results,
        "targets": {
            "bon_speedup_vs_hf_generate": 1.5,
            "greedy_speedup_vs_hf_generate": 1.2,
            "fraction_of_forward_ceiling": 0.8,
        },
        "model": model_dir.name,
        "dtype": a.dtype,
        "threads": threads,
        "batch_size": a.batch_size,
        "prompt_source": "srg.prompts.load_benign (train_benign pool), seeded shuffle",
        **run_environment(load_start, t_start),
    }
    io.write_json(a.out, out)
    print(f"[bench] wrote {a.out} ({out['bench_wall_s']}s)")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
