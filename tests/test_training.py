"""Fine-tuning module: config parsing, dataset format, completion-only masking, tiny LoRA/full runs.

The runs use a tiny random Llama (hidden 32, 2 layers) with the SmolLM2 tokenizer and chat
template, taken from ``resources/models/smollm2-135m-instruct`` or ``/tmp/exp/conv``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from srg import training
from srg.training import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[1]

ROWS = [
    {
        "id": "a",
        "prompt": "What is 2+2?",
        "completion": "2+2 equals 4.",
        "system": None,
        "source": "toy",
        "kind": "benign",
    },
    {
        "id": "b",
        "prompt": "Name a primary colour.",
        "completion": "Red is a primary colour.",
        "source": "toy",
        "kind": "benign",
    },
    {
        "id": "c",
        "prompt": "What is the capital of France?",
        "completion": "Paris.",
        "system": None,
        "source": "toy",
        "kind": "benign",
    },
    {
        "id": "d",
        "prompt": "Say hello.",
        "completion": "Hello!",
        "system": "Be brief.",
        "source": "toy",
        "kind": "benign",
    },
]


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, save_tiny_llama) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny_model"), seed=0)


@pytest.fixture()
def train_file(tmp_path) -> Path:
    return _write_jsonl(tmp_path / "train.jsonl", ROWS)


def _fast_cfg(**kw) -> TrainConfig:
    base = dict(per_device_train_batch_size=2, max_length=128, logging_steps=1, bf16=False, learning_rate=1e-3)
    base.update(kw)
    return TrainConfig(**base)


# ----------------------------------------------------------------------------------- config


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="lora_rank.*max_seq_length|max_seq_length.*lora_rank"):
        TrainConfig.from_dict({"lora_rank": 8, "max_seq_length": 10, "lora_r": 4})


def test_from_dict_accepts_known_keys():
    cfg = TrainConfig.from_dict({"method": "srg", "lora_r": 4, "target_modules": ("q_proj",), "max_steps": 3})
    assert (cfg.method, cfg.lora_r, cfg.target_modules, cfg.max_steps) == ("srg", 4, ["q_proj"], 3)
    assert TrainConfig.from_dict({}) == TrainConfig()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


# ------------------------------------------------------------------------------------- data


def test_load_sft_dataset_conversational_prompt_completion(train_file):
    ds = training.load_sft_dataset(train_file)
    assert len(ds) == 4 and set(ds.column_names) == {"prompt", "completion"}
    assert ds[0]["prompt"] == [{"role": "user", "content": "What is 2+2?"}]
    assert ds[0]["completion"] == [{"role": "assistant", "content": "2+2 equals 4."}]
    assert ds[1]["prompt"] == [{"role": "user", "content": "Name a primary colour."}]  # no "system" key
    assert ds[3]["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]


def test_load_sft_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        training.load_sft_dataset(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no rows"):
        training.load_sft_dataset(tmp_path / "empty.jsonl")


def test_train_missing_inputs(tmp_path, train_file):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        training.train(tmp_path / "missing.jsonl", tmp_path, tmp_path / "out", _fast_cfg())
    with pytest.raises(FileNotFoundError, match="no_model"):
        training.train(train_file, tmp_path / "no_model", tmp_path / "out", _fast_cfg())


def test_train_empty_dataset(tmp_path, tiny_model_dir):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError):
        training.train(empty, tiny_model_dir, tmp_path / "out", _fast_cfg())


# ---------------------------------------------------------------------------------- masking


def test_completion_only_masking(tmp_path, tiny_model_dir, train_file):
    trainer, tok, _ = training.build_trainer(train_file, tiny_model_dir, tmp_path / "out", _fast_cfg(max_steps=1))
    assert trainer.completion_only_loss
    for i, row in enumerate(ROWS):
        messages = training.to_prompt_completion(row)
        prompt_ids = tok.apply_chat_template(
            messages["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        ex = trainer.train_dataset[i]
        ids, labels = ex["input_ids"], ex["labels"]
        n = len(prompt_ids)
        assert ids[:n] == list(prompt_ids)  # prompt ends with the generation prompt "<|im_start|>assistant\n"
        assert tok.decode(ids[:n]).endswith("<|im_start|>assistant\n")
        assert all(label == -100 for label in labels[:n])
        assert labels[n:] == ids[n:] and len(labels) > n
        completion = tok.decode(ids[n:])
        assert completion.startswith(row["completion"]) and "<|im_end|>" in completion
        if row.get("system") is None:
            assert "You are a helpful AI assistant named SmolLM" in tok.decode(ids[:n])  # template default
    # the collator keeps the -100s and pads labels with -100
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[2]])
    assert (batch["labels"] == -100).any(dim=1).all()
    n0 = len(
        tok.apply_chat_template(
            training.to_prompt_completion(ROWS[0])["prompt"],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
    )
    assert (batch["labels"][0, :n0] == -100).all() and (batch["labels"][0, n0:] != -100).any()


# ------------------------------------------------------------------------------------- runs


def _check_outputs(out: Path, log: dict, lora: bool):
    assert math.isfinite(log["final_loss"]) and log["loss_history"]
    assert all(math.isfinite(h["loss"]) for h in log["loss_history"])
    assert log["n_examples"] == 4 and log["trainable_params"] > 0
    assert json.loads((out / "train_log.json").read_text())["final_loss"] == log["final_loss"]
    assert (out / "adapter" / "adapter_config.json").is_file() == lora
    merged = out / "merged"
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    assert (merged / "tokenizer.json").is_file() and (merged / "chat_template.jinja").is_file()
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    assert not list((out / "trainer").glob("checkpoint-*"))

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(merged)
    tok = AutoTokenizer.from_pretrained(merged)
    assert "peft" not in type(model).__module__
    enc = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        gen = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert gen.shape[1] > enc["input_ids"].shape[1]


def test_train_lora(tmp_path, tiny_model_dir, train_file):
    out = tmp_path / "lora"
    log = training.train(train_file, tiny_model_dir, out, _fast_cfg(lora=True, lora_r=4, lora_alpha=8, max_steps=3))
    assert log["global_steps"] == 3 and log["trainable_params"] < log["total_params"]
    _check_outputs(out, log, lora=True)


def test_train_full_via_cli(tmp_path, tiny_model_dir, train_file):
    out = tmp_path / "full"
    cfg = {
        "lora": False,
        "max_steps": 2,
        "per_device_train_batch_size": 2,
        "max_length": 128,
        "logging_steps": 1,
        "bf16": False,
    }
    assert (
        training.main(
            [
                "--train-jsonl",
                str(train_file),
                "--base-model",
                str(tiny_model_dir),
                "--out",
                str(out),
                "--config-json",
                json.dumps(cfg),
            ]
        )
        == 0
    )
    log = json.loads((out / "train_log.json").read_text())
    assert log["global_steps"] == 2 and log["trainable_params"] == log["total_params"]
    _check_outputs(out, log, lora=False)


def test_same_seed_same_weights(tmp_path, tiny_model_dir, train_file):
    """Two LoRA runs with one seed on one machine merge to byte-identical weights (a third with
    another seed does not), so everything downstream of training can repeat bit for bit."""

    def weights(name, seed):
        out = tmp_path / name
        training.train(
            train_file, tiny_model_dir, out, _fast_cfg(lora=True, lora_r=4, lora_alpha=8, max_steps=3, seed=seed)
        )
        return (out / "merged" / "model.safetensors").read_bytes()

    a, b = weights("a", 0), weights("b", 0)
    assert a == b
    assert weights("c", 1) != a


def test_seed_decides_the_lora_init(tmp_path, tiny_model_dir, train_file):
    """The training seed is set before PEFT wraps the model: seed replicates start from different
    LoRA A matrices (not only a different data order); one seed gives the same init."""
    import torch

    def lora_a(seed):
        trainer, _, _ = training.build_trainer(
            train_file, tiny_model_dir, tmp_path / f"s{seed}", _fast_cfg(lora=True, lora_r=4, max_steps=1, seed=seed)
        )
        return torch.cat([p.detach().flatten() for n, p in trainer.model.named_parameters() if "lora_A" in n])

    a0 = lora_a(0)
    assert torch.equal(a0, lora_a(0))
    assert not torch.equal(a0, lora_a(1))


# ------------------------------------------------------------------------------- CPU step


def _batch(trainer):
    return trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])


def test_cpu_step_loss_equals_trl_and_full_logits(tmp_path, tiny_model_dir, train_file):
    """srg.sft_cpu's loss (completion positions only) equals TRL's fused-head loss and a plain
    masked cross-entropy over the full logits, and so do its gradients (fp32)."""
    import torch
    from trl import SFTTrainer

    from srg.sft_cpu import CompletionLossSFTTrainer

    trainer, _, _ = training.build_trainer(
        train_file, tiny_model_dir, tmp_path / "out", _fast_cfg(lora=True, lora_r=4, lora_dropout=0.0, max_steps=1)
    )
    assert isinstance(trainer, CompletionLossSFTTrainer) and trainer.model.config._attn_implementation == "eager"
    model = trainer.model
    model.train()
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    with torch.no_grad():  # LoRA's B starts at zero: give the adapter a non-zero effect
        for p in lora_b:
            p.normal_(0, 0.02)
    batch = _batch(trainer)

    def loss_and_grads(compute):
        model.zero_grad()
        loss = compute()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in lora_b]

    ours, g_ours = loss_and_grads(lambda: trainer.compute_loss(model, dict(batch)))
    trl, g_trl = loss_and_grads(lambda: SFTTrainer.compute_loss(trainer, model, dict(batch)))

    def reference():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1))

    ref, g_ref = loss_and_grads(reference)
    assert torch.allclose(ours, trl, atol=1e-5) and torch.allclose(ours, ref, atol=1e-5)
    for a, b, c in zip(g_ours, g_trl, g_ref):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4) and torch.allclose(a, c, atol=1e-6, rtol=1e-4)
    # the Trainer's token count across accumulation steps divides the summed log-likelihood
    n = int((batch["labels"][:, 1:] != -100).sum())
    halved = trainer.compute_loss(model, dict(batch), num_items_in_batch=torch.tensor(2 * n))
    assert torch.allclose(halved, ours / 2, atol=1e-6)


def test_cpu_step_keeps_frozen_weights_in_bf16_and_merges_full_precision(tmp_path, tiny_model_dir, train_file):
    """With bf16 autocast, LoRA's frozen linear weights train as bf16 copies, but the merged model
    is the full-precision checkpoint plus the adapter's delta (the tiny model's random fp32 weights
    are not bf16 values, so a merge into the copies would show)."""
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "bf16"
    cfg = _fast_cfg(lora=True, lora_r=4, lora_alpha=8, max_steps=2, bf16=True, target_modules=["q_proj"])
    trainer, _, _ = training.build_trainer(train_file, tiny_model_dir, out, cfg)
    assert trainer.frozen_cast
    q = trainer.model.get_base_model().model.layers[0].self_attn.q_proj
    assert q.base_layer.weight.dtype == torch.bfloat16 and q.lora_A["default"].weight.dtype == torch.float32
    training.train(train_file, tiny_model_dir, out, cfg)

    base = load_file(tiny_model_dir / "model.safetensors")
    merged = load_file(out / "merged" / "model.safetensors")
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    name = "model.layers.0.self_attn.q_proj"
    a = adapter[f"base_model.model.{name}.lora_A.weight"]
    b = adapter[f"base_model.model.{name}.lora_B.weight"]
    assert b.abs().sum() > 0  # trained
    expected = base[f"{name}.weight"] + (8 / 4) * b @ a
    assert merged[f"{name}.weight"].dtype == torch.float32
    assert torch.allclose(merged[f"{name}.weight"], expected, atol=1e-6)
    assert torch.equal(merged["model.layers.0.self_attn.k_proj.weight"], base["model.layers.0.self_attn.k_proj.weight"])
