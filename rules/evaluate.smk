# The main evaluation (greedy, every model incl. ablations): main table, ablation figure, C3 / C4.
EVAL_MODELS = srg_config.evaluated_models(CFG)
ALL_EVALSETS = [*EVALSETS, "overrefusal", "helpfulness"]  # EVALSETS: rules/attacks.smk
ABLATIONS = [m for m in EVAL_MODELS if m in CFG["ablations"]]


def evalsets_of(model):
    """Ablations are evaluated on evaluation.ablation_evalsets (null = all), the rest on every set."""
    if model in ABLATIONS and CFG["evaluation"]["ablation_evalsets"]:
        return [e for e in ALL_EVALSETS if e in CFG["evaluation"]["ablation_evalsets"]]
    return ALL_EVALSETS


def helpfulness_generations(wildcards):
    if is_reasoning_model(wildcards.model):  # the reference is scored after the model's own reasoning
        return [f"{RESULTS}/generations/{wildcards.model}/helpfulness.greedy.jsonl"]
    return []


rule answer_loglik:
    """Judge-free helpfulness proxy: log-likelihood of MT-Bench reference answers."""
    input:
        prompts=f"{RESULTS}/prompts/helpfulness.jsonl",
        model=model_input,
        generations=helpfulness_generations,
    output:
        f"{RESULTS}/helpfulness/{{model}}.json",
    params:
        p=lambda wc: as_json({"reasoning": CFG["reasoning"] if is_reasoning_model(wc.model) else None,
                              "system_prompt": model_system_prompt(wc.model), "dtype": CFG["model"]["dtype"],
                              "threads": job_threads()}),
        model_path=lambda wc: model_path(wc.model),
        gens=lambda wc, input: f"--generations {input.generations}" if input.generations else "",
    threads: job_threads()
    resources:
        mem_mb=4000,
        gpu=model_job_gpus(),
    log:
        f"{RESULTS}/logs/answer_loglik/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/answer_loglik/{{model}}.tsv"
    shell:
        THREADS_ENV + GPU_PIN + "python -m srg.helpfulness --prompts {input.prompts} --model-path {params.model_path} "
        "--model {wildcards.model} {params.gens} --out {output} --params {params.p:q} > {log} 2>&1"


def greedy_pairs():
    return [(m, e) for m in EVAL_MODELS for e in evalsets_of(m)]


if EXTRA_JUDGES:  # rules/judge.smk

    rule judge_agreement:
        """Cohen's kappa (unsafe labels) between judge.name and one extra judge, per (model, eval set)."""
        input:
            main=[f"{RESULTS}/judgements/{m}/{e}.greedy.jsonl" for m, e in greedy_pairs()],
            extra=lambda wc: [f"{RESULTS}/judgements_extra/{wc.judge}/{m}/{e}.greedy.jsonl" for m, e in greedy_pairs()],
        output:
            f"{RESULTS}/judges/agreement_{{judge}}.csv",
        wildcard_constraints:
            judge="|".join(EXTRA_JUDGES),
        params:
            pairs=lambda wc: " ".join(
                f"--pair {m}/{e} {RESULTS}/judgements/{m}/{e}.greedy.jsonl "
                f"{RESULTS}/judgements_extra/{wc.judge}/{m}/{e}.greedy.jsonl" for m, e in greedy_pairs()),
        log:
            f"{RESULTS}/logs/judge_agreement/{{judge}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/judge_agreement/{{judge}}.tsv"
        shell:
            "python -m srg.agreement {params.pairs} --out {output} > {log} 2>&1"


rule evaluation:
    """notebooks/evaluation.ipynb: main table, SRG vs RT BoN, ablations, C3 and C4 claims."""
    input:
        notebook=NOTEBOOKS / "evaluation.ipynb",
        judged=[f"{RESULTS}/judgements/{m}/{e}.greedy.jsonl" for m in EVAL_MODELS for e in evalsets_of(m)],
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
    params:
        nb=as_json({
            "results_dir": RESULTS, "config_name": CFG["name"], "seed": CFG["seed"],
            "models": EVAL_MODELS, "ablations": ABLATIONS,
            "labels": {m: CFG["ablations"][m].get("label", m) for m in ABLATIONS},
            "evalsets": {m: evalsets_of(m) for m in EVAL_MODELS}, "id_set": "id_eval", "ood_sets": OOD_SETS,
            "overrefusal_set": "overrefusal", "helpfulness_set": "helpfulness",
            "bon_models": CFG["bon"]["models"], "bon_n": CFG["bon"]["n"],
            "variants": list(VARIANTS), "reasoning_models": list(VARIANTS),
            "n_bootstrap": CFG["bon"]["n_bootstrap"], "ci": CFG["bon"]["ci"],
            "id_margin": CFG["evaluation"]["id_margin"],
            "overrefusal_margin": CFG["evaluation"]["overrefusal_margin"],
            "helpfulness_margin": CFG["evaluation"]["helpfulness_margin"],
            "n_examples": CFG["evaluation"]["n_examples"], "max_chars": CFG["evaluation"]["max_chars"],
            "main_csv": f"{RESULTS}/tables/main.csv", "ablations_csv": f"{RESULTS}/tables/ablations.csv",
            "ablation_fig": f"{RESULTS}/figures/ablations.png", "bon_fig": f"{RESULTS}/figures/bon_srg_vs_rt.png",
            "claims_out": f"{RESULTS}/claims/c3_c4.json", "judge": CFG["judge"]["name"],
            "agreement": {j: f"{RESULTS}/judges/agreement_{j}.csv" for j in EXTRA_JUDGES},
        }),
    log:
        log_path("evaluation"),
    benchmark:
        bench_path("evaluation")
    shell:
        papermill("evaluation")


CLAIM_FRAGMENTS.append(f"{RESULTS}/claims/c3_c4.json")
TARGETS.append(f"{RESULTS}/notebooks/evaluation.ipynb")
FIGURE_INPUTS.extend([f"{RESULTS}/tables/main.csv", f"{RESULTS}/tables/ablations.csv"])  # rules/report.smk
REPORT_NOTEBOOKS.extend(f"{RESULTS}/notebooks/train_{m}.ipynb" for m in VARIANTS)
