# Shared setup: the validated config, paths, and every helper the stage files use. Stage files
# (rules/<stage>.smk) hold rules only; what a run builds is final_targets() (rule all).
import dataclasses
import json
import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

import srg.config as srg_config
from srg import sources as srg_sources
from srg.attacks import ATTACKS as SRG_ATTACKS
from srg.models import base_model_ref, resolve_dtype
from srg.reasoning import ReasoningFormat
from srg.synthesis import guideline_system_prompt, load_guidelines, make_variant, select

try:
    CFG = srg_config.validate(
        srg_config.resolve_run_config(
            dict(config),
            [str(f) for f in workflow.config_settings.configfiles],
            Path(workflow.basedir) / "config" / "default.yaml",
        )
    )
    srg_config.check_environment(CFG)
except srg_config.ConfigError as exc:
    raise WorkflowError(str(exc))


def workdir_relative(path):
    """``path`` relative to the working directory when it lies inside it, else as given. Recorded
    inputs and params then name repo files the same way in any clone (a moved run can still be
    replanned by mtimes and missing metadata; README "Relocation")."""
    absolute, cwd = os.path.abspath(path), os.getcwd()
    if absolute == cwd or absolute.startswith(cwd + os.sep):
        return os.path.relpath(absolute, cwd)
    return str(path)


RES = str(Path(CFG["paths"]["resources"]))
RESULTS = str(Path(CFG["paths"]["results"]))
NOTEBOOKS = Path(workdir_relative(Path(workflow.basedir) / "notebooks"))
SOURCES = srg_sources.load_sources()
WHEEL_FILES = {spec["filename"]: name for name, spec in SOURCES["wheels"].items()}
BASE = base_model_ref(CFG["model"]["base"], RES)
if Path(BASE.path).is_absolute():  # a local checkpoint (resources/models/...), not a hub id
    BASE = dataclasses.replace(BASE, path=workdir_relative(BASE.path))
# model.dtype as this machine runs it ("bfloat16_if_native" -> bfloat16 or float32; provenance records it)
MODEL_DTYPE = resolve_dtype(CFG["model"]["dtype"])
PROMPT_SETS = [
    "train_harmful",
    "train_benign",
    "id_eval",
    "overrefusal",
    "helpfulness",
    "dev_harmful",
    "dev_benign",
    "dev_overrefusal",
]
DEV_SETS = ["dev_harmful", "dev_benign", "dev_overrefusal"]  # gates and tuned values; never scored as results
OOD_SETS = list(CFG["evalsets"])
EVALSETS = ["id_eval", *OOD_SETS]  # harmful eval sets: ID + every OOD attack
ALL_EVALSETS = [*EVALSETS, "overrefusal", "helpfulness"]
EXTRA_JUDGES = list(CFG["judge"]["agreement_with"])  # run beside judge.name; kappa per eval set


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


def model_input_of(name):
    """The file dependency of a model: its converted/trained directory, if the DAG makes it."""
    if name == "base":
        return [BASE.path] if BASE.converted_from else []
    return [model_path(name)]


def model_input(wildcards):
    return model_input_of(wildcards.model)


def prompt_file(name):
    return f"{RESULTS}/prompts/{name}.jsonl"


def evalset_file(wildcards):
    return prompt_file(wildcards.evalset)


def max_new_tokens(model):
    """Reasoning models (srg and its ablations) get room for the reasoning before the answer."""
    if model is not None and is_reasoning_model(model):
        return CFG["srg"]["max_new_tokens"]
    return CFG["generation"]["max_new_tokens"]


def sampling_params(mode, model=None):
    g, b = CFG["generation"], CFG["bon"]
    if mode == "greedy":
        return {"n": 1, "greedy": True, "max_new_tokens": max_new_tokens(model), "seed": CFG["seed"]}
    if mode == "answer":  # longer greedy answers, used as training targets
        return {"n": 1, "greedy": True, "max_new_tokens": CFG["rt"]["target_max_new_tokens"], "seed": CFG["seed"]}
    return {
        "n": b["n"],
        "greedy": False,
        "temperature": b["temperature"],
        "top_p": b["top_p"],
        "top_k": 0,
        "max_new_tokens": max_new_tokens(model),
        "seed": CFG["seed"],
    }


def generation_params(mode, model=None):
    g = CFG["generation"]
    system = model_system_prompt(model) if model is not None else CFG["model"]["system_prompt"]
    opts = {
        "dtype": MODEL_DTYPE,
        "batch_size": g["batch_size"],
        "max_prompt_tokens": g["max_prompt_tokens"],
        "threads": job_threads(),
        "system_prompt": system,
    }
    opts.update({k: g[k] for k in BACKEND_KEYS.get(g["backend"], ())})
    if g["backend"] == "vllm":
        opts["seed"] = CFG["seed"]
    return {
        "backend": g["backend"],
        "shard_size": g["shard_size"],
        "sampling": sampling_params(mode, model),
        "backend_options": opts,
        **(
            {"budget": reasoning_budget()}
            if model is not None and is_reasoning_model(model) and mode != "answer"
            else {}
        ),
    }


def dev_generation_params(model):
    """The training gate's decoding of the dev split: the model's greedy evaluation settings
    (generation_params), on the hf backend with its options where another backend is configured
    (the gate runs inside the training job)."""
    p = generation_params("greedy", model)
    if p["backend"] != "hf":
        keep = ("dtype", "batch_size", "max_prompt_tokens", "system_prompt")
        p = {**p, "backend": "hf", "backend_options": {k: p["backend_options"][k] for k in keep}}
    return {**p, "backend_options": {**p["backend_options"], "threads": train_threads()}}


def reasoning_budget():
    """srg.generation.ReasoningBudget of every reasoning model (README "Reasoning budget"): the
    answer gets the plain models' budget, the reasoning srg.reasoning_tokens (null: the rest of
    srg.max_new_tokens); None without srg.budget_forcing (free decoding up to srg.max_new_tokens)."""
    if not CFG["srg"]["budget_forcing"]:
        return None
    answer = CFG["generation"]["max_new_tokens"]
    reasoning = CFG["srg"]["reasoning_tokens"] or CFG["srg"]["max_new_tokens"] - answer
    return {
        "open_tag": FMT.open_tag,
        "close_tag": FMT.close_tag,
        "reasoning_tokens": reasoning,
        "answer_tokens": answer,
    }


# generation.* keys each backend takes besides the common ones (srg.backends.vllm, srg.backends.openai)
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


def train_job_gpus():
    """GPUs of one training job (the `gpu` resource): compute.train_gpus where the run is on GPUs
    (vllm generation), else 0. A CPU run that claimed 1 would train one model at a time."""
    return CFG["compute"]["train_gpus"] if CFG["generation"]["backend"] == "vllm" else 0


def model_job_gpus():
    """GPUs of a job that loads one torch model onto one device (`cuda` when available:
    hidden_states, answer_loglik, an hf teacher): 1 where generation runs on GPUs (vllm), else 0."""
    return 1 if CFG["generation"]["backend"] == "vllm" else 0


def papermill(nb_name, pin=False):
    """Shell command that executes the rule's ``input.notebook`` (notebook_source(nb_name)) with the
    rule's JSON params; the executed copy is ``output.nb``.

    pin: the rule declares a `gpu` resource; prefix GPU_PIN (nothing unless compute.pin_gpus).
    """
    return (GPU_PIN if pin else "") + (
        "papermill {input.notebook} {output.nb} -k python3 --log-output -y {params.nb:q} > {log} 2>&1"
    )


def job_threads():
    """Threads of one model job: generation.threads, or every core when it is 0."""
    return CFG["generation"]["threads"] or workflow.cores


def train_threads():
    """Threads of one training job: compute.train_threads, or every core when it is 0."""
    return CFG["compute"]["train_threads"] or workflow.cores


# Prefix for shell commands of model jobs: torch/OpenMP use exactly the rule's threads.
THREADS_ENV = "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "

# Prefix for the command of every rule that declares a `gpu` resource (after THREADS_ENV):
# `python -m srg.gpus` claims that many free GPUs (flock'ed lock files, shared by every job on the
# machine), sets CUDA_VISIBLE_DEVICES for the command and frees them when it exits. Snakemake's
# `--resources gpu=N` only counts GPUs. Off ("") by default, so that shell commands, and with them
# Snakemake's code rerun trigger, stay byte-identical; config/paper.yaml turns it on.
GPU_PIN = "python -m srg.gpus --n {resources.gpu} -- " if CFG["compute"]["pin_gpus"] else ""


# --- SRG variants and their synthesis ------------------------------------------------------------
GUIDELINES_FILE = str(srg_config._guidelines_path(CFG))
FMT = ReasoningFormat(**CFG["reasoning"])
GUIDELINES = load_guidelines(GUIDELINES_FILE) if "srg" in CFG["models"] else []
_IDS = [g.id for g in GUIDELINES]


def srg_variants():
    """SRG and each ablation (name -> synthesis.Variant); empty when srg is not a model."""
    if "srg" not in CFG["models"]:
        return {}
    out = {"srg": make_variant("srg", _IDS, CFG["guidelines"]["use"])}
    for name, spec in CFG["ablations"].items():
        ids = spec["guidelines"] if spec.get("guidelines") is not None else CFG["guidelines"]["use"]
        out[name] = make_variant(
            name, _IDS, ids, spec["drop"], spec["rejection_sampling"], spec["context_distillation"]
        )
    return out


VARIANTS = srg_variants()
# Scaffold mode: every variant with guidelines reuses one teacher run over the union of their
# guidelines (a variant drops the other lines when it renders, srg.scaffold.render).
SCAFFOLD_SET = make_variant("scaffold", _IDS, [g for g in _IDS if any(g in v.guidelines for v in VARIANTS.values())])


def teacher_key(variant):
    if CFG["synthesis"]["mode"] == "scaffold" and variant.guidelines:
        return SCAFFOLD_SET.teacher_key
    return variant.teacher_key


TEACHER_KEYS = {
    teacher_key(v): (SCAFFOLD_SET.guidelines if teacher_key(v) == SCAFFOLD_SET.teacher_key else v.guidelines)
    for v in VARIANTS.values()
}


# Training-seed replicates (config `seeds`): <model>_seed<s> is <model> retrained with training
# seed s on the same data, greedy-evaluated on the same sets; C3/C4 fold the seed spread in.
SEED_REPLICAS = srg_config.seed_replicas(CFG)


def origin(name):
    """The model a seed replicate repeats (the name itself otherwise)."""
    return SEED_REPLICAS[name][0] if name in SEED_REPLICAS else name


def replicas_of(model):
    return [r for r, (m, _) in SEED_REPLICAS.items() if m == model]


def is_reasoning_model(name):
    return origin(name) in VARIANTS


def model_system_prompt(name):
    """The no-context-distillation ablation keeps the guidelines in its system prompt at test time."""
    v = VARIANTS.get(origin(name))
    if v is not None and not v.context_distillation:
        return guideline_system_prompt(select(GUIDELINES, v.guidelines), FMT)
    return CFG["model"]["system_prompt"]


def teacher_model_path():
    m = CFG["synthesis"]["teacher"]["model"]
    return BASE.path if m == "base" else m


def teacher_model_input(wildcards):
    t = CFG["synthesis"]["teacher"]
    if t["backend"] == "openai" or t["model"] != "base":
        return []
    return [BASE.path] if BASE.converted_from else []


def teacher_gpus():
    """GPUs of the teacher job: a local vllm teacher's tensor_parallel_size (default 1); an hf
    teacher is one torch model (model_job_gpus); an API teacher needs none."""
    t = CFG["synthesis"]["teacher"]
    if t["backend"] == "vllm":
        return int(t["options"].get("tensor_parallel_size", 1))
    return model_job_gpus() if t["backend"] == "hf" else 0


def teacher_generation_params():
    s, t, g = CFG["synthesis"], CFG["synthesis"]["teacher"], CFG["generation"]
    opts = (
        {
            "dtype": MODEL_DTYPE,
            "batch_size": g["batch_size"],
            "max_prompt_tokens": g["max_prompt_tokens"],
            "threads": job_threads(),
            "system_prompt": CFG["model"]["system_prompt"],
        }
        if t["backend"] == "hf"
        else {}
    )
    return {
        "backend": t["backend"],
        "shard_size": g["shard_size"],
        "sampling": {
            "n": s["k"],
            "greedy": False,
            "temperature": s["temperature"],
            "top_p": s["top_p"],
            "top_k": 0,
            "max_new_tokens": s["max_new_tokens"],
            "seed": CFG["seed"],
        },
        "backend_options": {**opts, **t["options"]},
    }


def scaffold_teacher_params(tkey):
    """srg scaffold-teacher --params: backend, guideline set, scaffold budget and sampling."""
    s = CFG["synthesis"]
    gen = teacher_generation_params()
    return {
        "backend": gen["backend"],
        "backend_options": gen["backend_options"],
        "file": GUIDELINES_FILE,
        "guidelines": list(TEACHER_KEYS[tkey]),
        "format": CFG["reasoning"],
        "scaffold": {
            **s["scaffold"],
            "k": s["k"],
            "temperature": s["temperature"],
            "top_p": s["top_p"],
            "seed": CFG["seed"],
        },
    }


def synthesis_nb_params(variant):
    v = VARIANTS[variant]
    s = CFG["synthesis"]
    return {
        "variant": v.name,
        "guideline_ids": list(v.guidelines),
        "guidelines_file": GUIDELINES_FILE,
        "rejection_sampling": v.rejection_sampling,
        "context_distillation": v.context_distillation,
        "rt_data": f"{RESULTS}/data/rt_train.jsonl",
        "teacher_prompts": f"{RESULTS}/synthesis/teacher/{teacher_key(v)}/prompts.jsonl",
        "candidates": f"{RESULTS}/synthesis/teacher/{teacher_key(v)}/candidates.jsonl",
        "out_data": f"{RESULTS}/data/{v.name}_train.jsonl",
        "out_stats": f"{RESULTS}/synthesis/{v.name}/stats.json",
        "out_candidates": f"{RESULTS}/synthesis/{v.name}/screened.jsonl",
        "teacher": {k: CFG["synthesis"]["teacher"][k] for k in ("backend", "model")},
        "per_kind": s["per_kind"],
        "fallback": s["fallback"],
        "min_ok_lines": s["min_ok_lines"],
        "min_examples": s["min_examples"],
        "request_words": s["request_words"],
        "n_examples": s["n_examples"],
        "max_chars": s["max_chars"],
        "format": CFG["reasoning"],
        "resources": RES,
        "config_name": CFG["name"],
    }


# --- attacks ------------------------------------------------------------------------------------
def attack_inputs(wildcards):
    spec = CFG["evalsets"][wildcards.evalset]
    if spec["attack"] == "none":
        return {"file": spec["file"]}
    inputs = {"source": f"{RESULTS}/prompts/{spec['source']}.jsonl", "wheels": all_wheels()}
    if SRG_ATTACKS[spec["attack"]].needs_model:
        for role in ("attacker", "target") if spec["attack"] == "pair" else ("attacker",):
            m = spec[role]
            if m == "base":
                inputs[role] = [BASE.path] if BASE.converted_from else []
            else:
                inputs[role] = model_path(m)
    return inputs


def attack_gpus(evalset):
    """GPUs of one attack job: those of a generation job for an attacker-model attack (PAP, PAIR)."""
    spec = CFG["evalsets"][evalset]
    return generation_gpus() if spec["attack"] != "none" and SRG_ATTACKS[spec["attack"]].needs_model else 0


def attack_params(evalset):
    spec = CFG["evalsets"][evalset]
    p = {
        "spec": spec,
        "seed": CFG["seed"],
        "judge": CFG["judge"]["name"],
        "backend": CFG["generation"]["backend"],
        "backend_options": generation_params("greedy")["backend_options"],
        "attacker_max_new_tokens": 160,
        "target_max_new_tokens": CFG["generation"]["max_new_tokens"],
    }
    if spec["attack"] in SRG_ATTACKS and SRG_ATTACKS[spec["attack"]].needs_model:
        p["attacker_path"] = model_path(spec["attacker"])
        if spec["attack"] == "pair":
            p["target_path"] = model_path(spec["target"])
            p["success_rule"] = "taxonomy: compliance with the goal"
    return as_json(p)


def selected_against():
    """Eval set -> the model its prompts were optimised against (PAIR's target): that model's
    C1 must not use the set (selection on its own greedy outputs inflates its BoN drop)."""
    return {e: s["target"] for e, s in CFG["evalsets"].items() if s.get("attack") == "pair"}


# --- training -----------------------------------------------------------------------------------
def train_data(wildcards):
    """A seed replicate trains on its model's data."""
    return f"{RESULTS}/data/{origin(wildcards.method)}_train.jsonl"


def train_section(method):
    """RT has its own section; srg and every ablation share srg's (same budget knobs)."""
    return CFG["rt"] if origin(method) == "rt" else CFG["srg"]


def train_config(method):
    """The training section's knobs; a seed replicate changes only the training seed."""
    cfg = dict(train_section(method)["training"])
    if method in SEED_REPLICAS:
        cfg["seed"] = SEED_REPLICAS[method][1]
    return cfg


TRAINED = ["rt", *VARIANTS, *SEED_REPLICAS]


# --- analyses -----------------------------------------------------------------------------------
def judged(models, evalsets, modes=("greedy", "sample")):
    return [f"{RESULTS}/judgements/{m}/{e}.{mode}.jsonl" for m in models for e in evalsets for mode in modes]


def bon_evalsets(model):
    """The harmful eval sets a BoN model (or its seed replicate) is sampled on: bon.evalsets[model],
    else all (in EVALSETS order)."""
    chosen = CFG["bon"]["evalsets"].get(origin(model))
    return [e for e in EVALSETS if chosen is None or e in chosen]


# bon.seed_replicas: a BoN model's training-seed replicates are sampled on its sets too (C1 pools seeds)
BON_REPLICAS = {m: replicas_of(m) for m in CFG["bon"]["seed_replicas"]}
BON_SAMPLED = [*CFG["bon"]["models"], *(r for rs in BON_REPLICAS.values() for r in rs)]


PROBE_ID_SETS = ["train_harmful", "train_benign"]
PROBE_NB_KEYS = ["layer", "pooling", "projection", "n_bootstrap", "ci", "test_frac", "probe_C", "cv", "max_points"]


PROBE_PLAIN_SET = "id_eval"  # the control: the plain held-out prompts every attack set transforms


def probing_sets():
    return PROBE_ID_SETS + [PROBE_PLAIN_SET] + list(OOD_SETS)


def hidden_params():
    p = CFG["probing"]
    return {
        "dtype": p["dtype"] or MODEL_DTYPE,
        "batch_size": p["batch_size"],
        "shard_size": p["shard_size"],
        "max_prompts": p["max_prompts"],
        "max_prompt_tokens": CFG["generation"]["max_prompt_tokens"],
        "system_prompt": CFG["model"]["system_prompt"],
        "threads": job_threads(),
    }


def hidden_file(model, evalset):
    return f"{RESULTS}/hidden/{model}/{evalset}.npz"


EVAL_MODELS = srg_config.evaluated_models(CFG)
ABLATIONS = [m for m in EVAL_MODELS if m in CFG["ablations"]]


def evalsets_of(model):
    """Ablations are evaluated on evaluation.ablation_evalsets (null = all), the rest on every set
    (a seed replicate on its model's)."""
    model = origin(model)
    if model in ABLATIONS and CFG["evaluation"]["ablation_evalsets"]:
        return [e for e in ALL_EVALSETS if e in CFG["evaluation"]["ablation_evalsets"]]
    return ALL_EVALSETS


def helpfulness_generations(wildcards):
    if is_reasoning_model(wildcards.model):  # the reference is scored after the model's own reasoning
        return [f"{RESULTS}/generations/{wildcards.model}/helpfulness.greedy.jsonl"]
    return []


REASONING_EVALUATED = [m for m in [*EVAL_MODELS, *SEED_REPLICAS] if is_reasoning_model(m)]


def closure_inputs():
    """Greedy generation files of every evaluated reasoning model: dev split and eval sets."""
    return [generation_file(m, e, "greedy") for m in REASONING_EVALUATED for e in [*DEV_SETS, *evalsets_of(m)]]


def greedy_pairs():
    return [(m, e) for m in EVAL_MODELS for e in evalsets_of(m)]


def generation_file(model, evalset, mode):
    return f"{RESULTS}/generations/{model}/{evalset}.{mode}.jsonl"


def generation_bundles():
    """One generation job per (model, mode): name -> {model, mode, evalsets, priority}. A job loads
    the model once for all its prompt sets (a process's imports and model load cost ~10 s, and the
    DAG ran ~100 one-set jobs); each set keeps its own output file and content-keyed shards.
    Every generation file some rule reads is in exactly one bundle:
    - greedy: every evaluated model (and seed replicate) on its eval sets, BoN models on their sets;
    - sample: BoN models on their sets;
    - the base model's dev-split answers (every training gate's reference) and RT's benign targets
      (answer mode) are bundles of their own, at priority 10: the trainings wait on them."""
    wanted = {(m, e, "greedy") for m in [*EVAL_MODELS, *SEED_REPLICAS] for e in evalsets_of(m)}
    for m in BON_SAMPLED:
        wanted |= {(m, e, mode) for e in bon_evalsets(m) for mode in ("greedy", "sample")}
    wanted |= {("base", e, "greedy") for e in DEV_SETS} | {("base", "train_benign", "answer")}
    # a trained model's dev-split generations come from its training gate (rule train), decoded as
    # it is evaluated: the dev split is decoded once per model
    order = {e: i for i, e in enumerate([*DEV_SETS, "train_benign", *ALL_EVALSETS])}
    bundles = {}
    for m, e, mode in sorted(wanted, key=lambda t: (t[0], t[2], order[t[1]])):
        early = m == "base" and (mode == "answer" or e in DEV_SETS)
        name = f"{m}_{mode}_dev" if early and mode == "greedy" else f"{m}_{mode}"
        # the longest jobs (reasoning models' budget) start first among the rest: less idle tail
        priority = 10 if early else 5 if is_reasoning_model(m) else 0
        b = bundles.setdefault(name, {"model": m, "mode": mode, "evalsets": [], "priority": priority})
        b["evalsets"].append(e)
    return bundles


GENERATION_BUNDLES = generation_bundles()


# --- report -------------------------------------------------------------------------------------
def caption(name):
    """A caption file report/<name>.rst (report() resolves it relative to this .smk file)."""
    return f"../report/{name}.rst"


def stage_figure(path, name):
    """A stage notebook's PNG, flagged for the report (category Figures, subcategory by stage)."""
    return report(path, caption=caption(name), category="Figures", subcategory="stage notebooks")


FINAL_FIGURES = ["final_bon", "final_representations", "final_main", "final_ablations", "final_claims"]


def figures_params():
    bon_prefix, bon_tables = f"{RESULTS}/bon/", {}
    for path in figure_inputs():
        if path.startswith(bon_prefix) and path.endswith(".csv"):
            bon_tables[path[len(bon_prefix) : -len(".csv")]] = path
    models = list(dict.fromkeys([*CFG["models"], *bon_tables]))
    return as_json(
        {
            "results_dir": RESULTS,
            "config_name": CFG["name"],
            "models": models,
            "bon_tables": bon_tables,
            "probing_metrics": f"{RESULTS}/probing/metrics.csv",
            "main_table": f"{RESULTS}/tables/main.csv",
            "ablations_table": f"{RESULTS}/tables/ablations.csv",
            "claims_json": f"{RESULTS}/claims.json",
            "evalset_order": ["id_eval", *OOD_SETS, "overrefusal", "helpfulness"],
            "ood_sets": list(OOD_SETS),
            "id_harm": "train_harmful",
            "probe_layer": CFG["probing"]["layer"],
            **{f"fig_{name[len('final_'):]}": f"{RESULTS}/figures/{name}.png" for name in FINAL_FIGURES},
            "claims_summary_csv": f"{RESULTS}/tables/claims_summary.csv",
        }
    )


# --- what the run builds ------------------------------------------------------------------------
CLAIM_FRAGMENTS = [f"{RESULTS}/claims/c1.json", f"{RESULTS}/claims/c2.json", f"{RESULTS}/claims/c3_c4.json"]


def figure_inputs():
    """Files the final figures notebook reads: claims, every BoN table, probing metrics, main and
    ablation tables (a bon/<model>.csv becomes a BoN panel)."""
    return [
        f"{RESULTS}/claims.json",
        *[f"{RESULTS}/bon/{m}.csv" for m in CFG["bon"]["models"]],
        f"{RESULTS}/probing/metrics.csv",
        f"{RESULTS}/tables/main.csv",
        f"{RESULTS}/tables/ablations.csv",
    ]


def executed_notebooks():
    """Every notebook the run executes (each one is rendered to HTML for the report)."""
    stages = [
        "data_overview",
        "bon_analysis",
        *(f"guideline_synthesis_{v}" for v in VARIANTS),
        "evaluation",
        "domain_adaptation",
        "figures",
        *(["train_rt"] if "rt" in CFG["models"] else []),
        *(f"train_{v}" for v in VARIANTS),
        *(f"train_{r}" for r in SEED_REPLICAS),
    ]
    return [f"{RESULTS}/notebooks/{nb}.ipynb" for nb in stages]


def notebook_htmls():
    return [f"{RESULTS}/report/notebooks/{Path(nb).stem}.html" for nb in executed_notebooks()]


def truncation_systems():
    """System prompts the eval sets are encoded under: the default and each distinct model's own."""
    out = {"default": CFG["model"]["system_prompt"]}
    for m in [*CFG["models"], *VARIANTS]:
        sp = model_system_prompt(m)
        if sp not in out.values():
            out[m] = sp
    return out


def final_targets():
    """rule all: every executed notebook, claims.json, the report's HTML notebooks and provenance,
    and the generation benchmark when benchmark.enabled."""
    bench = [f"{RESULTS}/benchmarks/generation.json"] if CFG["benchmark"]["enabled"] else []
    return [
        *executed_notebooks(),
        f"{RESULTS}/claims.json",
        f"{RESULTS}/data/truncation.json",
        *([f"{RESULTS}/tables/closure.json"] if REASONING_EVALUATED else []),
        *bench,
        *notebook_htmls(),
        f"{RESULTS}/report/provenance.json",
    ]


NOTEBOOK_SCRIPTS = sorted(p.stem for p in NOTEBOOKS.glob("*.py"))


def notebook_source(name):
    """The .ipynb papermill executes: notebooks/<name>.py converted by jupytext (rule notebook_source)."""
    return f"{RESULTS}/jupytext/{name}.ipynb"
