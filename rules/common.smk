# Shared setup: validated config, paths, model references, helpers for params.
import json
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

import srg.config as srg_config
from srg import sources as srg_sources
from srg.models import base_model_ref

try:
    CFG = srg_config.validate(srg_config.resolve_run_config(
        dict(config), [str(f) for f in workflow.config_settings.configfiles],
        Path(workflow.basedir) / "config" / "default.yaml"))
    srg_config.check_environment(CFG)
except srg_config.ConfigError as exc:
    raise WorkflowError(str(exc))

RES = str(Path(CFG["paths"]["resources"]))
RESULTS = str(Path(CFG["paths"]["results"]))
NOTEBOOKS = Path(workflow.basedir) / "notebooks"
SOURCES = srg_sources.load_sources()
WHEEL_FILES = {spec["filename"]: name for name, spec in SOURCES["wheels"].items()}
BASE = base_model_ref(CFG["model"]["base"], RES)
TARGETS = []  # each stage appends its final outputs; rule all requests them
PROMPT_SETS = ["train_harmful", "train_benign", "id_eval", "overrefusal", "helpfulness"]


def wheel_file(name):
    return f"{RES}/wheels/{SOURCES['wheels'][name]['filename']}"


def all_wheels():
    return [wheel_file(n) for n in SOURCES["wheels"]]


def log_path(rule_name, stem="run"):
    return f"{RESULTS}/logs/{rule_name}/{stem}.log"


def bench_path(rule_name, stem="run"):
    return f"{RESULTS}/benchmarks/{rule_name}/{stem}.tsv"


def as_json(obj):
    """Params go to scripts as one JSON string, so a changed value reruns exactly that job."""
    return json.dumps(obj, sort_keys=True)


def model_path(name):
    """Directory (or HF id) of a model known to the DAG."""
    if name == "base":
        return BASE.path
    return f"{RESULTS}/models/{name}/merged"


def model_input(wildcards):
    """The file dependency of a model: its converted/trained directory, if the DAG makes it."""
    if wildcards.model == "base":
        return [BASE.path] if BASE.converted_from else []
    return [model_path(wildcards.model)]


def evalset_file(wildcards):
    return f"{RESULTS}/prompts/{wildcards.evalset}.jsonl"


def max_new_tokens(model):
    """Reasoning models (srg and its ablations) get room for the reasoning before the answer."""
    if model is not None and is_reasoning_model(model):  # rules/synthesize.smk
        return CFG["srg"]["max_new_tokens"]
    return CFG["generation"]["max_new_tokens"]


def sampling_params(mode, model=None):
    g, b = CFG["generation"], CFG["bon"]
    if mode == "greedy":
        return {"n": 1, "greedy": True, "max_new_tokens": max_new_tokens(model), "seed": CFG["seed"]}
    if mode == "answer":  # longer greedy answers, used as training targets
        return {"n": 1, "greedy": True, "max_new_tokens": CFG["rt"]["target_max_new_tokens"], "seed": CFG["seed"]}
    return {"n": b["n"], "greedy": False, "temperature": b["temperature"], "top_p": b["top_p"],
            "top_k": 0, "max_new_tokens": max_new_tokens(model), "seed": CFG["seed"]}


def generation_params(mode, model=None):
    g = CFG["generation"]
    system = model_system_prompt(model) if model is not None else CFG["model"]["system_prompt"]
    opts = {"dtype": CFG["model"]["dtype"], "batch_size": g["batch_size"],
            "max_prompt_tokens": g["max_prompt_tokens"], "threads": job_threads(), "system_prompt": system}
    opts.update({k: g[k] for k in BACKEND_KEYS.get(g["backend"], ())})
    if g["backend"] == "vllm":
        opts["seed"] = CFG["seed"]
    return {"backend": g["backend"], "shard_size": g["shard_size"], "sampling": sampling_params(mode, model),
            "backend_options": opts}


# generation.* keys each backend takes besides the common ones (srg.vllm_backend, srg.openai_backend)
BACKEND_KEYS = {
    "vllm": ("tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "enforce_eager"),
    "openai": ("base_url", "api_model", "api_key_env", "request_timeout", "max_retries", "concurrency"),
}
JUDGE_KEYS = {
    "keyword": ("prefix_chars",),
    "llamaguard": ("model", "engine", "dtype", "batch_size", "prefix_chars"),
    "llm": ("model", "base_url", "api_key_env", "concurrency"),
}


def judge_spec(name):
    """{"name", "options"} of one judge, options taken from the judge section."""
    return {"name": name, "options": {k: CFG["judge"][k] for k in JUDGE_KEYS[name] if CFG["judge"][k] is not None}}


def generation_gpus():
    """GPUs of one generation job (the `gpu` resource): vllm's tensor-parallel size, else 0."""
    return CFG["generation"]["tensor_parallel_size"] if CFG["generation"]["backend"] == "vllm" else 0


def model_job_gpus():
    """GPUs of a job that loads one torch model onto one device (`cuda` when available:
    hidden_states, answer_loglik, an hf teacher): 1 where generation runs on GPUs (vllm), else 0."""
    return 1 if CFG["generation"]["backend"] == "vllm" else 0


def papermill(nb_name, pin=False):
    """Shell command that executes notebooks/<nb_name>.ipynb with the rule's JSON params.

    pin: the rule declares a `gpu` resource; prefix GPU_PIN (nothing unless compute.pin_gpus).
    """
    return (GPU_PIN if pin else "") + (f"papermill {NOTEBOOKS}/{nb_name}.ipynb {{output.nb}} -k python3 --log-output "
            "-y {params.nb:q} > {log} 2>&1")


def job_threads():
    """Threads of one model job: generation.threads, or every core when it is 0."""
    return CFG["generation"]["threads"] or workflow.cores


# Prefix for shell commands of model jobs: torch/OpenMP use exactly the rule's threads.
THREADS_ENV = "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "

# Prefix for the command of every rule that declares a `gpu` resource (after THREADS_ENV):
# `python -m srg.gpus` claims that many free GPUs (flock'ed lock files, shared by every job on the
# machine), sets CUDA_VISIBLE_DEVICES for the command and frees them when it exits. Snakemake's
# `--resources gpu=N` only counts GPUs. Off ("") by default, so that shell commands, and with them
# Snakemake's code rerun trigger, stay byte-identical; config/paper.yaml turns it on.
GPU_PIN = "python -m srg.gpus --n {resources.gpu} -- " if CFG["compute"]["pin_gpus"] else ""
