"""The house rules that keep the layout honest: notebooks are thin jupytext scripts, the conda
environment matches the package pins, and the DAG names its targets in one place."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import jupytext
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.py"))


def test_notebooks_are_the_dags_only_notebook_sources():
    assert {p.stem for p in NOTEBOOKS} == {
        "bon_analysis",
        "data_overview",
        "domain_adaptation",
        "evaluation",
        "figures",
        "guideline_synthesis",
        "train",
    }
    assert not list((REPO / "notebooks").glob("*.ipynb")), "commit the percent script, not the notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_a_thin_percent_script(path):
    nb = jupytext.read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0], "one papermill parameters cell, the first code cell"
    assert nb.cells[0].cell_type == "markdown", "a notebook opens with what it shows"
    text = path.read_text()
    private = re.findall(r"\b(?:srg|bon|probing|plotting|evaluation|synthesis|training|claims)\._[a-z]\w*", text)
    assert not private, f"notebooks call public srg functions only: {private}"
    assert not re.search(r"^(class) ", text, re.M), "classes belong in src/srg"


def test_conda_environment_pins_match_the_package():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs" / "srg.yaml").read_text())
    pip = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert {d for d in deps if not d.startswith("torch")} == {p for p in pip if not p.startswith("torch")}


def test_stage_files_hold_rules_only():
    """Helpers and target lists live in rules/common.smk; stage files define no functions and
    mutate no global target list."""
    for smk in sorted((REPO / "rules").glob("*.smk")):
        if smk.name == "common.smk":
            continue
        text = smk.read_text()
        assert not re.search(r"^\s*def \w+\(", text, re.M), f"{smk.name} defines a function"
        assert not re.search(r"\.(append|extend)\(", text), f"{smk.name} mutates a list"


def test_jobs_name_repo_files_relative_to_the_working_directory(tmp_path, resources):
    """A run moved with its repository (a clone + a copy of results/) has nothing to rerun: no job's
    inputs, params or command hold the absolute path of the repository it ran in."""
    import os
    import shutil
    import subprocess
    import sys

    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True)
    copy = tmp_path / "clone"
    for rel in tracked.stdout.splitlines():
        if (REPO / rel).is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, copy / rel)
    (copy / "resources").symlink_to(resources)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "-n", "-p", "--forceall", "--nolock", "--cores", "2"],
        cwd=copy,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = proc.stdout.split("Building DAG of jobs...", 1)[1]  # after the header (which names the dirs)
    assert "rule train:" in jobs and "rule notebook_source:" in jobs
    leaks = sorted({line.strip()[:160] for line in jobs.splitlines() if str(copy) in line})
    assert not leaks, leaks
