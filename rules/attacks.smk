# OOD eval sets: each config `evalsets` entry applies a registered attack to a prompt set.
if OOD_SETS:

    rule attack:
        """Build one attacked eval set (deterministic given the seed)."""
        input:
            unpack(attack_inputs),
        output:
            f"{RESULTS}/prompts/{{evalset}}.jsonl",
        log:
            f"{RESULTS}/logs/attack/{{evalset}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/attack/{{evalset}}.tsv"
        wildcard_constraints:
            evalset="|".join(re.escape(s) for s in OOD_SETS),
        threads: job_threads()
        resources:
            gpu=lambda wc: attack_gpus(wc.evalset),
        params:
            resources=RES,
            p=lambda wc: attack_params(wc.evalset),
            source=lambda wc, input: f"--source {input.source}" if "source" in input.keys() else "",
        shell:
            GPU_PIN + "python -m srg attack {params.source} --out {output} --params {params.p:q} "
            "--resources {params.resources} > {log} 2>&1"
