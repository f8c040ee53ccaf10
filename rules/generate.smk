# Generation per (model, eval set, mode): sharded, resumable JSONL.


rule generate:
    """Sharded, resumable generation of one (model, eval set, mode)."""
    input:
        prompts=evalset_file,
        model=model_input,
    output:
        f"{RESULTS}/generations/{{model}}/{{evalset}}.{{mode}}.jsonl",
    log:
        f"{RESULTS}/logs/generate/{{model}}/{{evalset}}.{{mode}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{model}}/{{evalset}}.{{mode}}.tsv"
    wildcard_constraints:
        mode="greedy|sample|answer",
    priority: generate_priority
    threads: job_threads()
    resources:
        mem_mb=6000,
        gpu=generation_gpus(),
    params:
        gen=lambda wc: as_json(generation_params(wc.mode, wc.model)),
        model_path=lambda wc: model_path(wc.model),
    shell:
        THREADS_ENV
        + GPU_PIN
        + "python -m srg generate --prompts {input.prompts} --out {output} --model {wildcards.model} "
        "--model-path {params.model_path} --evalset {wildcards.evalset} --mode {wildcards.mode} "
        "--params {params.gen:q} > {log} 2>&1"
