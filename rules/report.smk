# Notebooks executed by papermill; each executed notebook is a declared output. Also the pieces of
# `snakemake --report results/report.html`: report(...) flags (captions in report/*.rst), every
# executed notebook as HTML, and the run's provenance.
rule data_overview:
    """Set sizes, truncated examples, judge calibration, the base model's greedy ID ASR."""
    input:
        notebook=notebook_source("data_overview"),
        prompts=expand(f"{RESULTS}/prompts/{{name}}.jsonl", name=PROMPT_SETS),
        calibration=f"{RESULTS}/judges/keyword_calibration.json",
        judged=f"{RESULTS}/judgements/base/id_eval.greedy.jsonl",
        generations=f"{RESULTS}/generations/base/id_eval.greedy.jsonl",
    output:
        nb=f"{RESULTS}/notebooks/data_overview.ipynb",
        fig=stage_figure(f"{RESULTS}/figures/base_id_asr.png", "base_id_asr"),
        table=f"{RESULTS}/tables/base_id_asr.csv",
    log:
        log_path("data_overview"),
    benchmark:
        bench_path("data_overview")
    params:
        # params must not read input/output (snakemake does not record those for rerun triggers)
        nb=as_json(
            {
                "results_dir": RESULTS,
                "prompt_sets": PROMPT_SETS,
                "calibration": f"{RESULTS}/judges/keyword_calibration.json",
                "judged": f"{RESULTS}/judgements/base/id_eval.greedy.jsonl",
                "generations": f"{RESULTS}/generations/base/id_eval.greedy.jsonl",
                "figure": f"{RESULTS}/figures/base_id_asr.png",
                "table": f"{RESULTS}/tables/base_id_asr.csv",
                "config_name": CFG["name"],
                "n_bootstrap": CFG["bon"]["n_bootstrap"],
                "ci": CFG["bon"]["ci"],
                "seed": CFG["seed"],
                **CFG["notebooks"]["data_overview"],
            }
        ),
    shell:
        papermill("data_overview")


rule figures:
    """notebooks/figures.ipynb: final figures (BoN, representations, main table, ablations, claims)."""
    input:
        notebook=notebook_source("figures"),
        data=figure_inputs(),
    output:
        **{
            name: report(
                f"{RESULTS}/figures/{name}.png", caption=caption(name), category="Figures", subcategory="final"
            )
            for name in FINAL_FIGURES
        },
        **{f"{name}_pdf": f"{RESULTS}/figures/{name}.pdf" for name in FINAL_FIGURES},
        nb=f"{RESULTS}/notebooks/figures.ipynb",
        claims_summary=report(
            f"{RESULTS}/tables/claims_summary.csv", caption=caption("claims_summary"), category="Tables"
        ),
    log:
        log_path("figures"),
    benchmark:
        bench_path("figures")
    params:
        nb=figures_params(),
    shell:
        papermill("figures")


rule notebook_html:
    """An executed notebook as standalone HTML, embedded in the Snakemake report."""
    input:
        f"{RESULTS}/notebooks/{{notebook}}.ipynb",
    output:
        report(
            f"{RESULTS}/report/notebooks/{{notebook}}.html",
            caption=caption("notebook"),
            category="Notebooks",
            labels={"notebook": "{notebook}"},
        ),
    log:
        f"{RESULTS}/logs/notebook_html/{{notebook}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/notebook_html/{{notebook}}.tsv"
    wildcard_constraints:
        notebook="[A-Za-z0-9_]+",
    shell:
        "jupyter nbconvert --to html --stdout {input} > {output} 2> {log}"


rule provenance:
    """Config, git commit and key package versions of the run (shown in the report)."""
    input:
        # reruns whenever a result notebook or the claims change, so it describes the latest results
        notebooks=executed_notebooks(),
        claims=f"{RESULTS}/claims.json",
    output:
        json=report(
            f"{RESULTS}/report/provenance.json",
            caption=os.path.abspath(f"{RESULTS}/report/provenance.rst"),
            category="Provenance",
        ),
        rst=f"{RESULTS}/report/provenance.rst",
    log:
        log_path("provenance"),
    benchmark:
        bench_path("provenance")
    params:
        config=as_json(CFG),
        repo=workdir_relative(workflow.basedir),
    shell:
        "python -m srg.provenance --config-json {params.config:q} --repo {params.repo:q} "
        "--json {output.json} --rst {output.rst} > {log} 2>&1"
