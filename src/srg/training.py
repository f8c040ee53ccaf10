"""Supervised fine-tuning (RT / SRG) with TRL's SFTTrainer, LoRA via PEFT or full fine-tuning.

Training rows (JSONL) are ``{"id", "prompt", "completion", "system" (optional, may be null),
"source", "kind"}``. They become TRL *conversational prompt-completion* examples::

    {"prompt": [{"role": "system", ...}?, {"role": "user", "content": prompt}],
     "completion": [{"role": "assistant", "content": completion}]}

For this format TRL 1.16 tokenizes the prompt with ``add_generation_prompt=True`` and, because
``completion_only_loss`` is left at ``None`` (auto: on for prompt-completion data), sets the labels
of every prompt token to -100: the loss covers only the assistant's completion and its closing
``<|im_end|>``. No system message is added unless a row has one, so the chat template's default
system prompt is used, exactly as at evaluation time.

Outputs under ``out_dir``: ``adapter/`` (LoRA only), ``merged/`` (always: full weights +
tokenizer + chat template, what the rest of the pipeline loads), ``train_log.json`` and
``trainer/`` (the Trainer's output dir; no intermediate checkpoints are saved).

Runs as ``python -m srg.training`` and equally under ``accelerate launch -m srg.training`` (the
device and the number of processes come from accelerate / the Trainer; only the main process
writes the adapter, the merged model and the log).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

# Config keys that do not go to TRL's SFTConfig under their own name: PEFT's LoraConfig fields
# (config name -> LoraConfig name), and keys this module resolves itself.
LORA_KEYS = {
    "lora_r": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "target_modules": "target_modules",
}
OWN_KEYS = ("method", "lora", "bf16", "warmup_ratio")


class TrainConfig:
    """Hyper-parameters of one fine-tuning run: ``method`` plus exactly the keys of
    ``config/schema.yaml`` ``$defs.training``, the one place their types, ranges and defaults are
    declared. Every key other than ``LORA_KEYS`` and ``OWN_KEYS`` is passed unchanged to TRL's
    ``SFTConfig`` (so exposing another SFTConfig field is one schema line); ``LORA_KEYS`` go to
    PEFT's ``LoraConfig``.

    The defaults (LoRA r=16/alpha 32 on all linear projections, lr 5e-4, 2 epochs, 4 x 2
    accumulation, max_length 256, bf16 autocast) were sized on the 2-core CPU.
    """

    def __init__(self, method: str = "rt", **fields: Any):
        from jsonschema import Draft202012Validator

        from srg.config import fill_defaults, load_schema

        schema = load_schema()["$defs"]["training"]
        known = sorted(schema["properties"])
        unknown = sorted(set(fields) - set(known))
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {unknown}; known keys: {['method', *known]}")
        if fields.get("target_modules") is not None:
            fields["target_modules"] = list(fields["target_modules"])
        full = fill_defaults(fields, schema)
        errors = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in Draft202012Validator(schema).iter_errors(full)
        ]
        if errors:
            raise ValueError("invalid TrainConfig: " + "; ".join(errors))
        self.method = method
        self.__dict__.update(full)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TrainConfig:
        return cls(**dict(d or {}))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrainConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"TrainConfig({self.to_dict()})"

    def sft_kwargs(self) -> dict[str, Any]:
        """The SFTConfig fields this config sets: every key except the LoRA and own ones."""
        return {k: v for k, v in self.to_dict().items() if k not in LORA_KEYS and k not in OWN_KEYS}

    def lora_kwargs(self) -> dict[str, Any] | None:
        """LoraConfig fields, or None for full fine-tuning."""
        return {LORA_KEYS[k]: self.to_dict()[k] for k in LORA_KEYS} if self.lora else None


# ----------------------------------------------------------------------------------------- data


def _read_rows(jsonl_path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(jsonl_path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{jsonl_path}:{lineno}: invalid JSON: {e}") from e
    return rows


def to_prompt_completion(row: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """One training row -> a conversational prompt-completion example."""
    for key in ("prompt", "completion"):
        if not isinstance(row.get(key), str):
            raise ValueError(f"training row {row.get('id')!r}: {key!r} must be a string")
    prompt = []
    if row.get("system") is not None:
        prompt.append({"role": "system", "content": row["system"]})
    prompt.append({"role": "user", "content": row["prompt"]})
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": row["completion"]}]}


def load_sft_dataset(jsonl_path: str | os.PathLike):
    """Read a training JSONL into a ``datasets.Dataset`` with ``prompt``/``completion`` message lists."""
    from datasets import Dataset

    path = Path(jsonl_path)
    if not path.is_file():
        raise FileNotFoundError(f"training file not found: {path}")
    rows = _read_rows(path)
    if not rows:
        raise ValueError(f"training file {path} has no rows")
    examples = [to_prompt_completion(r) for r in rows]
    return Dataset.from_list(examples)


# ------------------------------------------------------------------------------------ training


def resolve_bf16(bf16: bool | None) -> bool:
    """``None`` -> bf16 autocast where the hardware computes bf16 natively: a bf16-capable CUDA
    device, or a CPU with AVX512-BF16 / AMX (``models.cpu_has_native_bf16``); fp32 elsewhere.

    Measured on a 2-core CPU with native bf16 (SmolLM2-135M, LoRA r=16, batch 8 x 96 tokens): fp32
    0.42 s per example, bf16 autocast 0.25 s. On an AVX2-only CPU bf16 autocast is emulated and a
    step took over 10x longer than fp32 (full fine-tuning, batch 8 x 200: fp32 21 s per step).
    """
    if bf16 is not None:
        return bool(bf16)
    import torch

    from srg.models import cpu_has_native_bf16

    return bool(torch.cuda.is_bf16_supported()) if torch.cuda.is_available() else cpu_has_native_bf16()


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _load_model_and_tokenizer(base_model_dir: Path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(base_model_dir)
    # A checkpoint converted from GGUF keeps a stale ``quantization_config`` although its
    # safetensors are plain floats; left in, it makes transformers treat the model as quantized.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_pretrained(base_model_dir, config=config, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ValueError(f"tokenizer in {base_model_dir} has no chat template")
    return model, tokenizer


def _save_merged(model, tokenizer, base_model_dir: Path, dest: Path) -> None:
    """Write full weights + tokenizer + chat template to a temp dir beside ``dest``, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tpl = base_model_dir / "chat_template.jinja"
        if not (tmp / "chat_template.jinja").exists() and tpl.exists():
            shutil.copy2(tpl, tmp / "chat_template.jinja")
        gen = base_model_dir / "generation_config.json"
        if not (tmp / "generation_config.json").exists() and gen.exists():
            shutil.copy2(gen, tmp / "generation_config.json")
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old)
        else:
            os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def build_trainer(
    train_jsonl: str | os.PathLike,
    base_model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: TrainConfig | None = None,
    cpu_step: bool = True,
):
    """Validate inputs and build the ``SFTTrainer`` (dataset already tokenized and labelled).

    On CPU the step is ``srg.sft_cpu``'s (the same loss, faster) unless ``cpu_step`` is False
    (TRL's stock step: the benchmark's baseline). Returns ``(trainer, tokenizer, dataset)``;
    :func:`train` runs it and writes the outputs.
    """
    cfg = cfg or TrainConfig()
    train_jsonl, base_model_dir, out_dir = Path(train_jsonl), Path(base_model_dir), Path(out_dir)
    if not train_jsonl.is_file():
        raise FileNotFoundError(f"training file not found: {train_jsonl}")
    if not base_model_dir.is_dir():
        raise FileNotFoundError(f"base model directory not found: {base_model_dir}")
    if not (base_model_dir / "config.json").is_file():
        raise FileNotFoundError(f"base model config not found: {base_model_dir / 'config.json'}")

    dataset = load_sft_dataset(train_jsonl)

    import torch
    from peft import LoraConfig
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(cfg.seed)  # before PEFT wraps the model: the seed decides the LoRA init, not only the data order
    model, tokenizer = _load_model_and_tokenizer(base_model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    args = SFTConfig(
        **cfg.sft_kwargs(),
        output_dir=str(out_dir / "trainer"),
        bf16=resolve_bf16(cfg.bf16),
        use_cpu=not _cuda_available(),  # transformers only allows bf16 autocast on CPU with use_cpu
        # transformers 5 folds the old warmup_ratio into warmup_steps: a float in [0, 1) is a ratio
        warmup_steps=float(cfg.warmup_ratio),
        completion_only_loss=None,  # auto: True for prompt-completion data
        assistant_only_loss=False,
        packing=False,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
    )
    lora = cfg.lora_kwargs()
    peft_config = LoraConfig(**lora, bias="none", task_type="CAUSAL_LM") if lora is not None else None
    trainer_class = SFTTrainer
    on_cpu = cpu_step and not _cuda_available()
    if on_cpu:  # srg.sft_cpu: completion positions only, eager attention, frozen weights in bf16
        from srg.sft_cpu import CompletionLossSFTTrainer, cast_frozen_linears

        trainer_class = CompletionLossSFTTrainer
        model.set_attn_implementation("eager")
    trainer = trainer_class(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    )
    if not trainer.completion_only_loss:  # guard against a TRL behaviour change
        raise RuntimeError("SFTTrainer did not enable completion-only loss for prompt-completion data")
    trainer.frozen_cast = bool(on_cpu and lora is not None and args.bf16) and (
        cast_frozen_linears(trainer.model, torch.bfloat16) > 0
    )
    return trainer, tokenizer, dataset


def train(
    train_jsonl: str | os.PathLike,
    base_model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: TrainConfig | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base_model_dir`` on ``train_jsonl``; write adapter/merged/log under ``out_dir``."""
    cfg = cfg or TrainConfig()
    trainer, tokenizer, dataset = build_trainer(train_jsonl, base_model_dir, out_dir, cfg)
    train_jsonl, base_model_dir, out_dir = Path(train_jsonl), Path(base_model_dir), Path(out_dir)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())

    t0 = time.time()
    result = trainer.train()
    wall = time.time() - t0

    history = [
        {"step": h["step"], "loss": h["loss"], "lr": h.get("learning_rate"), "epoch": h.get("epoch")}
        for h in trainer.state.log_history
        if "loss" in h
    ]
    final_loss = history[-1]["loss"] if history else result.training_loss
    log = {
        "method": cfg.method,
        "config": cfg.to_dict(),
        "train_jsonl": str(train_jsonl),
        "base_model": str(base_model_dir),
        "n_examples": len(dataset),
        "global_steps": trainer.state.global_step,
        "trainable_params": trainable,
        "total_params": total,
        "wall_time_s": round(wall, 3),
        "train_loss_mean": result.training_loss,
        "final_loss": final_loss,
        "loss_history": history,
        "world_size": trainer.args.world_size,
    }
    if final_loss is None or not math.isfinite(final_loss):
        raise RuntimeError(f"training loss is not finite: {final_loss}")

    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        model = trainer.model
        if cfg.lora:
            adapter_dir = out_dir / "adapter"
            model.save_pretrained(adapter_dir)
            tokenizer.save_pretrained(adapter_dir)
            if trainer.frozen_cast:  # merge into the full-precision checkpoint, not the bf16 copies
                from srg.sft_cpu import merge_lora_from_checkpoint

                model = merge_lora_from_checkpoint(lambda: _load_model_and_tokenizer(base_model_dir)[0], adapter_dir)
            else:
                model = model.merge_and_unload()
        _save_merged(model, tokenizer, base_model_dir, out_dir / "merged")
        from srg.io import atomic_path

        with atomic_path(out_dir / "train_log.json") as tmp:
            tmp.write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    trainer.accelerator.wait_for_everyone()
    return log


# ------------------------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="srg.training", description=__doc__.splitlines()[0])
    ap.add_argument("--train-jsonl", required=True)
    ap.add_argument("--base-model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config-json", default="{}", help="TrainConfig fields as a JSON object")
    ap.add_argument("--config-file", help="TrainConfig fields in a JSON file (overridden by --config-json)")
    a = ap.parse_args(argv)
    d: dict[str, Any] = {}
    if a.config_file:
        d.update(json.loads(Path(a.config_file).read_text(encoding="utf-8")))
    d.update(json.loads(a.config_json))
    log = train(a.train_jsonl, a.base_model, a.out, TrainConfig.from_dict(d))
    print(json.dumps({k: log[k] for k in ("n_examples", "global_steps", "final_loss", "wall_time_s")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
