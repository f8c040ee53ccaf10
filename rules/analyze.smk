# Analyses over judged generations: Best-of-N (C1). Later stages add their own.
rule bon_analysis:
    """notebooks/bon_analysis.ipynb: ASR@N curves with CIs, results/bon/<model>.csv, C1 claims."""
    input:
        notebook=notebook_source("bon_analysis"),
        judged=[p for m in BON_SAMPLED for p in judged([m], bon_evalsets(m))],
        calibration=f"{RESULTS}/judges/keyword_calibration.json",
    output:
        nb=f"{RESULTS}/notebooks/bon_analysis.ipynb",
        fig=report(
            f"{RESULTS}/figures/bon_curves.png",
            caption="../report/bon_curves.rst",
            category="Figures",
            subcategory="stage notebooks",
        ),
        tables=expand(f"{RESULTS}/bon/{{model}}.csv", model=CFG["bon"]["models"]),
        extrapolation=f"{RESULTS}/bon/extrapolation.csv",
        claims=f"{RESULTS}/claims/c1.json",
    log:
        log_path("bon_analysis"),
    benchmark:
        bench_path("bon_analysis")
    params:
        nb=as_json(
            {
                "results_dir": RESULTS,
                "models": CFG["bon"]["models"],
                "evalsets": EVALSETS,
                "ood_evalsets": OOD_SETS,
                "model_evalsets": {m: bon_evalsets(m) for m in BON_SAMPLED},
                "replicas": BON_REPLICAS,
                "n": CFG["bon"]["n"],
                "temperature": CFG["bon"]["temperature"],
                "top_p": CFG["bon"]["top_p"],
                "n_bootstrap": CFG["bon"]["n_bootstrap"],
                "ci": CFG["bon"]["ci"],
                "seed": CFG["seed"],
                "figure": f"{RESULTS}/figures/bon_curves.png",
                "claims_out": f"{RESULTS}/claims/c1.json",
                "config_name": CFG["name"],
                "selected_against": selected_against(),
                "control": "base" if "base" in CFG["bon"]["models"] else None,
                "margin": CFG["claims"]["c1_margin"],
                "calibration": f"{RESULTS}/judges/keyword_calibration.json",
                "extrapolation_out": f"{RESULTS}/bon/extrapolation.csv",
                "extrapolate_to": CFG["bon"]["extrapolate_to"],
                "extrapolation_bootstrap": CFG["bon"]["extrapolation_bootstrap"],
            }
        ),
    shell:
        papermill("bon_analysis")


rule claims:
    """Merge every stage's claim fragment into results/claims.json."""
    input:
        CLAIM_FRAGMENTS,
    output:
        f"{RESULTS}/claims.json",
    log:
        log_path("claims"),
    benchmark:
        bench_path("claims")
    params:
        name=CFG["name"],
        p=as_json({"primary": CFG["claims"]["primary"], "alpha": CFG["claims"]["alpha"]}),
    shell:
        "python -m srg claims --name {params.name} --out {output} --params {params.p:q} {input} > {log} 2>&1"
