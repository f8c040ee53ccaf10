# The main evaluation (greedy, every model incl. ablations): main table, ablation figure, C3 / C4.
rule answer_loglik:
    """Judge-free helpfulness proxy: log-likelihood of MT-Bench reference answers."""
    input:
        prompts=f"{RESULTS}/prompts/helpfulness.jsonl",
        model=model_input,
        generations=helpfulness_generations,
    output:
        f"{RESULTS}/helpfulness/{{model}}.json",
    log:
        f"{RESULTS}/logs/answer_loglik/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/answer_loglik/{{model}}.tsv"
    threads: job_threads()
    resources:
        mem_mb=4000,
        gpu=model_job_gpus(),
    params:
        p=lambda wc: as_json(
            {
                "reasoning": CFG["reasoning"] if is_reasoning_model(wc.model) else None,
                "system_prompt": model_system_prompt(wc.model),
                "dtype": MODEL_DTYPE,
                "threads": job_threads(),
            }
        ),
        model_path=lambda wc: model_path(wc.model),
        gens=lambda wc, input: f"--generations {input.generations}" if input.generations else "",
    shell:
        THREADS_ENV + GPU_PIN + "python -m srg.helpfulness --prompts {input.prompts} --model-path {params.model_path} "
        "--model {wildcards.model} {params.gens} --out {output} --params {params.p:q} > {log} 2>&1"


if EXTRA_JUDGES:  # rules/judge.smk

    rule judge_agreement:
        """Cohen's kappa (unsafe labels) between judge.name and one extra judge, per (model, eval set)."""
        input:
            main=[f"{RESULTS}/judgements/{m}/{e}.greedy.jsonl" for m, e in greedy_pairs()],
            extra=lambda wc: [f"{RESULTS}/judgements_extra/{wc.judge}/{m}/{e}.greedy.jsonl" for m, e in greedy_pairs()],
        output:
            f"{RESULTS}/judges/agreement_{{judge}}.csv",
        log:
            f"{RESULTS}/logs/judge_agreement/{{judge}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/judge_agreement/{{judge}}.tsv"
        wildcard_constraints:
            judge="|".join(EXTRA_JUDGES),
        params:
            pairs=lambda wc: " ".join(
                f"--pair {m}/{e} {RESULTS}/judgements/{m}/{e}.greedy.jsonl "
                f"{RESULTS}/judgements_extra/{wc.judge}/{m}/{e}.greedy.jsonl"
                for m, e in greedy_pairs()
            ),
        shell:
            "python -m srg.judges.agreement {params.pairs} --out {output} > {log} 2>&1"


rule closure:
    """Who closed each reasoning block (model, budget, EOS) and how long the reasoning ran, per
    reasoning model and set: the dev split (sizing evidence) and every eval set (closure target)."""
    input:
        closure_inputs(),
    output:
        f"{RESULTS}/tables/closure.json",
    log:
        log_path("closure"),
    benchmark:
        bench_path("closure")
    params:
        fmt=as_json(CFG["reasoning"]),
    shell:
        "python -m srg closure --out {output} --format {params.fmt:q} {input} > {log} 2>&1"


rule evaluation:
    """notebooks/evaluation.ipynb: main table, SRG vs RT BoN, ablations, C3 and C4 claims."""
    input:
        notebook=notebook_source("evaluation"),
        judged=[f"{RESULTS}/judgements/{m}/{e}.greedy.jsonl" for m in EVAL_MODELS for e in evalsets_of(m)],
        replicas=[f"{RESULTS}/judgements/{r}/{e}.greedy.jsonl" for r in SEED_REPLICAS for e in evalsets_of(r)],
        loglik=[f"{RESULTS}/helpfulness/{m}.json" for m in EVAL_MODELS if "helpfulness" in evalsets_of(m)],
        bon=[f"{RESULTS}/bon/{m}.csv" for m in CFG["bon"]["models"]],
        synthesis=[f"{RESULTS}/synthesis/{v}/stats.json" for v in VARIANTS],
        generations=[f"{RESULTS}/generations/{m}/id_eval.greedy.jsonl" for m in EVAL_MODELS],
        agreement=[f"{RESULTS}/judges/agreement_{j}.csv" for j in EXTRA_JUDGES],
    output:
        nb=f"{RESULTS}/notebooks/evaluation.ipynb",
        main=f"{RESULTS}/tables/main.csv",
        ablations=f"{RESULTS}/tables/ablations.csv",
        fig=stage_figure(f"{RESULTS}/figures/ablations.png", "ablations"),
        bon_fig=stage_figure(f"{RESULTS}/figures/bon_srg_vs_rt.png", "bon_srg_vs_rt"),
        main_fig=stage_figure(f"{RESULTS}/figures/main_asr.png", "main_asr"),
        claims=f"{RESULTS}/claims/c3_c4.json",
    log:
        log_path("evaluation"),
    benchmark:
        bench_path("evaluation")
    params:
        nb=as_json(
            {
                "results_dir": RESULTS,
                "config_name": CFG["name"],
                "seed": CFG["seed"],
                "models": EVAL_MODELS,
                "seed_replicas": {m: replicas_of(m) for m in EVAL_MODELS if replicas_of(m)},
                "ablations": ABLATIONS,
                "labels": {m: CFG["ablations"][m].get("label", m) for m in ABLATIONS},
                "evalsets": {m: evalsets_of(m) for m in [*EVAL_MODELS, *SEED_REPLICAS]},
                "id_set": "id_eval",
                "ood_sets": OOD_SETS,
                "overrefusal_set": "overrefusal",
                "helpfulness_set": "helpfulness",
                "bon_models": CFG["bon"]["models"],
                "bon_n": CFG["bon"]["n"],
                "variants": list(VARIANTS),
                "reasoning_models": list(VARIANTS),
                "n_bootstrap": CFG["bon"]["n_bootstrap"],
                "ci": CFG["bon"]["ci"],
                "id_margin": CFG["evaluation"]["id_margin"],
                "overrefusal_margin": CFG["evaluation"]["overrefusal_margin"],
                "helpfulness_margin": CFG["evaluation"]["helpfulness_margin"],
                "n_examples": CFG["evaluation"]["n_examples"],
                "max_chars": CFG["evaluation"]["max_chars"],
                "main_csv": f"{RESULTS}/tables/main.csv",
                "ablations_csv": f"{RESULTS}/tables/ablations.csv",
                "ablation_fig": f"{RESULTS}/figures/ablations.png",
                "bon_fig": f"{RESULTS}/figures/bon_srg_vs_rt.png",
                "claims_out": f"{RESULTS}/claims/c3_c4.json",
                "judge": CFG["judge"]["name"],
                "agreement": {j: f"{RESULTS}/judges/agreement_{j}.csv" for j in EXTRA_JUDGES},
            }
        ),
    shell:
        papermill("evaluation")
