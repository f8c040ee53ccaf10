"""Same seed, same bytes: rerun one finished generate job of the DAG and compare one of its outputs.

    python benchmarks/determinism.py --target results/generations/rt/id_eval.greedy.jsonl \
        [--configfile config/X.yaml] [--out results/benchmarks/determinism.json]

Asks Snakemake (dry run, ``--force``) for the exact shell command of the job that made
``--target`` (a generation job writes every prompt set of one model and mode), runs that command
again with its outputs sent to a temporary directory, and compares ``--target`` with its rerun
byte for byte. The target itself is not touched. Writes JSON: whether the bytes
are identical, both sha256s, the rows that differ, wall time, and the machine (bf16 CPU kernels
differ between CPU models, so identity is expected on one machine only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from srg.io import read_jsonl, write_json  # noqa: E402
from srg.provenance import machine_info  # noqa: E402
from srg.sources import sha256_of  # noqa: E402


def job_command(target: str, configfile: str | None, workdir: str) -> str:
    """The shell command Snakemake would run for ``target`` (from a forced dry run)."""
    snakemake = str(Path(sys.executable).parent / "snakemake")
    cmd = [snakemake, "-s", str(REPO / "Snakefile"), "-d", workdir, "-n", "-p", "-f", target]
    if configfile:
        cmd[1:1] = ["--configfile", configfile]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    lines = [
        ln.split("Shell command:", 1)[-1].strip()
        for ln in out.splitlines()
        if "-m srg generate" in ln and target in _outs(ln)
    ]
    if len(lines) != 1:
        raise SystemExit(f"expected one generate command for {target} in the dry run, found {len(lines)}")
    return lines[0]


_OUTS = re.compile(r"--out (.+?) --model ")


def _outs(command: str) -> list[str]:
    """The output files of a generate command (``--out A B ... --model``)."""
    m = _OUTS.search(command)
    return m.group(1).split() if m else []


def rerun(command: str, target: str, workdir: str, tmp: Path) -> tuple[Path, float]:
    """Run ``command`` with its outputs (and log) redirected into ``tmp``; return the rerun of
    ``target`` and the seconds taken."""
    outs = _outs(command)
    moved = " ".join(shlex.quote(str(tmp / f"{i}_{Path(o).name}")) for i, o in enumerate(outs))
    command = command.replace(f"--out {' '.join(outs)} --model ", f"--out {moved} --model ")
    command = re.sub(r">\s*\S+\s+2>&1\s*$", f"> {shlex.quote(str(tmp / 'rerun.log'))} 2>&1", command)
    t0 = time.perf_counter()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(["bash", "-c", command], cwd=workdir, check=True, env=env)
    return tmp / f"{outs.index(target)}_{Path(target).name}", time.perf_counter() - t0


def compare(a: Path, b: Path) -> dict:
    rows_a, rows_b = read_jsonl(a), read_jsonl(b)
    differing = sum(x != y for x, y in zip(rows_a, rows_b)) + abs(len(rows_a) - len(rows_b))
    return {
        "identical": a.read_bytes() == b.read_bytes(),
        "sha256_original": sha256_of(a),
        "sha256_rerun": sha256_of(b),
        "rows": len(rows_a),
        "differing_rows": differing,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="a generations/*.jsonl the DAG has written")
    ap.add_argument("--configfile")
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--out", default=None, help="JSON (default: <results>/benchmarks/determinism.json)")
    a = ap.parse_args(argv)
    workdir = str(Path(a.workdir).resolve())
    if not (Path(workdir) / a.target).is_file():
        raise SystemExit(f"{a.target}: not found under {workdir}; run the DAG first")
    command = job_command(a.target, a.configfile, workdir)
    with tempfile.TemporaryDirectory() as tmp:
        out, wall = rerun(command, a.target, workdir, Path(tmp))
        report = {
            "target": a.target,
            **compare(Path(workdir) / a.target, out),
            "rerun_wall_s": round(wall, 1),
            "machine": machine_info({}),
        }
    dest = Path(a.out) if a.out else Path(workdir) / Path(a.target).parents[2] / "benchmarks" / "determinism.json"
    write_json(dest, report)
    print(json.dumps(report, indent=2))
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
