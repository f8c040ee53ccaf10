# Refusal-training data and fine-tuning (RT; SRG reuses the same train notebook).


rule rt_data:
    """Harmful -> short varied refusal; benign -> the base model's own (filtered) greedy answer."""
    input:
        harmful=f"{RESULTS}/prompts/train_harmful.jsonl",
        benign=f"{RESULTS}/prompts/train_benign.jsonl",
        benign_generations=f"{RESULTS}/generations/base/train_benign.answer.jsonl",
    output:
        data=f"{RESULTS}/data/rt_train.jsonl",
        stats=f"{RESULTS}/data/rt_stats.json",
    log:
        log_path("rt_data"),
    benchmark:
        bench_path("rt_data")
    priority: 10
    params:
        resources=RES,
        p=as_json(
            {"refusals": CFG["rt"]["refusals"], "seed": CFG["seed"], "min_benign_chars": CFG["rt"]["min_benign_chars"]}
        ),
    shell:
        "python -m srg rt-data --harmful {input.harmful} --benign {input.benign} "
        "--benign-generations {input.benign_generations} --out {output.data} --stats {output.stats} "
        "--params {params.p:q} --resources {params.resources} > {log} 2>&1"


rule train:
    """notebooks/train.ipynb: TRL SFT (LoRA or full), merged model, loss curve, refusal check."""
    input:
        notebook=notebook_source("train"),
        data=train_data,
        base=[BASE.path] if BASE.converted_from else [],
        check_prompts=expand(f"{RESULTS}/prompts/{{s}}.jsonl", s=DEV_SETS),
        base_generations=expand(f"{RESULTS}/generations/base/{{s}}.greedy.jsonl", s=DEV_SETS),
    output:
        model=directory(f"{RESULTS}/models/{{method}}/merged"),
        log=f"{RESULTS}/models/{{method}}/train_log.json",
        check=f"{RESULTS}/models/{{method}}/check.json",
        nb=f"{RESULTS}/notebooks/train_{{method}}.ipynb",
        dev=[f"{RESULTS}/generations/{{method}}/{s}.greedy.jsonl" for s in DEV_SETS],
    log:
        f"{RESULTS}/logs/train/{{method}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{method}}.tsv"
    wildcard_constraints:
        method="|".join(TRAINED),
    priority: 10
    threads: train_threads()
    resources:
        mem_mb=8000,
        gpu=train_job_gpus(),
    params:
        nb=lambda wc: as_json(
            {
                "method": wc.method,
                "train_jsonl": train_data(wc),
                "base_model": BASE.path,
                "out_dir": f"{RESULTS}/models/{wc.method}",
                "train_config": train_config(wc.method),
                "check": True,
                "check_prompts": {s: f"{RESULTS}/prompts/{s}.jsonl" for s in DEV_SETS},
                "base_generations": {s: f"{RESULTS}/generations/base/{s}.greedy.jsonl" for s in DEV_SETS},
                "check_out": f"{RESULTS}/models/{wc.method}/check.json",
                "min_refusal_gain": train_section(wc.method)["check_min_refusal_gain"],
                "resources": RES,
                "dev_generation": dev_generation_params(wc.method),
                "dev_out": {s: generation_file(wc.method, s, "greedy") for s in DEV_SETS},
                "n_bootstrap": CFG["bon"]["n_bootstrap"],
                "reasoning_format": CFG["reasoning"] if is_reasoning_model(wc.method) else None,
                "seed": CFG["seed"],
                # only when > 1 (keeps single-device params, hence rerun triggers, unchanged)
                **({"gpus": CFG["compute"]["train_gpus"]} if CFG["compute"]["train_gpus"] > 1 else {}),
            }
        ),
    shell:
        papermill("train", pin=True)
