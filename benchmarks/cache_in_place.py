"""The ``hf`` backend's running batch with rows changed in place vs copied, on the DAG's shapes.

    python benchmarks/cache_in_place.py --baseline-src <tree>/src --run-dir <a full run's clone>
        [--out results/benchmarks/cache_in_place.json] [--rounds 2]

Session 18: when a row of the running batch finished, ``_Batch.keep`` gathered every kept row of
every layer's KV cache into new tensors and the next decode step copied them again into buffers
with room to grow; a merge of newly prefilled rows concatenated the whole cache (and was copied
again). ``kv_cache.GrowingLayer`` now moves only the rows after the new end into the finished
rows' places and writes new rows into spare ones. This script runs the same workloads with the
current ``src`` and with ``--baseline-src`` (a checkout of the commit before, e.g. ``git worktree
add /tmp/srg_base <rev>``), each in its own process on one thread, alternating, ``--rounds``
times, and reports the wall times, the speedup (baseline median / current median) and the share
of outputs with the same text (bf16: the order of rows and of masked columns may change the
rounding).

Workloads, on the prompt files and models of a finished run (``--run-dir``):

- ``bon_sampling``: RT, n = 8, T 0.7, top-p 0.9, 24 tokens (the DAG's BoN job), ``--sample-prompts``;
- ``greedy``: RT, greedy, 24 tokens (the plain models' evaluation), ``--greedy-prompts``;
- ``budgeted_reasoning``: SRG, 256 reasoning + 24 answer tokens on dev prompts (its evaluation).

Only timings, token counts and text hashes are written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation import ROOT, loadavg  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

ATTACK_SETS = ["jailbreakchat", "id_eval", "pasttense", "base64", "codeattack", "selfcipher"]
WORKLOADS = ("bon_sampling", "greedy", "budgeted_reasoning")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "cache_in_place.json"))
    p.add_argument("--baseline-src", required=True, help="the src/ folder of the commit to compare with")
    p.add_argument("--run-dir", required=True, help="a finished run (results/prompts, results/models)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--sample-prompts", type=int, default=60)
    p.add_argument("--sample-sets", nargs="+", default=ATTACK_SETS, help="BoN sampling's prompt sets")
    p.add_argument("--greedy-prompts", type=int, default=120)
    p.add_argument("--reasoning-prompts", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=64, help="generation.batch_size")
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    p.add_argument("--child", nargs=2, metavar=("SRC", "WORKLOAD"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child(a) -> dict:
    """One workload with the ``src`` tree given, in this process: wall, tokens, text hashes."""
    src, workload = a.child
    sys.path.insert(0, src)
    import torch

    torch.set_num_threads(1)
    from srg import generation, io, models
    from srg.backends import Request, SamplingParams, hf

    run = Path(a.run_dir) / "results"
    dtype = models.resolve_dtype("bfloat16_if_native")

    def requests(sets, n):
        recs = [r for s in sets for r in io.read_jsonl(run / "prompts" / f"{s}.jsonl")][:n]
        return [Request(r["prompt"], (r.get("meta") or {}).get("system")) for r in recs]

    model = run / "models" / ("srg" if workload == "budgeted_reasoning" else "rt") / "merged"
    backend = hf.HFBackend(str(model), dtype=dtype, batch_size=a.batch_size, max_prompt_tokens=512)
    backend.generate([Request("Hi.")], SamplingParams(max_new_tokens=2))  # warm-up, untimed
    t0 = time.perf_counter()
    if workload == "bon_sampling":
        p = SamplingParams(n=8, greedy=False, temperature=0.7, top_p=0.9, top_k=0, max_new_tokens=24, seed=0)
        outs = backend.generate(requests(a.sample_sets, a.sample_prompts), p)
    elif workload == "greedy":
        outs = backend.generate(requests(ATTACK_SETS, a.greedy_prompts), SamplingParams(max_new_tokens=24))
    else:
        budget = generation.ReasoningBudget(reasoning_tokens=256, answer_tokens=24)
        reqs = requests(["dev_benign", "dev_harmful"], a.reasoning_prompts)
        outs = generation.generate_budgeted(backend, reqs, SamplingParams(max_new_tokens=1), budget)
    wall = time.perf_counter() - t0
    flat = [c for o in outs for c in o]
    return {
        "wall_s": round(wall, 2),
        "tokens": sum(c.n_tokens for c in flat),
        "hashes": [hashlib.sha256(c.text.encode()).hexdigest()[:12] for c in flat],
    }


def main(argv=None) -> dict:
    a = parse_args(argv)
    if a.child:
        print(json.dumps(child(a)))
        return {}
    trees = {"current": str(ROOT / "src"), "baseline": str(Path(a.baseline_src).resolve())}
    runs: dict = {w: {t: [] for t in trees} for w in a.workloads}
    hashes: dict = {w: {} for w in a.workloads}
    load_start = loadavg()
    for r in range(a.rounds):
        for w in a.workloads:
            for t in trees if r % 2 == 0 else reversed(list(trees)):
                cmd = [sys.executable, __file__, "--baseline-src", a.baseline_src, "--run-dir", a.run_dir]
                cmd += ["--batch-size", str(a.batch_size), "--child", trees[t], w]
                cmd += ["--sample-prompts", str(a.sample_prompts), "--greedy-prompts", str(a.greedy_prompts)]
                cmd += ["--reasoning-prompts", str(a.reasoning_prompts), "--sample-sets", *a.sample_sets]
                out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                runs[w][t].append({"wall_s": out["wall_s"], "tokens": out["tokens"]})
                hashes[w][t] = out["hashes"]
                print(f"[bench] round {r} {w} {t}: {out['wall_s']} s", flush=True)
    result: dict = {
        "batch_size": a.batch_size,
        "threads": 1,
        "rounds": a.rounds,
        "sample_sets": a.sample_sets,
        "sample_prompts": a.sample_prompts,
        "workloads": {},
    }
    for w in a.workloads:
        med = {t: statistics.median(x["wall_s"] for x in runs[w][t]) for t in trees}
        same = [x == y for x, y in zip(hashes[w]["current"], hashes[w]["baseline"])]
        result["workloads"][w] = {
            **{t: runs[w][t] for t in trees},
            "median_wall_s": med,
            "speedup": round(med["baseline"] / med["current"], 3),
            "same_text_share": round(sum(same) / len(same), 3),
        }
    import platform

    result["environment"] = {
        "python_version": platform.python_version(),
        "loadavg": {"start": load_start, "end": loadavg()},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({w: v["speedup"] for w, v in result["workloads"].items()}))
    return result


if __name__ == "__main__":
    main()
