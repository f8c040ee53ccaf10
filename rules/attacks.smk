# OOD eval sets: each config `evalsets` entry applies a registered attack to a prompt set.
from srg.attacks import ATTACKS as SRG_ATTACKS

OOD_SETS = list(CFG["evalsets"])
EVALSETS = ["id_eval", *OOD_SETS]  # harmful eval sets: ID + every OOD attack


def attack_inputs(wildcards):
    spec = CFG["evalsets"][wildcards.evalset]
    if spec["attack"] == "none":
        return {"file": spec["file"]}
    inputs = {"source": f"{RESULTS}/prompts/{spec['source']}.jsonl", "wheels": all_wheels()}
    if SRG_ATTACKS[spec["attack"]].needs_model:
        for role in ("attacker", "target") if spec["attack"] == "pair" else ("attacker",):
            m = spec[role]
            if m == "base":
                inputs[role] = [BASE.path] if BASE.converted_from else []
            else:
                inputs[role] = model_path(m)
    return inputs


def attack_params(evalset):
    spec = CFG["evalsets"][evalset]
    p = {"spec": spec, "seed": CFG["seed"], "judge": CFG["judge"]["name"],
         "backend_options": generation_params("greedy")["backend_options"],
         "attacker_max_new_tokens": 160, "target_max_new_tokens": CFG["generation"]["max_new_tokens"]}
    if spec["attack"] in SRG_ATTACKS and SRG_ATTACKS[spec["attack"]].needs_model:
        p["attacker_path"] = model_path(spec["attacker"])
        if spec["attack"] == "pair":
            p["target_path"] = model_path(spec["target"])
    return as_json(p)


if OOD_SETS:

    rule attack:
        """Build one attacked eval set (deterministic given the seed)."""
        input:
            unpack(attack_inputs),
        output:
            f"{RESULTS}/prompts/{{evalset}}.jsonl",
        wildcard_constraints:
            evalset="|".join(re.escape(s) for s in OOD_SETS),
        params:
            p=lambda wc: attack_params(wc.evalset),
            source=lambda wc, input: f"--source {input.source}" if "source" in input.keys() else "",
        threads: job_threads()
        log:
            f"{RESULTS}/logs/attack/{{evalset}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/attack/{{evalset}}.tsv"
        shell:
            "python -m srg attack {params.source} --out {output} --params {params.p:q} "
            "--resources {RES} > {log} 2>&1"
