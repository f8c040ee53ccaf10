# Notebooks executed by papermill; each executed notebook is a declared output. Also the pieces of
# `snakemake --report results/report.html`: report(...) flags (captions in report/*.rst), every
# executed notebook as HTML, and the run's provenance.
import os


def caption(name):
    """A caption file report/<name>.rst (report() resolves it relative to this .smk file)."""
    return f"../report/{name}.rst"


def stage_figure(path, name):
    """A stage notebook's PNG, flagged for the report (category Figures, subcategory by stage)."""
    return report(path, caption=caption(name), category="Figures", subcategory="stage notebooks")


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
        fig=stage_figure(f"{RESULTS}/figures/base_id_asr.png", "base_id_asr"),
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


# --- final figures notebook -------------------------------------------------------------------
# Files the figures notebook reads and the DAG makes. Later stages append theirs, e.g.
#   FIGURE_INPUTS += [f"{RESULTS}/tables/main.csv", f"{RESULTS}/tables/ablations.csv", f"{RESULTS}/bon/srg.csv"]
# The rule reads this list lazily (input and params are functions), so appending after this
# file is included works. A bon/<model>.csv in the list becomes a BoN panel; main.csv and
# ablations.csv are read from their fixed paths and their panels are skipped while absent.
FIGURE_INPUTS = [
    f"{RESULTS}/claims.json",
    *[f"{RESULTS}/bon/{m}.csv" for m in CFG["bon"].get("models", CFG["models"])],  # what bon_analysis writes
    f"{RESULTS}/probing/metrics.csv",
]
FINAL_FIGURES = ["final_bon", "final_representations", "final_main", "final_ablations", "final_claims"]


def figures_params():
    bon_prefix, bon_tables = f"{RESULTS}/bon/", {}
    for path in dict.fromkeys(map(str, FIGURE_INPUTS)):
        if path.startswith(bon_prefix) and path.endswith(".csv"):
            bon_tables[path[len(bon_prefix):-len(".csv")]] = path
    models = list(dict.fromkeys([*CFG["models"], *bon_tables]))
    return as_json({
        "results_dir": RESULTS, "config_name": CFG["name"], "models": models, "bon_tables": bon_tables,
        "probing_metrics": f"{RESULTS}/probing/metrics.csv", "main_table": f"{RESULTS}/tables/main.csv",
        "ablations_table": f"{RESULTS}/tables/ablations.csv", "claims_json": f"{RESULTS}/claims.json",
        "evalset_order": ["id_eval", *OOD_SETS, "overrefusal", "helpfulness"], "ood_sets": list(OOD_SETS),
        "id_harm": "train_harmful", "probe_layer": CFG["probing"]["layer"],
        **{f"fig_{name[len('final_'):]}": f"{RESULTS}/figures/{name}.png" for name in FINAL_FIGURES},
        "claims_summary_csv": f"{RESULTS}/tables/claims_summary.csv",
    })


rule figures:
    """notebooks/figures.ipynb: final figures (BoN, representations, main table, ablations, claims)."""
    input:
        notebook=NOTEBOOKS / "figures.ipynb",
        data=lambda wc: FIGURE_INPUTS,
    output:
        nb=f"{RESULTS}/notebooks/figures.ipynb",
        **{name: report(f"{RESULTS}/figures/{name}.png", caption=caption(name), category="Figures",
                        subcategory="final") for name in FINAL_FIGURES},
        **{f"{name}_pdf": f"{RESULTS}/figures/{name}.pdf" for name in FINAL_FIGURES},
        claims_summary=report(f"{RESULTS}/tables/claims_summary.csv", caption=caption("claims_summary"),
                              category="Tables"),
    params:
        nb=lambda wc: figures_params(),
    log:
        log_path("figures"),
    benchmark:
        bench_path("figures")
    shell:
        papermill("figures")


TARGETS.append(f"{RESULTS}/notebooks/figures.ipynb")


# --- the report's notebooks and provenance ----------------------------------------------------
# Every executed notebook in TARGETS is rendered to HTML; stages whose notebooks are not in TARGETS
# (intermediate ones, e.g. training) append them here.
REPORT_NOTEBOOKS = [f"{RESULTS}/notebooks/train_rt.ipynb"] if "rt" in CFG["models"] else []


def executed_notebooks():
    nbs = [t for t in TARGETS if isinstance(t, str) and t.endswith(".ipynb")] + REPORT_NOTEBOOKS
    return list(dict.fromkeys(nbs))


def notebook_htmls():
    return [f"{RESULTS}/report/notebooks/{Path(nb).stem}.html" for nb in executed_notebooks()]


rule notebook_html:
    """An executed notebook as standalone HTML, embedded in the Snakemake report."""
    input:
        f"{RESULTS}/notebooks/{{notebook}}.ipynb",
    output:
        report(f"{RESULTS}/report/notebooks/{{notebook}}.html", caption=caption("notebook"),
               category="Notebooks", labels={"notebook": "{notebook}"}),
    wildcard_constraints:
        notebook="[A-Za-z0-9_]+",
    log:
        f"{RESULTS}/logs/notebook_html/{{notebook}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/notebook_html/{{notebook}}.tsv"
    shell:
        "jupyter nbconvert --to html --stdout {input} > {output} 2> {log}"


rule provenance:
    """Config, git commit and key package versions of the run (shown in the report)."""
    input:
        # reruns whenever a result notebook or the claims change, so it describes the latest results
        notebooks=lambda wc: executed_notebooks(),
        claims=f"{RESULTS}/claims.json",
    output:
        json=report(f"{RESULTS}/report/provenance.json", caption=os.path.abspath(f"{RESULTS}/report/provenance.rst"),
                    category="Provenance"),
        rst=f"{RESULTS}/report/provenance.rst",
    params:
        config=as_json(CFG),
        repo=workflow.basedir,
    log:
        log_path("provenance"),
    benchmark:
        bench_path("provenance")
    shell:
        "python -m srg.provenance --config-json {params.config:q} --repo {params.repo:q} "
        "--json {output.json} --rst {output.rst} > {log} 2>&1"


# A function target: evaluated when the DAG is built, after every stage has appended its notebooks.
TARGETS.append(lambda wc: [*notebook_htmls(), f"{RESULTS}/report/provenance.json"])
