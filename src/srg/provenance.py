"""Run provenance for the Snakemake report: config, git commit, versions of the key packages.

    python -m srg.provenance --config-json '<validated config as JSON>' --repo . \\
        --json results/report/provenance.json --rst results/report/provenance.rst

The JSON is the record; the reStructuredText is the same content as the caption the report shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from srg.io import atomic_path, write_json

KEY_PACKAGES = (
    "srg",
    "snakemake",
    "papermill",
    "nbconvert",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "safetensors",
    "gguf",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "vllm",
    "openai",
)


def package_versions(names=KEY_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed), like a filtered pip freeze."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(repo: str | Path) -> dict[str, Any]:
    """Commit and whether tracked files differ from it; nulls outside a git checkout."""

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def cpu_model() -> str:
    """The CPU's model name (bf16 CPU kernels, and so generations, can differ between models)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(config: dict[str, Any]) -> dict[str, Any]:
    """What decides bit-exactness besides the code and config: CPU model, cores, thread counts."""
    from srg.models import cpu_has_native_bf16, resolve_dtype

    threads = (config.get("generation") or {}).get("threads")
    dtype = (config.get("model") or {}).get("dtype")
    return {
        "cpu_model": cpu_model(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "model_dtype": resolve_dtype(dtype) if dtype else None,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "model_job_threads": threads if threads else "all cores given to the job (generation.threads: 0)",
        "cuda_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def collect(config: dict[str, Any], repo: str | Path) -> dict[str, Any]:
    return {
        "config_name": config.get("name"),
        "git": git_state(repo),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": machine_info(config),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "config": config,
    }


def to_rst(prov: dict[str, Any]) -> str:
    """The provenance as reStructuredText (a field list, a package table and the config)."""
    git = prov["git"]
    commit = git["commit"] or "unknown (not a git checkout)"
    if git.get("dirty"):
        commit += " (with uncommitted changes to tracked files)"
    lines = [
        "**Run provenance** (``provenance.json``): what produced the results in this report.",
        "",
        f":config: ``{prov['config_name']}``",
        f":git commit: ``{commit}``",
        f":python: {prov['python']} on {prov['platform']}",
        f":machine: {prov['machine']['cpu_model']}, {prov['machine']['cpus_usable']} usable CPUs, "
        f"model jobs with {prov['machine']['model_job_threads']} thread(s) in {prov['machine']['model_dtype']}",
        f":written: {prov['created']}",
        "",
        ".. list-table:: key packages",
        "   :header-rows: 1",
        "",
        "   * - package",
        "     - version",
    ]
    for name, version in prov["packages"].items():
        lines += [f"   * - {name}", f"     - {version or 'not installed'}"]
    config_text = json.dumps(prov["config"], indent=2, sort_keys=True)
    lines += ["", "Validated config (defaults filled)::", ""]
    lines += ["    " + line for line in config_text.splitlines()]
    # the report renders captions through Jinja: keep its delimiters out of the text
    return "\n".join(lines).replace("{{", "{ {").replace("}}", "} }").replace("{%", "{ %") + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config-json", required=True)
    ap.add_argument("--repo", default=".")
    ap.add_argument("--json", required=True)
    ap.add_argument("--rst", required=True)
    a = ap.parse_args(argv)
    prov = collect(json.loads(a.config_json), a.repo)
    write_json(a.json, prov)
    with atomic_path(a.rst) as tmp:
        Path(tmp).write_text(to_rst(prov), encoding="utf-8")
    print(f"provenance: config {prov['config_name']}, commit {prov['git']['commit']}")


if __name__ == "__main__":
    main()
