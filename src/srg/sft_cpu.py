"""A faster SFT step on CPU with the same completion-only loss as TRL's.

TRL 1.16's ``SFTTrainer`` computes the loss through a fused, chunked LM head. On a device without
Triton (a CPU) that head scores *every* position, prompt and padding included, with per-tile
torch ops in fp32, and its backward re-projects every tile and accumulates in fp32: about half of
an SRG training step on 2 cores (torch profiler, ``benchmarks/training_step.py``). On CPU this
module instead

- scores only the completion positions (the shifted labels that are not -100) with one LM-head
  matmul under the trainer's autocast, then ``log_softmax`` in fp32: the same negative
  log-likelihood, summed and divided by the same token count (``num_items_in_batch``);
- trains with eager attention (``sdpa``'s CPU backward was the next largest cost at these
  lengths);
- keeps LoRA's frozen linear weights in the autocast dtype, so autocast does not cast them again
  at every call. The matmuls see the same bf16 values as before; the weights are merged from the
  original checkpoint (:func:`merge_lora_from_checkpoint`), so the merged model is
  ``W + BA * scale`` from the full-precision ``W``.

On CUDA nothing changes: TRL's fused head is what keeps an 8B model's logits out of memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from trl import SFTTrainer


def completion_nll(lm, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the completion tokens of ``inputs``.

    ``lm`` is a causal LM (a PEFT model's base model is fine: LoRA lives inside its modules).
    Returns ``(token_logp, logp, targets)``: the log-probability of each label that is not -100
    (after the one-token shift), the full fp32 log-softmax rows at those positions and the labels.
    """
    labels = inputs["labels"][:, 1:]
    mask = labels != -100
    backbone = lm.base_model  # transformers: the decoder stack, ``getattr(lm, lm.base_model_prefix)``
    hidden = backbone(
        input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False
    ).last_hidden_state
    logits = lm.get_output_embeddings()(hidden[:, :-1][mask])
    logp = torch.log_softmax(logits.float(), dim=-1)
    targets = labels[mask]
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1), logp, targets


class CompletionLossSFTTrainer(SFTTrainer):
    """``SFTTrainer`` whose loss on CPU scores the completion positions only (module docstring)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs or model.device.type != "cpu" or self.args.loss_type != "nll":
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        lm = model.get_base_model() if hasattr(model, "get_base_model") else model
        with self.accelerator.autocast():  # accelerate autocasts ``model.forward``; the backbone is called directly
            token_logp, logp, targets = completion_nll(lm, inputs)
        n_tokens = targets.numel() if num_items_in_batch is None else num_items_in_batch
        loss = -token_logp.sum() / torch.as_tensor(n_tokens).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        self._log_metrics(model, inputs, logp, targets)
        return loss

    @torch.no_grad()
    def _log_metrics(self, model, inputs, logp: torch.Tensor, targets: torch.Tensor) -> None:
        """The metrics TRL logs: mean entropy, top-1 accuracy over completion tokens, tokens seen."""
        mode = "train" if model.training else "eval"
        n = max(targets.numel(), 1)
        entropy = -(logp.exp() * logp).sum(-1).sum().item()
        correct = (logp.argmax(-1) == targets).sum().item()
        self._metrics[mode]["entropy"].append(entropy / n)
        self._metrics[mode]["mean_token_accuracy"].append(correct / n)
        if mode == "train":
            self._total_train_tokens += int(inputs["attention_mask"].sum())
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]


def cast_frozen_linears(model, dtype: torch.dtype) -> int:
    """Store every frozen ``nn.Linear`` weight (not the LM head, not LoRA's) in ``dtype``; returns
    how many were cast. Under autocast to ``dtype`` the matmuls see the same values."""
    n = 0
    for name, module in model.named_modules():
        if type(module) is torch.nn.Linear and not module.weight.requires_grad and "lora_" not in name:
            if name.endswith("lm_head"):
                continue
            module.to(dtype)
            n += 1
    return n


def merge_lora_from_checkpoint(load_base, adapter_dir: str | Path) -> Any:
    """The base model as ``load_base()`` returns it (full precision) with the saved adapter merged in."""
    from peft import PeftModel

    return PeftModel.from_pretrained(load_base(), str(adapter_dir)).merge_and_unload()
