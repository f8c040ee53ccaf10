"""Where the DAG's time goes: sum Snakemake's per-job benchmark files by rule.

    python benchmarks/dag_times.py [--results results] [--out results/benchmarks/dag_times.json] [--markdown]

Reads every ``<results>/benchmarks/<rule>/**/*.tsv`` written by the rules' ``benchmark:``
directive and reports, per rule, the number of jobs, total and max wall seconds and the peak
resident memory (max_rss, MB), plus the totals; writes JSON and prints it, or with
``--markdown`` the Markdown table of README.md's "Where the time goes".
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path


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
    ap.add_argument("--markdown", action="store_true", help="print the Markdown table instead of the JSON")
    a = ap.parse_args()
    results = Path(a.results)
    summary = collect(results)
    out = Path(a.out) if a.out else results / "benchmarks" / "dag_times.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(markdown(summary) if a.markdown else json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
