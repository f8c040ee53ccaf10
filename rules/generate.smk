# Generation: one job per (model, decoding mode), srg.generation.run_generations, over every prompt
# set that model is read on in that mode (GENERATION_BUNDLES, rules/common.smk): one process, one
# model load, one sharded resumable JSONL file per set. Rules are named generate_<bundle>.
for _name, _b in GENERATION_BUNDLES.items():

    rule:
        name:
            f"generate_{_name}"
        input:
            prompts=[prompt_file(e) for e in _b["evalsets"]],
            model=model_input_of(_b["model"]),
        output:
            [generation_file(_b["model"], e, _b["mode"]) for e in _b["evalsets"]],
        log:
            f"{RESULTS}/logs/generate/{_name}.log",
        benchmark:
            f"{RESULTS}/benchmarks/generate/{_name}.tsv"
        priority: _b["priority"]
        threads: job_threads()
        resources:
            mem_mb=6000,
            gpu=generation_gpus(),
        params:
            gen=as_json(generation_params(_b["mode"], _b["model"])),
            model_path=model_path(_b["model"]),
            model=_b["model"],
            mode=_b["mode"],
            evalsets=_b["evalsets"],
        shell:
            THREADS_ENV
            + GPU_PIN
            + "python -m srg generate --prompts {input.prompts} --out {output} --model {params.model} "
            "--model-path {params.model_path} --evalset {params.evalsets} --mode {params.mode} "
            "--params {params.gen:q} > {log} 2>&1"
