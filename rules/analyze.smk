# Analyses over judged generations: Best-of-N (C1). Later stages add their own.
CLAIM_FRAGMENTS = []  # every stage that tests a claim appends its fragment; merged into claims.json


def judged(models, evalsets, modes=("greedy", "sample")):
    return [f"{RESULTS}/judgements/{m}/{e}.{mode}.jsonl" for m in models for e in evalsets for mode in modes]


def bon_evalsets(model):
    """The harmful eval sets a BoN model is sampled on: bon.evalsets[model], else all (in EVALSETS order)."""
    chosen = CFG["bon"]["evalsets"].get(model)
    return [e for e in EVALSETS if chosen is None or e in chosen]


rule bon_analysis:
    """notebooks/bon_analysis.ipynb: ASR@N curves with CIs, results/bon/<model>.csv, C1 claims."""
    input:
        notebook=NOTEBOOKS / "bon_analysis.ipynb",
        judged=[p for m in CFG["bon"]["models"] for p in judged([m], bon_evalsets(m))],
    output:
        nb=f"{RESULTS}/notebooks/bon_analysis.ipynb",
        fig=report(f"{RESULTS}/figures/bon_curves.png", caption="../report/bon_curves.rst", category="Figures",
                   subcategory="stage notebooks"),
        tables=expand(f"{RESULTS}/bon/{{model}}.csv", model=CFG["bon"]["models"]),
        claims=f"{RESULTS}/claims/c1.json",
    params:
        nb=as_json({
            "results_dir": RESULTS, "models": CFG["bon"]["models"], "evalsets": EVALSETS, "ood_evalsets": OOD_SETS,
            "model_evalsets": {m: bon_evalsets(m) for m in CFG["bon"]["models"]},
            "n": CFG["bon"]["n"], "temperature": CFG["bon"]["temperature"], "top_p": CFG["bon"]["top_p"],
            "n_bootstrap": CFG["bon"]["n_bootstrap"], "ci": CFG["bon"]["ci"], "seed": CFG["seed"],
            "figure": f"{RESULTS}/figures/bon_curves.png", "claims_out": f"{RESULTS}/claims/c1.json",
            "config_name": CFG["name"],
        }),
    log:
        log_path("bon_analysis"),
    benchmark:
        bench_path("bon_analysis")
    shell:
        papermill("bon_analysis")


CLAIM_FRAGMENTS.append(f"{RESULTS}/claims/c1.json")
TARGETS.append(f"{RESULTS}/notebooks/bon_analysis.ipynb")


rule claims:
    """Merge every stage's claim fragment into results/claims.json."""
    input:
        lambda wc: CLAIM_FRAGMENTS,
    output:
        f"{RESULTS}/claims.json",
    params:
        name=CFG["name"],
    log:
        log_path("claims"),
    benchmark:
        bench_path("claims")
    shell:
        "python -m srg claims --name {params.name} --out {output} {input} > {log} 2>&1"


TARGETS.append(f"{RESULTS}/claims.json")
