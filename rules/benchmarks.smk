# Generation throughput benchmark (hf backend vs a naive loop vs the forward-pass ceiling).
# It takes every core (threads: workflow.cores), so Snakemake runs nothing beside it.


rule benchmark_generation:
    input:
        script=workdir_relative(Path(workflow.basedir) / "benchmarks" / "generation.py"),
        model=[BASE.path] if BASE.converted_from else [],
    output:
        f"{RESULTS}/benchmarks/generation.json",
    log:
        log_path("benchmark_generation"),
    benchmark:
        bench_path("benchmark_generation")
    threads: workflow.cores
    params:
        resources=RES,
        dtype=MODEL_DTYPE,
        model=BASE.path,
        b=CFG["benchmark"],
    shell:
        "python {input.script} --out {output} --model {params.model} --resources {params.resources} "
        "--prompts {params.b[prompts]} --max-new-tokens {params.b[max_new_tokens]} "
        "--batch-size {params.b[batch_size]} --naive-prompts {params.b[naive_prompts]} "
        "--sample-n {params.b[sample_n]} --dtype {params.dtype} --threads {threads} > {log} 2>&1"
