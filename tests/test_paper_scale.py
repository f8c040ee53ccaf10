"""Paper scale, checked on CPU: every rule's parameters under config/paper.yaml build the backend,
judge or run they name (vLLM, the OpenAI-compatible teacher and Llama-Guard behind fakes), and
every rule named in a profile exists."""

from __future__ import annotations

import inspect
import json
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
ENV_KEY = {"OPENAI_API_KEY": "placeholder-not-a-key"}


def _snakemake(workdir: Path, *args: str) -> str:
    import os

    env = {**os.environ, **ENV_KEY, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [
            SNAKEMAKE,
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(workdir),
            "--configfile",
            str(REPO / "config" / "paper.yaml"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def commands(tmp_path_factory) -> dict[str, list[list[str]]]:
    """rule -> the argv of each of its jobs' shell commands in the paper-scale dry run."""
    out = _snakemake(tmp_path_factory.mktemp("paper"), "-n", "-p")
    by_rule: dict[str, list[list[str]]] = {}
    rule = None
    for line in out.splitlines():
        if line.startswith("rule ") and line.endswith(":"):
            rule = line[5:-1]
        elif rule and ("python -m srg" in line or line.lstrip().startswith("papermill ")):
            argv = shlex.split(re.sub(r"\s*>\s*\S+(\s+2>(&1|\s*\S+))?\s*$", "", line))
            by_rule.setdefault(rule, []).append(argv)
    return by_rule


def _arg(argv: list[str], flag: str) -> dict:
    return json.loads(argv[argv.index(flag) + 1])


@pytest.fixture()
def fake_vllm(monkeypatch):
    """A stand-in ``vllm`` module whose engine records its constructor arguments."""
    built: list[dict] = []

    class FakeTok:
        def apply_chat_template(self, *a, **k):
            return "x"

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [1, 2]}

    class FakeLLM:
        def __init__(self, **kw):
            built.append(kw)

        def get_tokenizer(self):
            return FakeTok()

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = FakeLLM, lambda **kw: kw
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = lambda *a: a
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora)
    monkeypatch.delitem(sys.modules, "srg.backends.vllm", raising=False)
    from srg import backends

    monkeypatch.delitem(backends.BACKENDS, "vllm", raising=False)
    yield built
    backends.BACKENDS.pop("vllm", None)
    sys.modules.pop("srg.backends.vllm", None)


def test_generation_and_attack_params_build_their_backends(commands, fake_vllm, monkeypatch):
    from srg.backends import make_backend
    from srg.cli import _chat_fn

    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY["OPENAI_API_KEY"])
    gens = [argv for rule, jobs in commands.items() if rule.startswith("generate_") for argv in jobs]
    assert gens and "generate_rt_sample" in commands  # one job per (model, mode)
    for argv in gens:
        p = _arg(argv, "--params")
        assert p["backend"] == "vllm"
        make_backend(p["backend"], model_path=argv[argv.index("--model-path") + 1], **p["backend_options"])
    assert all(kw["tensor_parallel_size"] >= 1 and "model" in kw for kw in fake_vllm)
    n_engines = len(fake_vllm)
    model_attacks = [a for a in commands["attack"] if "attacker_path" in _arg(a, "--params")]
    assert {_arg(a, "--params")["spec"]["attack"] for a in model_attacks} == {"pap", "pair"}
    for argv in model_attacks:  # PAP / PAIR build vLLM attackers and targets, not hf ones
        p = _arg(argv, "--params")
        _chat_fn(p["backend"], p["attacker_path"], p["backend_options"], p["attacker_max_new_tokens"])
    assert len(fake_vllm) == n_engines + len(model_attacks)
    for argv in commands["teacher_generate"]:  # the OpenAI-compatible teacher
        p = _arg(argv, "--params")
        backend = make_backend(p["backend"], model_path=argv[argv.index("--model-path") + 1], **p["backend_options"])
        assert backend.name == "openai"


def test_judge_params_build_their_judges(commands, resources):
    from srg.judges import make_judge

    for rule in ("judge", "judge_extra"):
        for argv in commands[rule]:
            p = _arg(argv, "--params")
            opts = dict(p.get("options", {}))
            if p["name"] == "llamaguard":  # no 8B model here: a fake generator, the real option handling
                opts.update(generate_fn=lambda texts: ["safe"] * len(texts), tokenizer=object())
            judge = make_judge(p["name"], resources=resources, **opts)
            assert judge.name == p["name"]


def test_model_job_params_bind_to_their_functions(commands):
    from srg import helpfulness, hidden_states
    from srg.training import TrainConfig

    for argv in commands["hidden_states"]:
        inspect.signature(hidden_states.run_extraction).bind("p.jsonl", "m", "o.npz", **_arg(argv, "--params"))
    for argv in commands["answer_loglik"]:
        assert set(_arg(argv, "--params")) <= helpfulness.PARAM_KEYS
    trains = commands["train"]
    assert trains
    for argv in trains:
        nb = _arg(argv, "-y")
        TrainConfig(method=nb["method"], **nb["train_config"])


def test_slurm_profile_gives_every_paper_generation_job_a_gpu(commands):
    """Generation rules are named per (model, mode): the SLURM profile lists every one that
    config/paper.yaml makes, each with the GPU partition and a GPU."""
    resources = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())["set-resources"]
    generate = {rule for rule in commands if rule.startswith("generate_")}
    assert generate and generate <= set(resources), sorted(generate - set(resources))
    assert all(resources[r]["gpu"] >= 1 and resources[r]["slurm_partition"] == "gpu" for r in generate)


def test_every_rule_a_profile_names_exists(tmp_path):
    rules = set(_snakemake(tmp_path, "--list-rules").split())
    for profile in sorted((REPO / "profiles").glob("*/config.yaml")):
        named = set((yaml.safe_load(profile.read_text()).get("set-resources") or {}))
        assert named <= rules, f"{profile}: no such rule {sorted(named - rules)}"
