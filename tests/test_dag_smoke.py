"""End to end: the whole DAG on config/smoke.yaml in a temporary directory.

Smoke runs never touch the default results: outputs go under tmp_path; only the shared,
content-pinned resources (wheels, converted model) are reused.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def _config(tmp_path: Path, resources: Path, **overrides) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    cfg["paths"] = {"resources": str(resources), "results": "results"}
    for dotted, value in overrides.items():
        node = cfg
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    path = tmp_path / f"config-{len(overrides)}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake(
    workdir: Path, configfile: Path | None, *extra: str, env: dict | None = None, **popen
) -> subprocess.CompletedProcess:
    """Run snakemake on ``configfile`` (None: no --configfile); ``env`` entries set (None: unset)."""
    environ = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for k, v in (env or {}).items():
        environ.pop(k, None) if v is None else environ.__setitem__(k, v)
    cfg = ["--configfile", str(configfile)] if configfile is not None else []
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *cfg, "--cores", "2", *extra],
        capture_output=True,
        text=True,
        env=environ,
        **popen,
    )


def _planned_jobs(dry_run_output: str) -> set[str]:
    """Rule names from the dry run's job-stats table."""
    m = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal", dry_run_output, re.S)
    return {line.split()[0] for line in m.group(1).splitlines() if line.strip()} if m else set()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, resources, model_dir):
    work = tmp_path_factory.mktemp("smoke")
    cfg = _config(work, resources)
    proc = _snakemake(work, cfg)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return work, cfg, resources


@pytest.mark.slow
def test_smoke_outputs(smoke_run):
    work, _, _ = smoke_run
    r = work / "results"
    for rel in [
        "judges/keyword_calibration.json",
        "notebooks/data_overview.ipynb",
        "figures/base_id_asr.png",
        "notebooks/train_rt.ipynb",
        "models/rt/merged/model.safetensors",
        "models/rt/train_log.json",
        "notebooks/bon_analysis.ipynb",
        "figures/bon_curves.png",
        "figures/bon_curves.pdf",
        "bon/srg.csv",
        "bon/rt.csv",
        "bon/base.csv",
        "bon/extrapolation.csv",
        "claims.json",
        "notebooks/guideline_synthesis_srg.ipynb",
        "notebooks/guideline_synthesis_srg_no_cd.ipynb",
        "data/srg_train.jsonl",
        "synthesis/srg/stats.json",
        "models/srg/merged/model.safetensors",
        "models/srg_minus_framing/check.json",
        "notebooks/evaluation.ipynb",
        "tables/main.csv",
        "tables/ablations.csv",
        "figures/ablations.png",
        "figures/ablations.pdf",
        "figures/bon_srg_vs_rt.png",
        "helpfulness/srg.json",
        "notebooks/figures.ipynb",
        "figures/final_bon.png",
        "figures/final_claims.pdf",
        "tables/claims_summary.csv",
        "report/notebooks/figures.html",
        "report/notebooks/train_rt.html",
        "report/provenance.json",
    ]:
        assert (r / rel).exists(), rel
    cal = json.loads((r / "judges/keyword_calibration.json").read_text())
    assert cal["n"] == 169 and 0 <= cal["cv_precision"] <= 1 and 0 <= cal["cv_accuracy"] <= 1
    assert cal["selected"] in cal["grid"]
    claims = json.loads((r / "claims.json").read_text())
    ids = {c["id"] for c in claims["claims"]}
    assert claims["config"] == "smoke" and {"C1.summary", "C1.drop", "C1.base64"} <= ids
    assert "C1.pair" not in ids  # PAIR was optimised against RT: not in RT's C1
    primaries = [c["id"] for c in claims["claims"] if c["primary"]]
    assert sorted(primaries) == ["C1.summary", "C2.transfer", "C3.ood", "C4.rt"]
    for c in claims["claims"]:
        assert {"test", "p_value", "p_adjusted", "n_clusters", "margin", "direction"} <= set(c)
        if c["verdict"] == "supported":
            assert c["p_adjusted"] is not None and c["p_adjusted"] < claims["alpha"]
    ood = next(c for c in claims["claims"] if c["id"] == "C3.ood")
    sources, rows = set(), 0
    for e in ("jailbreakchat", "base64", "pasttense", "pair"):
        judged_e = [json.loads(x) for x in (r / f"judgements/rt/{e}.greedy.jsonl").read_text().splitlines()]
        sources |= {j["source_id"] for j in judged_e}
        rows += len(judged_e)
    assert ood["n_clusters"] == len(sources) < rows  # attack sets of the same source prompts: one cluster each
    assert {
        "C3.base64",
        "C3.ood",
        "C3.id",
        "C3.overrefusal",
        "C3.helpfulness",
        "C4.srg_no_cd",
        "C4.srg_minus_framing",
        "C2.divergence",
    } <= ids
    for c in claims["claims"]:
        assert c["verdict"] in {"supported", "refuted", "inconclusive"}
    import pandas as pd

    bon = pd.read_csv(r / "bon/rt.csv")
    assert set(bon["N"]) == {1, 2, 3, 4} and {"id_eval", "pair", "jailbreakchat"} <= set(bon["evalset"])
    assert set(pd.read_csv(r / "bon/srg.csv")["evalset"]) == {"id_eval", "base64"}  # bon.evalsets.srg
    assert not (r / "generations/srg/pasttense.sample.jsonl").exists()
    main = pd.read_csv(r / "tables/main.csv")
    assert list(main.columns) == ["model", "evalset", "metric", "value", "ci_low", "ci_high", "n"]
    # every evaluated model, and the seed replicate with its own rows (config seeds)
    assert {"base", "rt", "srg", "srg_no_cd", "srg_minus_framing", "rt_seed1"} == set(main["model"])
    assert {
        "asr_compliance",
        "asr_nonrefusal",
        "degenerate_rate",
        "off_topic_rate",
        "malformed_rate",
        "refusal_rate",
        "helpful_rate",
        "answer_loglik",
    } <= set(main["metric"])
    ext = pd.read_csv(r / "bon/extrapolation.csv")
    assert {"beta_binomial", "power_law"} == set(ext["method"]) and ext["N"].max() == 128
    judged = [json.loads(x) for x in (r / "judgements/rt/base64.greedy.jsonl").read_text().splitlines()]
    assert all({"source_id", "outcome", "nonrefusal", "malformed"} <= set(j) for j in judged)
    assert set(main[main["model"] == "srg_no_cd"]["evalset"]) == {"id_eval", "overrefusal", "helpfulness", "base64"}
    # the no-context-distillation ablation keeps the guidelines in its training prompts, SRG does not
    srg_rows = [json.loads(x) for x in (r / "data/srg_train.jsonl").read_text().splitlines()]
    nocd_rows = [json.loads(x) for x in (r / "data/srg_no_cd_train.jsonl").read_text().splitlines()]
    assert all(x["system"] is None for x in srg_rows) and all("Intent:" in x["system"] for x in nocd_rows)
    assert all("<reasoning>" in x["completion"] for x in srg_rows)
    # budgeted decoding (srg.budget_forcing): every reasoning output is closed and has an answer,
    # the rows say who closed the block, and malformed means the model did not close it itself
    for m in ("srg", "srg_minus_framing"):
        gens = [json.loads(x) for x in (r / f"generations/{m}/id_eval.greedy.jsonl").read_text().splitlines()]
        assert all(g["response"].startswith("<reasoning>\n") and "\n</reasoning>\n" in g["response"] for g in gens)
        assert all(g["reasoning_tokens"] <= 12 and g["answer_tokens"] <= 12 for g in gens)  # 24 - 12, 12
        judged = [json.loads(x) for x in (r / f"judgements/{m}/id_eval.greedy.jsonl").read_text().splitlines()]
        assert [j["malformed"] for j in judged] == [g["reasoning_closed"] != "model" for g in gens]
    closure = json.loads((r / "tables/closure.json").read_text())
    assert set(closure) == {"srg", "srg_no_cd", "srg_minus_framing"}
    assert {"dev_harmful", "dev_benign", "dev_overrefusal", "id_eval"} <= set(closure["srg"])
    assert 0 <= closure["srg"]["id_eval"]["closed_by_model"] <= 1
    # every rule left a log and a benchmark
    assert any((r / "benchmarks" / "train").glob("*.tsv")) and any((r / "logs" / "generate").rglob("*.log"))


@pytest.mark.slow
def test_smoke_design_outputs(smoke_run):
    """The embedded design's records: style check, truncation counts, dev-split gate, scaffolded teacher."""
    work, _, _ = smoke_run
    r = work / "results"
    style = json.loads((r / "data/style_check.json").read_text())
    assert style["train_source"] == "contrast_pairs" and 0 <= style["accuracy"] <= 1 and style["n_harmful"] == 16
    trunc = json.loads((r / "data/truncation.json").read_text())
    assert {"id_eval", "jailbreakchat", "dev_harmful", "overrefusal"} <= set(trunc["sets"])
    assert all(v["default"]["n"] >= v["default"]["truncated"] >= 0 for v in trunc["sets"].values())
    for m in ("rt", "srg"):
        check = json.loads((r / f"models/{m}/check.json").read_text())
        assert check["split"] == "dev" and set(check["sets"]) == {"dev_harmful", "dev_benign", "dev_overrefusal"}
    srg_check = json.loads((r / "models/srg/check.json").read_text())
    assert "closed_rate" in srg_check["sets"]["dev_benign"] and srg_check["decoding"]["budget"]
    # the gate's decoding is the model's evaluation decoding, and its files are the dev-split
    # generations every later reader uses (the dev split is decoded once per trained model)
    for m in ("rt", "srg"):
        gens = [json.loads(x) for x in (r / f"generations/{m}/dev_benign.greedy.jsonl").read_text().splitlines()]
        assert len(gens) == srg_check["sets"]["dev_benign"]["n"] and {g["model"] for g in gens} == {m}
        assert all(("reasoning_closed" in g) == (m == "srg") for g in gens)
    closed = [
        json.loads(x)["reasoning_closed"] == "model"
        for x in (r / "generations/srg/dev_benign.greedy.jsonl").read_text().splitlines()
    ]
    assert srg_check["sets"]["dev_benign"]["closed_rate"] == pytest.approx(sum(closed) / len(closed))
    stats = json.loads((r / "synthesis/srg/stats.json").read_text())
    assert stats["mode"] == "scaffold" and set(stats["line_yield"]) == set(stats["guidelines"])
    minus = json.loads((r / "synthesis/srg_minus_framing/stats.json").read_text())
    assert "framing" not in minus["line_yield"]  # shares srg's teacher run, without framing's lines
    teacher_runs = list((r / "synthesis/teacher").glob("*/candidates.jsonl"))
    assert len(teacher_runs) == 1  # srg, srg_no_cd and srg_minus_framing share one scaffold run
    cand = json.loads(teacher_runs[0].read_text().splitlines()[0])
    assert {x["by"] for x in cand["segments"]} >= {"scaffold", "model"}
    assert "".join(x["text"] for x in cand["segments"]) == cand["response"]


@pytest.mark.slow
def test_smoke_seed_replicate(smoke_run):
    """rt_seed1: RT's data, training seed 1, its own dev check; C3 folds both RT seeds in."""
    work, _, _ = smoke_run
    r = work / "results"
    log = json.loads((r / "models/rt_seed1/train_log.json").read_text())
    assert (
        log["config"]["seed"] == 1
        and log["n_examples"] == json.loads((r / "models/rt/train_log.json").read_text())["n_examples"]
    )
    assert (r / "judgements/rt_seed1/pasttense.greedy.jsonl").is_file()
    claims = {c["id"]: c for c in json.loads((r / "claims.json").read_text())["claims"]}
    assert claims["C3.ood"]["n_seeds"] == 2 and len(claims["C3.ood"]["per_seed"]) == 2
    assert claims["C4.srg_no_cd"]["n_seeds"] == 1  # one SRG seed in the smoke config
    # bon.seed_replicas: rt_seed1 is sampled on RT's BoN sets and C1 pools both seeds
    assert (r / "judgements/rt_seed1/pasttense.sample.jsonl").is_file()
    assert claims["C1.summary"]["n_seeds"] == 2 and len(claims["C1.summary"]["per_seed"]) == 2


@pytest.mark.slow
def test_second_dry_run_has_nothing_to_do(smoke_run):
    work, cfg, _ = smoke_run
    proc = _snakemake(work, cfg, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_changed_notebook_parameter_reruns_only_that_notebook(smoke_run, tmp_path):
    work, _, resources = smoke_run
    cfg = _config(tmp_path, resources, **{"notebooks.data_overview.n_examples": 1})
    proc = _snakemake(work, cfg, "-n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # plus its HTML rendering and the provenance record (which holds the config) for the report
    assert _planned_jobs(proc.stdout + proc.stderr) == {"data_overview", "notebook_html", "provenance", "all"}


@pytest.mark.slow
def test_changed_sampling_parameter_reruns_downstream_only(smoke_run, tmp_path):
    work, _, resources = smoke_run
    cfg = _config(tmp_path, resources, **{"bon.temperature": 0.7})
    jobs = _planned_jobs(_snakemake(work, cfg, "-n").stdout)
    assert {"judge", "bon_analysis"} <= jobs
    # only the sampling generation jobs (one per BoN model and sampled seed replicate), not the greedy ones
    assert {j for j in jobs if j.startswith("generate_")} == {
        "generate_base_sample",
        "generate_rt_sample",
        "generate_rt_seed1_sample",
        "generate_srg_sample",
    }
    assert not jobs & {"prompts", "train", "rt_data", "attack", "judge_calibration"}


@pytest.mark.parametrize(
    "override, needle",
    [
        ({"generation.backend": "nope"}, "'generation.backend': 'nope' is not allowed"),
        ({"bon.n": 0}, "'bon.n': 0 is less than the minimum of 1"),
        ({"prompts.bogus": 3}, "unknown config key 'prompts.bogus'"),
        ({"evalsets.x": {"attack": "nope"}}, "'evalsets.x.attack': 'nope' is not a registered attack"),
        ({"model.base": "not-a-model"}, "'model.base': 'not-a-model' is neither a known model"),
        ({"ablations.srg_x": {"drop": ["nope"]}}, "unknown guideline ids in drop: ['nope']"),
        ({"bon.models": ["rt", "ghost"]}, "'bon.models': ['ghost'] not among this run's models"),
        ({"guidelines.file": "missing.yaml"}, "missing.yaml not found (config key guidelines.file)"),
        (
            {"evalsets.caesar": {"attack": "caesar", "options": {"shift": "three"}}},
            "'evalsets.caesar.options' (attack 'caesar'): option 'shift' must be int, got 'three'",
        ),
        (
            {"evalsets.mine": {"attack": "none", "file": "empty.jsonl"}},
            "config key 'evalsets.mine.file': prompt file empty.jsonl has no records",
        ),
        (
            {"judge.agreement_with": ["llm"], "judge.api_key_env": "SRG_TEST_UNSET_KEY"},
            "environment variable(s) not set: SRG_TEST_UNSET_KEY (named by config key 'judge.api_key_env')",
        ),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, override, needle):
    (tmp_path / "empty.jsonl").write_text("")
    cfg = _config(tmp_path, REPO / "resources", **override)
    proc = _snakemake(tmp_path, cfg, "-n", env={"SRG_TEST_UNSET_KEY": None})
    assert proc.returncode != 0
    assert needle in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_paper_config_dry_runs_without_gpu(tmp_path):
    """config/paper.yaml builds its whole DAG (8B model, vLLM, Llama-Guard-3 + agreement, teacher) here."""
    proc = _snakemake(
        tmp_path,
        REPO / "config" / "paper.yaml",
        "-n",
        "--quiet",
        "rules",
        env={"OPENAI_API_KEY": "placeholder-not-a-key"},
    )  # the teacher's key must be set
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    jobs = _planned_jobs(proc.stdout + proc.stderr)
    assert {
        "teacher_generate",
        "synthesis",
        "train",
        "generate_rt_greedy",
        "generate_rt_sample",
        "judge",
        "judge_extra",
        "judge_agreement",
        "evaluation",
        "bon_analysis",
        "domain_adaptation",
        "figures",
    } <= jobs


def test_extra_judge_is_wired_into_the_evaluation(tmp_path):
    cfg = _config(tmp_path, REPO / "resources", **{"judge.agreement_with": ["llm"]})
    proc = _snakemake(tmp_path, cfg, "-n", "--quiet", "rules", env={"OPENAI_API_KEY": "placeholder-not-a-key"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"judge_extra", "judge_agreement", "evaluation"} <= _planned_jobs(proc.stdout + proc.stderr)


@pytest.mark.slow
def test_report_builds_with_every_stage(smoke_run):
    """`snakemake --report` makes one HTML with the SRG figures and the executed notebooks."""
    work, cfg, _ = smoke_run
    out = work / "results" / "report.html"
    proc = _snakemake(work, cfg, "--report", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = out.read_text(errors="replace")
    for name in (
        "ablations.png",
        "bon_srg_vs_rt.png",
        "main_asr.png",
        "bon_curves.png",
        "evaluation.html",
        "guideline_synthesis_srg.html",
        "provenance.json",
    ):
        assert name in html, name


def test_paper_config_without_its_api_key_stops_at_dag_start(tmp_path):
    proc = _snakemake(tmp_path, REPO / "config" / "paper.yaml", "-n", env={"OPENAI_API_KEY": None})
    assert proc.returncode != 0
    assert "OPENAI_API_KEY (named by config key 'synthesis.teacher.options.api_key_env')" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_config_file_without_name_is_refused_not_merged(tmp_path):
    cfg = tmp_path / "partial.yaml"
    cfg.write_text("seed: 3\n")
    proc = _snakemake(tmp_path, cfg, "-n")
    assert proc.returncode != 0
    assert f"config file {cfg} has no 'name' key" in proc.stdout + proc.stderr


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nseed: [1, 2\nbon: {n: 4}\n")
    proc = subprocess.run([sys.executable, "-m", "srg", "check-config", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"config file {bad}, line 3, column 4: not valid YAML" in proc.stderr


@pytest.mark.slow
def test_kill_9_mid_generation_loses_no_finished_work(tmp_path, resources, model_dir):
    """SIGKILL the whole DAG while a generation job writes shards; the rerun reuses them as they are."""
    import signal
    import time

    from srg.io import read_jsonl

    cfg = _config(tmp_path, resources, **{"generation.shard_size": 2})
    target = "results/generations/base/train_benign.answer.jsonl"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = [
        SNAKEMAKE,
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(cfg),
        "--cores",
        "2",
        target,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    pattern = ".train_benign.answer.jsonl.shards-*/*.jsonl"
    gen_dir = tmp_path / "results" / "generations" / "base"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not list(gen_dir.glob(pattern)):
        time.sleep(0.1)
    assert proc.poll() is None, "the job finished (or failed) before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / target).exists()
    shards = sorted(gen_dir.glob(pattern))
    assert shards, "no finished shard at kill time"
    saved = b"".join(p.read_bytes() for p in shards)
    assert [p.name for p in shards] == [f"{i:05d}.jsonl" for i in range(len(shards))]
    for f in (tmp_path / "results").rglob("*.jsonl"):  # nothing partial or corrupt under a final name
        read_jsonl(f)
    # a killed Snakemake leaves its lock behind: --unlock (README, troubleshooting), then rerun
    assert _snakemake(tmp_path, cfg, "--unlock").returncode == 0
    rerun = _snakemake(tmp_path, cfg, target)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (tmp_path / "results/logs/generate/base_answer.log").read_text()
    assert f"({len(shards)} already done)" in log
    assert (tmp_path / target).read_bytes().startswith(saved)
    # the finished shards stay under their content key (a rerun of the job merges them again)
    assert len(list(gen_dir.glob(".train_benign.answer.jsonl.shards-*"))) == 1


@pytest.mark.slow
def test_rerun_of_a_generate_job_gives_the_same_bytes(smoke_run):
    """benchmarks/determinism.py reruns one real greedy and one sampled job of the smoke run."""
    work, cfg, _ = smoke_run
    for target in ("results/generations/rt/id_eval.greedy.jsonl", "results/generations/rt/base64.sample.jsonl"):
        out = work / "determinism.json"
        proc = subprocess.run(
            [
                sys.executable,
                str(REPO / "benchmarks" / "determinism.py"),
                "--target",
                target,
                "--configfile",
                str(cfg),
                "--workdir",
                str(work),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        report = json.loads(out.read_text())
        assert report["identical"] and report["differing_rows"] == 0 and report["rows"] > 0


@pytest.mark.slow
def test_rerun_of_the_analysis_gives_the_same_claims_bytes(smoke_run):
    """Forcing every claim-making notebook to run again on the same inputs rewrites claims.json
    byte for byte (seeded bootstraps; generation and training repeat too: test_reliability,
    test_training)."""
    work, cfg, _ = smoke_run
    r = work / "results"
    before = {p.name: p.read_bytes() for p in [r / "claims.json", *sorted((r / "claims").glob("*.json"))]}
    proc = _snakemake(work, cfg, "--forcerun", "bon_analysis", "domain_adaptation", "evaluation")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = {p.name: p.read_bytes() for p in [r / "claims.json", *sorted((r / "claims").glob("*.json"))]}
    assert after == before
