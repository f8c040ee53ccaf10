# Generation throughput benchmark (hf backend vs a naive loop vs the forward-pass ceiling).
# It takes every core (threads: workflow.cores), so Snakemake runs nothing beside it.


rule benchmark_generation:
    input:
        script=Path(workflow.basedir) / "benchmarks" / "generation.py",
        model=[BASE.path] if BASE.converted_from else [],
    output:
        f"{RESULTS}/benchmarks/generation.json",
    params:
        model=BASE.path,
        b=CFG["benchmark"],
    threads: workflow.cores
    log:
        log_path("benchmark_generation"),
    benchmark:
        bench_path("benchmark_generation")
    shell:
        "python {input.script} --out {output} --model {params.model} --resources {RES} "
        "--prompts {params.b[prompts]} --max-new-tokens {params.b[max_new_tokens]} "
        "--batch-size {params.b[batch_size]} --naive-prompts {params.b[naive_prompts]} "
        "--sample-n {params.b[sample_n]} --dtype {CFG[model][dtype]} --threads {threads} > {log} 2>&1"


if CFG["benchmark"]["enabled"]:
    TARGETS.append(f"{RESULTS}/benchmarks/generation.json")
