"""The teacher's API key is read from the environment variable named in config and never lands in
a results file, an executed notebook, a log or Snakemake's own records.

Runs the synthesis stage of the smoke DAG with the teacher on an OpenAI-compatible fake server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_api_backends import FakeServer
from test_dag_smoke import _config, _snakemake

KEY_ENV = "SRG_TEACHER_TEST_KEY"
KEY = "sk-teacher-NEVER-WRITE-ME-4c1e88"


def _teacher_reply(body, k):
    """A compliant teacher: guideline reasoning, then a refusal (kept for harmful, rejected for benign)."""
    return "<reasoning>\nIntent: the request is examined. Policy: refuse.\n</reasoning>\nI can't help with that."


def _files_containing(root: Path, needle: str) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            try:
                if needle.encode() in p.read_bytes():
                    hits.append(str(p.relative_to(root)))
            except OSError:
                pass
    return hits


@pytest.mark.slow
def test_teacher_key_never_written(tmp_path, resources, model_dir, monkeypatch):
    server = FakeServer()
    server.reply_text = _teacher_reply
    try:
        teacher = {
            "backend": "openai",
            "model": "fake-teacher",
            "options": {"base_url": server.url, "api_key_env": KEY_ENV, "max_retries": 0},
        }
        # the free-form prompted teacher (the paper's API path); scaffold mode has its own tests
        cfg = _config(tmp_path, resources, **{"synthesis.teacher": teacher, "synthesis.mode": "free", "ablations": {}})
        target = "results/notebooks/guideline_synthesis_srg.ipynb"
        monkeypatch.setenv(KEY_ENV, KEY)
        proc = _snakemake(tmp_path, cfg, target)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
        assert server.requests and all(r["auth"] == f"Bearer {KEY}" for r in server.requests)
        assert KEY not in proc.stdout + proc.stderr
        assert _files_containing(tmp_path, KEY) == []  # results/, logs, notebooks, .snakemake/ metadata
        stats = json.loads((tmp_path / "results/synthesis/srg/stats.json").read_text())
        assert stats["rows_by_origin"]["teacher"] > 0  # the teacher's candidates were really used
        assert stats["rejections"]["refused_benign"] > 0

        # a missing variable is a clear error that names the variable (and still leaks nothing)
        monkeypatch.delenv(KEY_ENV)
        cfg2 = _config(
            tmp_path,
            resources,
            **{"synthesis.teacher": teacher, "synthesis.mode": "free", "ablations": {}, "synthesis.k": 1},
        )
        proc = _snakemake(tmp_path, cfg2, target)
        assert proc.returncode != 0  # refused when the DAG starts, before any job (srg.config.check_environment)
        assert f"{KEY_ENV} (named by config key 'synthesis.teacher.options.api_key_env')" in proc.stdout + proc.stderr
        assert _files_containing(tmp_path, KEY) == []
    finally:
        server.close()
        os.environ.pop(KEY_ENV, None)
