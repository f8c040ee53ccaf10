# Generation per (model, eval set, mode): sharded, resumable JSONL.


rule generate:
    """Sharded, resumable generation of one (model, eval set, mode)."""
    input:
        prompts=evalset_file,
        model=model_input,
    output:
        f"{RESULTS}/generations/{{model}}/{{evalset}}.{{mode}}.jsonl",
    wildcard_constraints:
        mode="greedy|sample|answer",
    params:
        gen=lambda wc: as_json(generation_params(wc.mode, wc.model)),
        model_path=lambda wc: model_path(wc.model),
    threads: job_threads()
    priority: lambda wc: 10 if wc.mode == "answer" else 0  # RT targets sit on the critical path
    resources:
        mem_mb=6000,
        gpu=generation_gpus(),
    log:
        f"{RESULTS}/logs/generate/{{model}}/{{evalset}}.{{mode}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{model}}/{{evalset}}.{{mode}}.tsv"
    shell:
        THREADS_ENV + GPU_PIN + "python -m srg generate --prompts {input.prompts} --out {output} --model {wildcards.model} "
        "--model-path {params.model_path} --evalset {wildcards.evalset} --mode {wildcards.mode} "
        "--params {params.gen:q} > {log} 2>&1"
