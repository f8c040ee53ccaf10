"""The other benchmark scripts: vs_hf_generate (tiny shapes), dag_times' log timeline and critical
path, tweak_rerun's dry-run parsing and downstream-only predicates."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from conftest import REPO


def _load(name: str):
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


LOG = """Provided cores: 2
[Thu Dec  3 13:00:00 2026]
localrule prompts:
    input: a.txt
    output: results/prompts/x.jsonl
    jobid: 1
[Thu Dec  3 13:00:10 2026]
Finished jobid: 1 (Rule: prompts)
[Thu Dec  3 13:00:10 2026]
localrule train:
    input: results/prompts/x.jsonl
    output: results/models/rt/merged
    jobid: 2
    threads: 2
[Thu Dec  3 13:00:10 2026]
localrule judge_calibration:
    input: b.txt
    output: results/judges/cal.json
    jobid: 3
[Thu Dec  3 13:00:15 2026]
Finished jobid: 3 (Rule: judge_calibration)
[Thu Dec  3 13:01:10 2026]
Finished jobid: 2 (Rule: train)
[Thu Dec  3 13:01:10 2026]
localrule generate:
    input: results/prompts/x.jsonl, results/models/rt/merged/model.safetensors
    output: results/generations/rt/x.greedy.jsonl
    jobid: 4
    wildcards: model=rt, evalset=x, mode=greedy
[Thu Dec  3 13:01:30 2026]
Finished jobid: 4 (Rule: generate)
"""


def test_dag_times_critical_path_follows_file_dependencies(tmp_path):
    dt = _load("dag_times")
    log = tmp_path / "run.snakemake.log"
    log.write_text(LOG)
    jobs = dt.parse_log(log)
    assert {j["rule"] for j in jobs} == {"prompts", "train", "judge_calibration", "generate"}
    run = dt.timeline(jobs, dt.cores_of(log))
    assert run["dag_wall_s"] == 90
    # prompts 10 s -> train 60 s -> generate 20 s (a file inside the train job's output directory)
    assert [p["rule"] for p in run["critical_path"]] == ["prompts", "train", "generate"]
    assert run["critical_path_s"] == 90
    # busy core-seconds: 10 + 60 x 2 + 5 + 20 = 155 of 90 x 2
    assert run["busy_core_share"] == pytest.approx(155 / 180, abs=1e-3)
    assert dt.newest_log(tmp_path) is None  # no .snakemake/log under tmp_path


def test_tweak_rerun_parses_dry_runs_and_checks_downstream():
    tr = _load("tweak_rerun")
    text = (
        "rule judge:\n    input: x\n    wildcards: model=rt, evalset=caesar, mode=sample\n"
        "localrule evaluation:\n    input: y\n"
        "rule train:\n    wildcards: method=rt\n"
    )
    jobs = tr.dry_run_jobs(text)
    assert [j["rule"] for j in jobs] == ["judge", "evaluation", "train"]
    judge, evaluation, train = jobs
    assert tr.allowed_judge(judge) and tr.allowed_judge(evaluation) and not tr.allowed_judge(train)
    assert tr.allowed_attack(judge) and not tr.allowed_attack(train)
    assert tr.allowed_bon(judge)  # a sampling judgement
    assert not tr.allowed_bon({"rule": "generate_rt_greedy", "wildcards": ""})
    gen = tr.dry_run_jobs(
        "rule generate_rt_sample:\n    input: p\n"
        "    output: results/generations/rt/id_eval.sample.jsonl, results/generations/rt/caesar.sample.jsonl\n"
        "rule generate_srg_sample:\n    output: results/generations/srg/id_eval.sample.jsonl\n"
    )
    assert gen[0]["output"].endswith("caesar.sample.jsonl") and tr.allowed_bon(gen[0]) and tr.allowed_bon(gen[1])
    assert tr.allowed_attack(gen[0]) and not tr.allowed_attack(gen[1])  # only jobs that generate caesar
    hidden = tr.dry_run_jobs(
        "rule hidden_states:\n    output: results/hidden/rt/id_eval.npz, results/hidden/rt/caesar.npz\n"
        "    wildcards: model=rt\n"
        "rule hidden_states:\n    output: results/hidden/rt/id_eval.npz\n    wildcards: model=rt\n"
    )
    assert tr.allowed_attack(hidden[0]) and not tr.allowed_attack(hidden[1]) and not tr.allowed_bon(hidden[0])
    plan = tr.dry_run_jobs(
        "rule attack:\n    input: p.jsonl\n    output: results/prompts/caesar.jsonl\n    wildcards: evalset=caesar\n"
        "rule generate_rt_greedy:\n    input: results/prompts/caesar.jsonl, results/prompts/morse.jsonl\n"
        "    output: results/generations/rt/caesar.greedy.jsonl, results/generations/rt/morse.greedy.jsonl\n"
        "rule judge:\n    input: results/generations/rt/morse.greedy.jsonl\n"
        "    output: results/judgements/rt/morse.greedy.jsonl\n    wildcards: model=rt, evalset=morse, mode=greedy\n"
        "rule train:\n    input: results/data/rt_train.jsonl\n    wildcards: method=rt\n"
    )
    assert plan[2]["input"] == "results/generations/rt/morse.greedy.jsonl" and not tr.allowed_attack(plan[2])
    # morse's judge reads a file the rerun bundle rewrites: downstream; the training is not
    assert [j["rule"] for j in tr.outside_downstream(plan, tr.allowed_attack)] == ["train"]
    assert [j["rule"] for j in tr.outside_downstream(plan[2:], tr.allowed_attack)] == ["judge", "train"]
    cfg = {"bon": {"n": 8, "top_p": 0.9}}
    tr.set_key(cfg, "bon.n", 4)
    tr.set_key(cfg, "evalsets.caesar.options.shift", 5)
    assert cfg == {"bon": {"n": 4, "top_p": 0.9}, "evalsets": {"caesar": {"options": {"shift": 5}}}}


def test_tweak_rerun_runs_snakemake_with_the_venv_first_on_path(monkeypatch, tmp_path):
    """The rules call ``python -m srg``: a benchmark started as ``.venv/bin/python ...`` from a shell
    without the venv on PATH must still run them with the venv's interpreter (session 15's failure)."""
    tr = _load("tweak_rerun")
    seen = {}

    def fake_run(cmd, cwd, capture_output, text, env):
        seen.update(cmd=cmd, path=env["PATH"])
        return type("P", (), {"stdout": "", "stderr": "", "returncode": 0})()

    monkeypatch.setattr(tr.subprocess, "run", fake_run)
    monkeypatch.setenv("PATH", "/usr/bin")
    tr.snakemake(tmp_path, tmp_path / "c.yaml", 2, dry=True)
    assert seen["path"].split(":")[0] == str(Path(sys.executable).parent)
    assert seen["cmd"][:3] == [sys.executable, "-m", "snakemake"] and "-n" in seen["cmd"]


def test_vs_hf_generate_tiny(resources, model_dir, tmp_path):
    bench = _load("vs_hf_generate")
    out = tmp_path / "vs.json"
    res = bench.main(
        [
            "--out",
            str(out),
            "--greedy-prompts",
            "3",
            "--sample-prompts",
            "2",
            "--plain-tokens",
            "4",
            "--reasoning-tokens",
            "6",
            "--n",
            "2",
            "--batch-size",
            "4",
            "--threads",
            "1",
            "--resources",
            str(resources),
            "--model",
            str(model_dir),
        ]
    )
    assert json.loads(out.read_text()) == res
    assert set(res["shapes"]) == {"greedy_plain", "greedy_reasoning", "bon_plain", "bon_reasoning"}
    g = res["shapes"]["greedy_plain"]
    # greedy: the backend and HF generate decode the same tokens
    assert g["backend"]["tokens"] == g["hf_generate"]["tokens"]
    assert g["ceiling"]["tokens"] == 3 * 4  # every row, every step, no EOS
    b = res["shapes"]["bon_reasoning"]
    assert b["rows"] == 4 and b["ceiling"]["tokens"] == 4 * 6
    for s in res["shapes"].values():
        assert s["speedup_vs_hf_generate"] == pytest.approx(
            s["backend"]["tokens_per_s"] / s["hf_generate"]["tokens_per_s"], rel=0.02
        )


def test_budgeted_decoding_benchmark_compares_one_pass_two_calls_and_hf(tmp_path, resources, model_dir):
    """benchmarks/budgeted_decoding.py: the three ways decode the same greedy outputs (one pass
    equals two calls; HF generate the same number of tokens) and the speedups are their walls."""
    bench = _load("budgeted_decoding")
    out = tmp_path / "bd.json"
    args = ["--out", str(out), "--prompts", "3", "--reasoning-tokens", "6", "--answer-tokens", "3"]
    res = bench.main([*args, "--batch-size", "2", "--resources", str(resources), "--model", str(model_dir)])
    assert json.loads(out.read_text()) == res
    runs = res["runs"]
    assert res["same_outputs_one_pass_two_calls"] is True
    assert runs["one_pass"]["tokens"] == runs["two_calls"]["tokens"] == runs["hf_generate"]["tokens"]
    assert sum(runs["one_pass"]["closed_by"].values()) == 3
    assert res["wall_speedup_vs_two_calls"] == pytest.approx(
        runs["two_calls"]["wall_s"] / runs["one_pass"]["wall_s"], rel=0.02
    )
