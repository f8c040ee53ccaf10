"""One generation process per prompt set (the DAG before) against one per (model, mode) (now).

    python benchmarks/generation_jobs.py [--results results] [--mode greedy] [--threads 1]
                                         [--out results/benchmarks/generation_jobs.json]

Runs the DAG's own command, ``python -m srg generate``, on the base model and the prompt sets
under ``<results>/prompts`` that the DAG evaluates (every harmful eval set present, over-refusal,
helpfulness) with the default config's decoding settings for ``--mode``: first once per set
(a fresh process each: Python, torch/transformers imports, model load), then once for all sets.
Writes each process's wall time, both totals, the saving, the fixed cost of one process (the saving
over the processes saved: Python, imports, model load; the generation time a process reports
starts before its model load, so it is not subtracted from that), and whether the outputs of the
two ways are byte-identical. Outputs go to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SETS = ["id_eval", "jailbreakchat", "selfcipher", "pasttense", "codeattack", "base64", "caesar", "morse"]
SETS += ["leetspeak", "pap", "pair", "overrefusal", "helpfulness"]


def generate(prompts: list[Path], outs: list[Path], model_path: str, mode: str, params: dict, threads: int) -> dict:
    """Run one ``python -m srg generate`` process; its wall time and the per-set stats it prints."""
    cmd = [sys.executable, "-m", "srg", "generate", "--prompts", *map(str, prompts), "--out", *map(str, outs)]
    cmd += ["--evalset", *(p.stem for p in prompts), "--model", "base", "--model-path", model_path]
    cmd += ["--mode", mode, "--params", json.dumps(params)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t0
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    gen = sum(s["wall_s"] for s in stats.values())
    return {"sets": len(prompts), "wall_s": round(wall, 2), "generation_s": round(gen, 2)}


def main(argv=None) -> int:
    import yaml

    from srg.config import validate
    from srg.io import write_json
    from srg.models import base_model_ref, resolve_dtype
    from srg.provenance import machine_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--mode", default="greedy", choices=["greedy", "sample"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    cfg = validate(yaml.safe_load((ROOT / "config" / "default.yaml").read_text()))
    g, b = cfg["generation"], cfg["bon"]
    sampling = {"n": 1, "greedy": True, "max_new_tokens": g["max_new_tokens"], "seed": cfg["seed"]}
    if a.mode == "sample":
        sampling = {**sampling, "n": b["n"], "greedy": False, "temperature": b["temperature"], "top_p": b["top_p"]}
    dtype = resolve_dtype(cfg["model"]["dtype"])
    params = {
        "backend": "hf",
        "shard_size": g["shard_size"],
        "sampling": sampling,
        "backend_options": {"dtype": dtype, "batch_size": g["batch_size"], "max_prompt_tokens": g["max_prompt_tokens"]},
    }
    model_path = base_model_ref(cfg["model"]["base"], cfg["paths"]["resources"]).path
    prompts = [Path(a.results) / "prompts" / f"{s}.jsonl" for s in SETS]
    prompts = [p for p in prompts if p.exists()]
    with tempfile.TemporaryDirectory() as tmp:
        one_each = [generate([p], [Path(tmp) / f"a_{p.name}"], model_path, a.mode, params, a.threads) for p in prompts]
        outs = [Path(tmp) / f"b_{p.name}" for p in prompts]
        one_job = generate(prompts, outs, model_path, a.mode, params, a.threads)
        same = all((Path(tmp) / f"a_{p.name}").read_bytes() == o.read_bytes() for p, o in zip(prompts, outs))
    per_set_wall = sum(r["wall_s"] for r in one_each)
    out = {
        "mode": a.mode,
        "threads": a.threads,
        "dtype": dtype,
        "sets": [p.stem for p in prompts],
        "one_process_per_set": {
            "wall_s": round(per_set_wall, 1),
            "runs": one_each,
        },
        "one_process": one_job,
        "saving_s": round(per_set_wall - one_job["wall_s"], 1),
        "fixed_s_per_process": round((per_set_wall - one_job["wall_s"]) / max(1, len(one_each) - 1), 2),
        "speedup": round(per_set_wall / one_job["wall_s"], 2),
        "identical_outputs": same,
        "machine": machine_info(cfg),
    }
    path = Path(a.out or Path(a.results) / "benchmarks" / f"generation_jobs_{a.mode}.json")
    write_json(path, out)
    print(json.dumps({k: v for k, v in out.items() if k not in ("machine", "one_process_per_set")}, indent=1))
    print(json.dumps({k: v for k, v in out["one_process_per_set"].items() if k != "runs"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
