# Domain-adaptation analysis (claim C2): hidden states per (model, prompt set), then one notebook.
# ID harmful = train_harmful (RT's source domain), ID benign = train_benign; OOD = every attack
# eval set (OOD_SETS, from CFG["evalsets"]). Extraction params and notebook params are separate JSON strings,
# so changing a display/statistics key reruns only the notebook.


rule hidden_states:
    """Last-token and mean-pooled hidden states (every layer, float16) of every probing set, for one
    model: one process loads the model once (the fixed cost of a job was most of a one-set job)."""
    input:
        prompts=[prompt_file(s) for s in probing_sets()],
        model=model_input,
    output:
        [hidden_file("{model}", s) for s in probing_sets()],
    log:
        f"{RESULTS}/logs/hidden_states/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/hidden_states/{{model}}.tsv"
    wildcard_constraints:
        model="[A-Za-z0-9_]+",
    threads: job_threads()
    resources:
        mem_mb=6000,
        gpu=model_job_gpus(),
    params:
        hs=lambda wc: as_json(hidden_params()),
        model_path=lambda wc: model_path(wc.model),
    shell:
        THREADS_ENV
        + GPU_PIN
        + "python -m srg.hidden_states --prompts {input.prompts} --model-path {params.model_path} "
        "--model {wildcards.model} --out {output} --params {params.hs:q} > {log} 2>&1"


rule domain_adaptation:
    """RepE-style projections, per-layer probe transfer / PAD / centroid position, C2 claims."""
    input:
        notebook=notebook_source("domain_adaptation"),
        states=[hidden_file(m, s) for m in CFG["probing"]["models"] for s in probing_sets()],
        prompts=[f"{RESULTS}/prompts/{s}.jsonl" for s in probing_sets()],
        main_table=f"{RESULTS}/tables/main.csv",  # cross-model scatter (C2 vs greedy ASR)
    output:
        nb=f"{RESULTS}/notebooks/domain_adaptation.ipynb",
        representations=report(
            f"{RESULTS}/figures/representations.png",
            caption="../report/representations.rst",
            category="Figures",
            subcategory="stage notebooks",
        ),
        representations_pdf=f"{RESULTS}/figures/representations.pdf",
        probe_transfer=report(
            f"{RESULTS}/figures/probe_transfer.png",
            caption="../report/probe_transfer.rst",
            category="Figures",
            subcategory="stage notebooks",
        ),
        probe_transfer_pdf=f"{RESULTS}/figures/probe_transfer.pdf",
        metrics=f"{RESULTS}/probing/metrics.csv",
        claims=f"{RESULTS}/claims/c2.json",
    log:
        log_path("domain_adaptation"),
    benchmark:
        bench_path("domain_adaptation")
    params:
        nb=as_json(
            {
                "results_dir": RESULTS,
                "config_name": CFG["name"],
                "seed": CFG["seed"],
                "models": list(CFG["probing"]["models"]),
                "id_harm": PROBE_ID_SETS[0],
                "id_benign": PROBE_ID_SETS[1],
                "plain_set": PROBE_PLAIN_SET,
                "prompts": {s: f"{RESULTS}/prompts/{s}.jsonl" for s in probing_sets()},
                "ood_sets": list(OOD_SETS),
                "states": {m: {s: hidden_file(m, s) for s in probing_sets()} for m in CFG["probing"]["models"]},
                "representations_fig": f"{RESULTS}/figures/representations.png",
                "probe_transfer_fig": f"{RESULTS}/figures/probe_transfer.png",
                "metrics_csv": f"{RESULTS}/probing/metrics.csv",
                "claims_json": f"{RESULTS}/claims/c2.json",
                "claim_model": "rt",
                # tables/main.csv (rules/evaluate.smk) is an input; bon tables are a fallback when it is absent
                "bon_dir": f"{RESULTS}/bon",
                "main_table": f"{RESULTS}/tables/main.csv",
                **{k: CFG["probing"][k] for k in PROBE_NB_KEYS},
            }
        ),
    shell:
        papermill("domain_adaptation")
