"""Tweak-and-rerun after a full run: which jobs a one-key change reruns, and how long it takes.

    python benchmarks/tweak_rerun.py --workdir ../srg-clone [--run] [--tweaks noop,judge,attack_option,bon_n]
                                     [--cores 2] [--out results/benchmarks/tweak_rerun.json]

``--workdir`` is a checkout whose ``results/`` holds a finished run of the embedded default (a
clone with the run's ``results/`` and ``resources/`` copied in: the tweaks change its results, so
never point it at the checkout you keep). Each tweak sets one key of ``--config`` (the run's config
file, default ``config/default.yaml``) and runs Snakemake with the
result as ``--configfile``, in order (dry runs: each tweak alone; with ``--run``, each on top of the
ones already run, since the results now hold them):

- ``noop``: nothing changed; the dry run must find nothing to do (its wall time is the no-op cost);
- ``judge``: ``judge.prefix_chars`` (judge only the opening); only judging and what reads it may rerun;
- ``attack_option``: one attack's option (``evalsets.caesar.options.shift``); only that set's attack,
  generations, judgements, hidden states and the analyses may rerun;
- ``bon_n``: ``bon.n``; only sampling generations, their judgements and the analyses may rerun.

For each: the dry run's jobs per rule, a check that every job is downstream of the change (touched
by it directly, or reading a file that such a job of the plan rewrites; any other job fails the
benchmark), and with ``--run`` the wall time of really running them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ANALYSES = {
    "bon_analysis",
    "evaluation",
    "domain_adaptation",
    "claims",
    "figures",
    "provenance",
    "notebook_html",
    "all",
    "judge_agreement",
}


def _wc(job: dict) -> dict:
    return dict(kv.split("=", 1) for kv in job["wildcards"].split(", ") if "=" in kv)


def _generates(job: dict, evalset: str) -> bool:
    """A generation job (rule generate_<model>_<mode>) or a hidden-states job (one per model) whose
    outputs include ``evalset``'s file (it reruns, and redoes only that set's shards: the others
    are content-keyed and kept)."""
    return (job["rule"].startswith("generate_") or job["rule"] == "hidden_states") and any(
        Path(o).name.startswith(f"{evalset}.") for o in job.get("output", "").split(", ")
    )


def allowed_judge(job: dict) -> bool:
    # the judge's calibration (and the data overview showing it) follow the judge's settings;
    # PAIR checks each attempt with the judge, so its prompts (and their generations) may follow it
    return (
        job["rule"] in ANALYSES | {"judge", "judge_calibration", "data_overview"}
        or _wc(job).get("evalset") == "pair"
        or _generates(job, "pair")
    )


def allowed_attack(job: dict) -> bool:
    # the truncation counts cover every eval set, caesar's included
    return job["rule"] in ANALYSES | {"truncation"} or _wc(job).get("evalset") == "caesar" or _generates(job, "caesar")


def allowed_bon(job: dict) -> bool:
    return (
        job["rule"] in ANALYSES
        or (job["rule"] == "judge" and _wc(job).get("mode") == "sample")
        or (job["rule"].startswith("generate_") and job["rule"].endswith("_sample"))
    )


# name -> (config key, new value, which jobs may rerun); "noop" changes nothing
TWEAKS = {
    "noop": (None, None, lambda job: False),
    "judge": ("judge.prefix_chars", 400, allowed_judge),
    "attack_option": ("evalsets.caesar.options.shift", 5, allowed_attack),
    "bon_n": ("bon.n", 4, allowed_bon),
}


def outside_downstream(jobs: list[dict], allowed) -> list[dict]:
    """Planned jobs that are not downstream of the change: neither ``allowed`` (the jobs the change
    touches directly) nor reading a file that an allowed job of the same plan rewrites. A bundled
    job (one generation job per model and mode, one hidden-states job per model) rewrites all its
    files when one of its sets changed, so the readers of the others rerun too, at a judge's cost."""

    def files(job, key):
        return {f for f in job.get(key, "").split(", ") if f}

    ok = [allowed(j) for j in jobs]
    grew = True
    while grew:
        made = set().union(*(files(j, "output") for j, a in zip(jobs, ok) if a))
        grew = False
        for i, j in enumerate(jobs):
            if not ok[i] and files(j, "input") & made:
                ok[i] = grew = True
    return [j for j, a in zip(jobs, ok) if not a]


def set_key(cfg: dict, path: str, value) -> None:
    *keys, last = path.split(".")
    node = cfg
    for k in keys:
        node = node.setdefault(k, {})
    node[last] = value


_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
_WILD = re.compile(r"^\s+wildcards: (.*)$")
_OUTPUT = re.compile(r"^\s+output: (.*)$")
_INPUT = re.compile(r"^\s+input: (.*)$")


def dry_run_jobs(text: str) -> list[dict]:
    jobs, current = [], None
    for line in text.splitlines():
        if m := _RULE.match(line):
            current = {"rule": m.group(1), "wildcards": "", "output": "", "input": ""}
            jobs.append(current)
        elif current is not None and (m := _WILD.match(line)):
            current["wildcards"] = m.group(1)
        elif current is not None and (m := _OUTPUT.match(line)):
            current["output"] = m.group(1)
        elif current is not None and (m := _INPUT.match(line)):
            current["input"] = m.group(1)
    return jobs


def snakemake(workdir: Path, configfile: Path, cores: int, dry: bool) -> tuple[str, float, int]:
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", str(configfile)]
    if dry:
        cmd.append("-n")
    # the rules call ``python -m srg``: the interpreter running this script (the venv) comes first
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    return p.stdout + p.stderr, time.perf_counter() - t0, p.returncode


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--tweaks", default=",".join(TWEAKS))
    ap.add_argument("--run", action="store_true", help="run the jobs, not only the dry run")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--config", default="config/default.yaml", help="the config of the finished run")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    workdir = Path(a.workdir).resolve()
    if not (workdir / "results" / "tables" / "main.csv").is_file():
        raise SystemExit(f"{workdir}/results has no finished run (tables/main.csv missing)")
    import tempfile

    import yaml

    cfg = yaml.safe_load((workdir / a.config).read_text(encoding="utf-8"))
    tmp = Path(tempfile.mkdtemp(prefix="srg-tweaks-"))
    out: dict = {"workdir": str(workdir), "config": a.config, "cores": a.cores, "tweaks": {}}
    ok = True
    for name in a.tweaks.split(","):
        if name not in TWEAKS:
            raise SystemExit(f"unknown tweak {name!r}; known: {sorted(TWEAKS)}")
        key, value, allowed = TWEAKS[name]
        if not a.run:  # dry runs: each tweak alone against the finished run
            cfg = yaml.safe_load((workdir / a.config).read_text(encoding="utf-8"))
        if key:
            set_key(cfg, key, value)  # with --run: on top of the tweaks already run
        configfile = tmp / f"{name}.yaml"
        configfile.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        text, dry_s, rc = snakemake(workdir, configfile, a.cores, dry=True)
        if rc != 0:
            raise SystemExit(f"dry run of {name} failed (rc {rc}):\n{text[-3000:]}")
        jobs = [j for j in dry_run_jobs(text) if j["rule"] != "all"]
        outside = outside_downstream(jobs, allowed)
        res = {
            "change": {key: value} if key else {},
            "dry_run_s": round(dry_s, 2),
            "jobs": len(jobs),
            "jobs_per_rule": dict(Counter(j["rule"] for j in jobs).most_common()),
            "outside_allowed": outside,
        }
        ok &= not outside
        if a.run and jobs:
            text, wall, rc = snakemake(workdir, configfile, a.cores, dry=False)
            res.update(run_wall_s=round(wall, 1), run_rc=rc)
            ok &= rc == 0
            if rc != 0:  # the next tweak would stack on a half-run one: stop here, with the reason
                res["run_error_tail"] = text[-3000:]
                out["tweaks"][name] = res
                print(f"[tweak] {name}: the run failed (rc {rc}); stopping:\n{text[-3000:]}", flush=True)
                break
        out["tweaks"][name] = res
        print(
            f"[tweak] {name}: {len(jobs)} jobs {res['jobs_per_rule']} (dry run {dry_s:.1f}s)"
            + (f", ran in {res.get('run_wall_s')}s rc {res.get('run_rc')}" if "run_wall_s" in res else "")
            + (f"; OUTSIDE THE ALLOWED SET: {outside}" if outside else ""),
            flush=True,
        )
    out["all_downstream_only"] = ok
    path = Path(a.out) if a.out else workdir / "results" / "benchmarks" / "tweak_rerun.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"[tweak] wrote {path}")
    return out


if __name__ == "__main__":
    sys.exit(0 if main()["all_downstream_only"] else 1)
