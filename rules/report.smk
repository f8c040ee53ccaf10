# Notebooks executed by papermill; each executed notebook is a declared output.


rule data_overview:
    """Set sizes, truncated examples, judge calibration, the base model's greedy ID ASR."""
    input:
        notebook=NOTEBOOKS / "data_overview.ipynb",
        prompts=expand(f"{RESULTS}/prompts/{{name}}.jsonl", name=PROMPT_SETS),
        calibration=f"{RESULTS}/judges/keyword_calibration.json",
        judged=f"{RESULTS}/judgements/base/id_eval.greedy.jsonl",
        generations=f"{RESULTS}/generations/base/id_eval.greedy.jsonl",
    output:
        nb=f"{RESULTS}/notebooks/data_overview.ipynb",
        fig=f"{RESULTS}/figures/base_id_asr.png",
        table=f"{RESULTS}/tables/base_id_asr.csv",
    params:
        # params must not read input/output (snakemake does not record those for rerun triggers)
        nb=as_json({
            "results_dir": RESULTS, "prompt_sets": PROMPT_SETS,
            "calibration": f"{RESULTS}/judges/keyword_calibration.json",
            "judged": f"{RESULTS}/judgements/base/id_eval.greedy.jsonl",
            "generations": f"{RESULTS}/generations/base/id_eval.greedy.jsonl",
            "figure": f"{RESULTS}/figures/base_id_asr.png", "table": f"{RESULTS}/tables/base_id_asr.csv",
            "config_name": CFG["name"],
            "n_bootstrap": CFG["bon"]["n_bootstrap"], "ci": CFG["bon"]["ci"], "seed": CFG["seed"],
            **CFG["notebooks"]["data_overview"],
        }),
    log:
        log_path("data_overview"),
    benchmark:
        bench_path("data_overview")
    shell:
        papermill("data_overview")


TARGETS.append(f"{RESULTS}/notebooks/data_overview.ipynb")
