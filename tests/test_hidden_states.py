"""Hidden-state extraction on a tiny random Llama with the real SmolLM2 tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from srg import hidden_states as hs
from srg.io import write_jsonl

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

N_LAYERS, D = 2, 32


@pytest.fixture(scope="module")
def tok(model_dir):
    from srg.models import load_tokenizer

    return load_tokenizer(str(model_dir))


@pytest.fixture(scope="module")
def tiny(tok):
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=D,
        intermediate_size=64,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return transformers.LlamaForCausalLM(cfg).float().eval()


def recs(*prompts, system=None):
    return [
        {
            "id": f"p{i}",
            "prompt": p,
            "source": "t",
            "category": "t",
            "split": "test",
            "meta": {"system": system} if system else {},
        }
        for i, p in enumerate(prompts)
    ]


LONG = "Please explain, in a very long and detailed way with many words, " * 4 + "how rainbows form."


def test_shapes_dtype_and_layers(tiny, tok):
    last, mean = hs.extract_hidden_states(tiny, tok, recs("hi", "tell me a joke", LONG), batch_size=2)
    assert last.shape == mean.shape == (3, N_LAYERS + 1, D)
    assert last.dtype == mean.dtype == np.float16
    assert np.isfinite(last).all() and np.isfinite(mean).all()
    l2, m2 = hs.extract_hidden_states(tiny, tok, recs("hi", "tell me a joke", LONG), batch_size=2, layers=[-1, 0])
    np.testing.assert_array_equal(l2[:, 0], last[:, -1])
    np.testing.assert_array_equal(m2[:, 1], mean[:, 0])


def _manual(tiny, tok, record):
    """Unbatched float32 reference: states of the exact chat prompt, no padding."""
    ids, _ = hs.encode_prompts(tok, [record])
    with torch.inference_mode():
        out = tiny(input_ids=torch.tensor(ids), output_hidden_states=True)
    H = torch.stack(out.hidden_states, 1)[0].float().numpy()  # (L+1) x t x d
    return H[:, -1, :], H.mean(axis=1), ids[0]


def test_padding_invariance_and_mean_ignores_pads(tiny, tok):
    short = recs("What is the capital of France?")[0]
    alone_last, alone_mean = hs.extract_hidden_states(tiny, tok, [short], batch_size=4)
    batch = [short, {**recs(LONG)[0], "id": "long"}]
    b_last, b_mean = hs.extract_hidden_states(tiny, tok, batch, batch_size=4)
    ref_last, ref_mean, ids = _manual(tiny, tok, short)
    # the last token is the end of the generation prompt
    text = tok.decode(ids)
    assert text.rstrip().endswith("assistant")
    for got in (alone_last[0], b_last[0]):
        np.testing.assert_allclose(got.astype(np.float32), ref_last, rtol=1e-2, atol=1e-2)
    for got in (alone_mean[0], b_mean[0]):  # padded in the batch: pads must not enter the mean
        np.testing.assert_allclose(got.astype(np.float32), ref_mean, rtol=1e-2, atol=1e-2)


def test_system_prompt_from_meta_changes_states(tiny, tok):
    a, _ = hs.extract_hidden_states(tiny, tok, recs("hello there"))
    b, _ = hs.extract_hidden_states(tiny, tok, recs("hello there", system="You are a pirate."))
    assert not np.allclose(a.astype(np.float32), b.astype(np.float32))


def test_run_extraction_resume_and_roundtrip(tiny, tok, tmp_path):
    prompts = tmp_path / "set.jsonl"
    write_jsonl(prompts, recs("a", "bb", "ccc ccc", "dddd", LONG))
    out = tmp_path / "hidden" / "set.npz"
    kw = dict(
        model_name="tiny", batch_size=2, shard_size=2, max_prompts=4, model=tiny, tokenizer=tok, log=lambda *_: None
    )
    # a pre-existing shard 0 (sentinel values) must be kept, not recomputed
    opts = {"dtype": "float32", "max_prompt_tokens": 1024, "system_prompt": None, "layers": "all"}
    from srg.io import read_jsonl

    records = read_jsonl(prompts)[:4]
    from srg.models import model_fingerprint

    sdir = hs.shard_dir(
        out, {"model": model_fingerprint("tiny-path"), "records": hs._records_key(records), "opts": opts, "shard": 2}
    )
    sdir.mkdir(parents=True)
    sentinel = np.full((2, N_LAYERS + 1, D), 7, dtype=np.float16)
    hs._save_npz(sdir / "00000.npz", last=sentinel, mean=sentinel, ids=np.array(["p0", "p1"]), stats=np.array([0, 0]))
    stats = hs.run_extraction(prompts, "tiny-path", out, **kw)
    assert stats["resumed_shards"] == 1 and stats["extracted"] == 2
    assert sorted(f.name for f in sdir.iterdir()) == ["00000.npz", "00001.npz"]  # kept for reruns
    ids, last, mean = hs.load_states(out)
    assert list(ids) == ["p0", "p1", "p2", "p3"]
    assert last.shape == mean.shape == (4, N_LAYERS + 1, D) and last.dtype == np.float16
    np.testing.assert_array_equal(last[:2], sentinel)
    ref_last, _ = hs.extract_hidden_states(tiny, tok, records[2:], batch_size=2)
    np.testing.assert_array_equal(last[2:], ref_last)
    meta = hs.load_meta(out)
    assert meta["model"] == "tiny" and meta["layers"] == list(range(N_LAYERS + 1))
    assert meta["num_hidden_layers"] == N_LAYERS and meta["storage_dtype"] == "float16"
    json.dumps(meta)
    # the job reruns (Snakemake removed the output because another set of the job changed): this
    # set is merged from its kept shards, nothing extracted, the same arrays
    out.unlink()
    stats2 = hs.run_extraction(prompts, "tiny-path", out, **kw)
    assert stats2["resumed_shards"] == 2 and stats2["extracted"] == 0
    np.testing.assert_array_equal(hs.load_states(out)[1], last)
    # another prompt set under the same output name (an edited set): the old shards are dropped
    write_jsonl(prompts, recs("a", "bb", "changed", "dddd", LONG))
    stats3 = hs.run_extraction(prompts, "tiny-path", out, **kw)
    assert stats3["resumed_shards"] == 0 and stats3["extracted"] == 4 and not sdir.exists()


def test_cli_rejects_unknown_params(tmp_path):
    with pytest.raises(SystemExit):
        hs.main(
            [
                "--prompts",
                "x",
                "--model-path",
                "y",
                "--out",
                str(tmp_path / "o.npz"),
                "--params",
                json.dumps({"nope": 1}),
            ]
        )


def test_cli_several_sets_load_the_model_once(save_tiny_llama, tmp_path, monkeypatch):
    """One job, several prompt sets: each output equals its own one-set run; the model loads once."""
    from srg import models

    path = save_tiny_llama(tmp_path / "tiny")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(a, recs("hi", "tell me a joke"))
    write_jsonl(b, recs("hello there", LONG, "x"))
    params = json.dumps({"dtype": "float32", "batch_size": 2, "shard_size": 2, "threads": 1})
    hs.main(["--prompts", str(b), "--model-path", str(path), "--out", str(tmp_path / "b1.npz"), "--params", params])
    loads = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    outs = [str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]
    hs.main(["--prompts", str(a), str(b), "--model-path", str(path), "--out", *outs, "--params", params])
    assert len(loads) == 1
    assert list(hs.load_states(outs[0])[0]) == ["p0", "p1"]
    np.testing.assert_array_equal(hs.load_states(outs[1])[1], hs.load_states(tmp_path / "b1.npz")[1])
    with pytest.raises(SystemExit):  # outputs must pair up with prompt sets
        hs.main(["--prompts", str(a), str(b), "--model-path", str(path), "--out", outs[0]])


def test_states_equal_a_forward_with_every_logit(tiny, tok):
    """Extraction skips the LM head on all but the last position (``logits_to_keep=1``, ~1/5 of
    the forward at SmolLM2's 49k vocabulary); the hidden states are those of a plain forward."""
    from srg.models import left_pad

    records = recs("hi", LONG)
    last, mean = hs.extract_hidden_states(tiny, tok, records, batch_size=2)
    encoded, _ = hs.encode_prompts(tok, records, 1024)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    ids, mask = left_pad([encoded[i] for i in order], tok.pad_token_id, "cpu")
    with torch.inference_mode():
        out = tiny(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            output_hidden_states=True,
            use_cache=False,
        )
    ref = torch.stack(out.hidden_states, dim=1)[:, :, -1, :].float().numpy().astype(np.float16)
    assert out.logits.shape[1] == ids.shape[1]  # the reference did compute every position's logits
    np.testing.assert_array_equal(last[order], ref)
