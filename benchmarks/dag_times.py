"""Where the DAG's time goes: per-rule job time, the run's wall time and its critical path.

    python benchmarks/dag_times.py [--results results] [--log .snakemake/log/<run>.snakemake.log]
                                   [--out results/benchmarks/dag_times.json] [--markdown]

Reads every ``<results>/benchmarks/<rule>/**/*.tsv`` written by the rules' ``benchmark:``
directive and reports, per rule, the number of jobs, total and max wall seconds and the peak
resident memory (max_rss, MB), plus the totals. With a Snakemake log (default: the newest under
``.snakemake/log`` that ran jobs) it adds the run itself: ``dag_wall_s`` (first job start to last
job end), the busy-core share, and the ``critical_path``: the longest chain of jobs, each waiting
on the one before it through a file (a job's inputs among the other's outputs), weighted by the
jobs' logged durations (1-s resolution). Writes JSON and prints it, or with ``--markdown`` the
Markdown table of README.md's "Where the time goes".
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import re
from collections import defaultdict
from pathlib import Path

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
_FINISHED = re.compile(r"^Finished jobid: (\d+)")
_FIELD = re.compile(r"^\s+(input|output|jobid|threads|wildcards): (.*)$")


def collect(results: Path) -> dict:
    root = results / "benchmarks"
    per_rule: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "total_s": 0.0, "max_s": 0.0, "peak_rss_mb": 0.0})
    for tsv in sorted(root.rglob("*.tsv")):
        rule = tsv.relative_to(root).parts[0]
        with open(tsv) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        for row in rows:
            s = float(row["s"])
            rss = float(row["max_rss"]) if row.get("max_rss") not in (None, "", "-", "NA") else 0.0
            r = per_rule[rule]
            r["jobs"] += 1
            r["total_s"] += s
            r["max_s"] = max(r["max_s"], s)
            r["peak_rss_mb"] = max(r["peak_rss_mb"], rss)
    rules = {
        k: {kk: round(vv, 1) if isinstance(vv, float) else vv for kk, vv in v.items()}
        for k, v in sorted(per_rule.items(), key=lambda kv: -kv[1]["total_s"])
    }
    return {
        "results": str(results),
        "rules": rules,
        "total_job_s": round(sum(r["total_s"] for r in rules.values()), 1),
        "peak_rss_mb": max((r["peak_rss_mb"] for r in rules.values()), default=0.0),
    }


def parse_log(log: Path) -> list[dict]:
    """Jobs of one Snakemake run: rule, jobid, start/end (epoch s), threads, inputs, outputs."""
    jobs: dict[int, dict] = {}
    stamp, current = None, None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if m := _STAMP.match(line):
            stamp = dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y").timestamp()
            current = None
        elif (m := _RULE.match(line)) and stamp is not None:
            current = {"rule": m.group(1), "start": stamp, "threads": 1, "input": [], "output": [], "wildcards": ""}
        elif current is not None and (m := _FIELD.match(line)):
            key, val = m.groups()
            if key == "jobid":
                jobs[int(val)] = current
            elif key == "threads":
                current["threads"] = int(val)
            elif key == "wildcards":
                current["wildcards"] = val
            else:
                current[key] = [x.strip() for x in val.split(",") if x.strip()]
        elif (m := _FINISHED.match(line)) and stamp is not None and int(m.group(1)) in jobs:
            jobs[int(m.group(1))]["end"] = stamp
    return [dict(j, jobid=k) for k, j in jobs.items() if "end" in j and j["rule"] != "all"]


def _depends(job: dict, on: dict) -> bool:
    outs = on["output"]
    return any(i == o or i.startswith(o.rstrip("/") + "/") for i in job["input"] for o in outs)


def timeline(jobs: list[dict], cores: int) -> dict:
    """Wall time, busy-core share and the critical path of one run's jobs."""
    if not jobs:
        return {}
    jobs = sorted(jobs, key=lambda j: (j["start"], j["end"]))
    by_output = defaultdict(list)
    for k, j in enumerate(jobs):
        for o in j["output"]:
            by_output[o].append(k)
    longest: list[float] = []
    prev: list[int | None] = []
    for k, j in enumerate(jobs):
        dur = j["end"] - j["start"]
        cands = {p for i in j["input"] for p in by_output.get(i, [])}
        cands |= {
            p
            for p in range(k)
            if p not in cands and any(i.startswith(o.rstrip("/") + "/") for i in j["input"] for o in jobs[p]["output"])
        }
        cands = {p for p in cands if p < k and jobs[p]["end"] <= j["start"] + 1}
        best = max(cands, key=lambda p: longest[p], default=None)
        longest.append(dur + (longest[best] if best is not None else 0.0))
        prev.append(best)
    k = max(range(len(jobs)), key=lambda i: longest[i])
    path = []
    while k is not None:
        j = jobs[k]
        path.append({"rule": j["rule"], "wildcards": j["wildcards"], "s": j["end"] - j["start"]})
        k = prev[k]
    path.reverse()
    t0, t1 = min(j["start"] for j in jobs), max(j["end"] for j in jobs)
    busy = sum((j["end"] - j["start"]) * min(j["threads"], cores) for j in jobs)
    per_rule = defaultdict(float)
    for p in path:
        per_rule[p["rule"]] += p["s"]
    return {
        "dag_wall_s": t1 - t0,
        "jobs_run": len(jobs),
        "cores": cores,
        "busy_core_share": round(busy / ((t1 - t0) * cores), 3) if t1 > t0 else None,
        "critical_path_s": sum(p["s"] for p in path),
        "critical_path_by_rule_s": dict(sorted(per_rule.items(), key=lambda kv: -kv[1])),
        "critical_path": path,
    }


def newest_log(workdir: Path) -> Path | None:
    """The newest Snakemake log that started jobs (a dry run's log has none)."""
    for log in sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"), reverse=True):
        if "Finished jobid" in log.read_text(encoding="utf-8", errors="replace"):
            return log
    return None


def cores_of(log: Path) -> int:
    m = re.search(r"^Provided cores: (\d+)", log.read_text(encoding="utf-8", errors="replace"), re.M)
    return int(m.group(1)) if m else 1


def markdown(summary: dict) -> str:
    lines = ["| rule | jobs | total wall s | max wall s | max peak RSS MB |", "| --- | ---: | ---: | ---: | ---: |"]
    for rule, r in summary["rules"].items():
        lines.append(f"| {rule} | {r['jobs']} | {r['total_s']:.0f} | {r['max_s']:.0f} | {r['peak_rss_mb']:.0f} |")
    jobs = sum(r["jobs"] for r in summary["rules"].values())
    max_s = max((r["max_s"] for r in summary["rules"].values()), default=0.0)
    lines.append(
        f"| **all rules** | **{jobs}** | **{summary['total_job_s']:.0f}** | {max_s:.0f} | "
        f"**{summary['peak_rss_mb']:.0f}** |"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default=None)
    ap.add_argument("--log", default=None, help="Snakemake log of the run (default: newest that ran jobs)")
    ap.add_argument("--markdown", action="store_true", help="print the Markdown table instead of the JSON")
    a = ap.parse_args()
    results = Path(a.results)
    summary = collect(results)
    log = Path(a.log) if a.log else newest_log(Path.cwd())
    if log is not None:
        summary["run"] = {"log": str(log), **timeline(parse_log(log), cores_of(log))}
    out = Path(a.out) if a.out else results / "benchmarks" / "dag_times.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(markdown(summary) if a.markdown else json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
