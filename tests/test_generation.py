from pathlib import Path

import pytest

from srg import backends as be_api
from srg import generation as g
from srg.backends import hf
from srg.io import read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def backend(model_dir):
    return hf.HFBackend(str(model_dir), dtype="float32", batch_size=8)


REQS = [
    be_api.Request("Name three primary colours."),
    be_api.Request("What is 2 + 2?"),
    be_api.Request("Write one sentence about the sea.", system="You are terse."),
]


def test_greedy_is_deterministic_and_ordered(backend):
    p = be_api.SamplingParams(n=1, greedy=True, max_new_tokens=8)
    a = backend.generate(REQS, p)
    b = backend.generate(list(reversed(REQS)), p)
    assert [x[0].text for x in a] == [x[0].text for x in reversed(b)]
    assert all(0 < x[0].n_tokens <= 8 for x in a)


def test_shared_prefill_matches_plain_decoding(backend):
    """n samples with top_k=1 reuse one prefill per prompt and must equal greedy decoding (fp32)."""
    greedy = backend.generate(REQS, be_api.SamplingParams(n=1, greedy=True, max_new_tokens=8))
    shared = backend.generate(REQS, be_api.SamplingParams(n=3, greedy=False, top_k=1, max_new_tokens=8))
    for gr, sh in zip(greedy, shared):
        assert [c.text for c in sh] == [gr[0].text] * 3


def test_sampling_is_seeded(backend):
    p = be_api.SamplingParams(n=4, greedy=False, temperature=1.0, max_new_tokens=8, seed=3)
    a = backend.generate(REQS[:2], p)
    b = backend.generate(REQS[:2], p)
    assert [[c.text for c in x] for x in a] == [[c.text for c in x] for x in b]
    assert len({c.text for c in a[0]}) > 1  # real sampling, not n copies


def test_params_validation():
    with pytest.raises(ValueError):
        be_api.SamplingParams(n=2, greedy=True)
    with pytest.raises(ValueError):
        be_api.SamplingParams(n=0)
    with pytest.raises(ValueError, match="unknown generation backend 'nope'"):
        be_api.make_backend("nope")


def test_prompt_truncation_cuts_the_middle_of_the_user_text(model_dir):
    """A long prompt keeps the system turn, the user header, the request's head and tail, and
    the generation prompt; only the middle of the user text goes."""
    from srg.models import encode_chat, load_tokenizer

    tok = load_tokenizer(str(model_dir))
    user = "Start here. " + "filler word " * 200 + "What is 2 + 2?"
    ids, cut = encode_chat(tok, user, "You are terse.", 48, prefill="<reasoning>")
    text = tok.decode(ids)
    bare, _ = encode_chat(tok, user, "You are terse.", 48)
    assert cut and len(bare) <= 48 and ids[: len(bare)] == bare  # the limit bounds the prompt before the prefill
    long_prefill, _ = encode_chat(tok, user, "You are terse.", 48, prefill="<reasoning>\n" + "a thought " * 30)
    assert long_prefill[: len(bare)] == bare  # however long the prefill, the request is cut the same way
    assert text.startswith("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nStart here.")
    assert "[...]" in text and text.endswith("2 + 2?<|im_end|>\n<|im_start|>assistant\n<reasoning>")
    short, cut = encode_chat(tok, "Hi.", None, 48)
    assert not cut and tok.decode(short).endswith("Hi.<|im_end|>\n<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="leaves no room for the user text"):
        encode_chat(tok, user, "You are terse. " * 20, 48)
    be = hf.HFBackend(str(model_dir), dtype="float32", batch_size=2, max_prompt_tokens=48)
    out = be.generate([be_api.Request(user)], be_api.SamplingParams(max_new_tokens=4))
    assert be.truncated == 1 and out[0][0].n_tokens <= 4


def test_prefill_and_stop_strings(backend):
    """The model continues the prefill; a stop string ends a row early and is cut from the text."""
    req = be_api.Request("List three fruits, one per line.", prefill="1.")
    free = backend.generate([req], be_api.SamplingParams(max_new_tokens=24))[0][0]
    stopped = backend.generate([req], be_api.SamplingParams(max_new_tokens=24, stop=("\n",)))[0][0]
    assert "\n" in free.text.strip(), free.text  # the unconstrained continuation has several lines
    assert stopped.finished and "\n" not in stopped.text and stopped.n_tokens < free.n_tokens
    assert free.text.startswith(stopped.text)
    assert stopped.hit_stop is True and free.hit_stop is False  # ended on the stop string, not EOS/length
    with pytest.raises(ValueError, match="stop must be"):
        be_api.SamplingParams(stop="\n")


def test_merge_system():
    from srg.models import merge_system

    assert merge_system("Guidelines.", "Cipher.") == "Guidelines.\n\nCipher."
    assert merge_system(None, "Cipher.") == "Cipher." and merge_system("G.", None) == "G."
    assert merge_system("G.", "G.") == "G." and merge_system(None, "") is None


def _job(tmp_path, model_dir, n=2):
    prompts = tmp_path / "p.jsonl"
    write_jsonl(
        prompts,
        [
            {"id": f"p{i}", "prompt": f"Count to {i}.", "source": "t", "category": "", "split": "eval", "meta": {}}
            for i in range(5)
        ],
    )
    return g.GenerationJob(
        prompts=str(prompts),
        out=str(tmp_path / "out.jsonl"),
        model_path=str(model_dir),
        model_name="base",
        evalset="t",
        mode="sample",
        shard_size=2,
        sampling=be_api.SamplingParams(n=n, greedy=False, max_new_tokens=4),
        backend_options={"dtype": "float32", "batch_size": 4},
    )


def test_sharded_run_resumes_without_redoing_shards(tmp_path, model_dir, backend):
    job = _job(tmp_path, model_dir)
    shards = g.shard_dir(job)
    # Simulate a killed run: shard 0 finished, with a recognisable marker, shards 1-2 missing.
    shards.mkdir(parents=True)
    done = [
        {
            "prompt_id": "p0",
            "sample": j,
            "response": "MARKER",
            "n_tokens": 1,
            "finished": True,
            "model": "base",
            "evalset": "t",
            "mode": "sample",
        }
        for j in range(2)
    ] + [
        {
            "prompt_id": "p1",
            "sample": j,
            "response": "MARKER",
            "n_tokens": 1,
            "finished": True,
            "model": "base",
            "evalset": "t",
            "mode": "sample",
        }
        for j in range(2)
    ]
    write_jsonl(shards / "00000.jsonl", done)
    stats = g.run_generation(job, backend=backend, log=lambda *_: None)
    rows = read_jsonl(job.out)
    assert stats["resumed_shards"] == 1 and stats["rows"] == 10
    assert [r["response"] for r in rows[:4]] == ["MARKER"] * 4  # finished shard kept, not regenerated
    assert [(r["prompt_id"], r["sample"]) for r in rows] == [(f"p{i}", j) for i in range(5) for j in range(2)]
    # the shards stay: a rerun (Snakemake deletes the output first) merges them without generating
    Path(job.out).unlink()

    class NoBackend:
        def generate(self, *a, **k):
            raise AssertionError("a rerun with every shard present must not generate")

    again = g.run_generation(job, backend=NoBackend(), log=lambda *_: None)
    assert again["resumed_shards"] == 3 and read_jsonl(job.out) == rows


def test_shard_key_changes_with_sampling(tmp_path, model_dir):
    a = _job(tmp_path, model_dir, n=2)
    b = _job(tmp_path, model_dir, n=3)
    assert g.shard_dir(a) != g.shard_dir(b)


def test_length_buckets_bound_padding():
    lengths = [100, 90, 80, 50, 45, 10, 9]
    assert hf.length_buckets(lengths, 32, 0.0) == [[0, 1, 2, 3, 4, 5, 6]]
    assert hf.length_buckets(lengths, 3, 0.0) == [[0, 1, 2], [3, 4, 5], [6]]
    b = hf.length_buckets(lengths, 32, 0.6)
    assert b == [[0, 1, 2], [3, 4], [5, 6]]
    for batch in b:  # every row is at least 60% real tokens
        assert min(lengths[i] for i in batch) >= 0.6 * lengths[batch[0]]


def test_pick_tokens_filters():
    import torch

    logits = torch.tensor([[0.0, 1.0, 5.0, 4.9]])
    assert hf.pick_tokens(logits, be_api.SamplingParams()).item() == 2
    torch.manual_seed(0)
    top1 = {hf.pick_tokens(logits, be_api.SamplingParams(n=2, greedy=False, top_k=1)).item() for _ in range(20)}
    assert top1 == {2}
    # top_p 0.5: only the most likely token is in the nucleus (p(2) > 0.5 here)
    nucleus = {hf.pick_tokens(logits, be_api.SamplingParams(n=2, greedy=False, top_p=0.5)).item() for _ in range(50)}
    assert nucleus == {2}
    wide = {hf.pick_tokens(logits, be_api.SamplingParams(n=2, greedy=False, top_p=0.99)).item() for _ in range(200)}
    assert {2, 3} <= wide and 0 not in wide


@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.95])
def test_topk_prefiltered_nucleus_equals_the_full_sort(top_p):
    """Kept set and probabilities of the top-k-prefiltered nucleus equal the full-vocabulary sort,
    peaked rows (nucleus inside the prefilter) and flat ones (wider: the full-sort fallback) alike."""
    import torch

    g = torch.Generator().manual_seed(0)
    sharp = torch.randn(6, 49152, generator=g) * 8.0  # nucleus of a few to tens of tokens
    flat = torch.randn(2, 49152, generator=g) * 0.1  # nucleus of tens of thousands of tokens
    scores = torch.cat([sharp, flat])
    ref = hf._full_sort_nucleus(scores, top_p)
    got = hf.nucleus_probs(scores, top_p)
    assert torch.equal(got > 0, ref > 0)
    assert torch.allclose(got, ref, atol=1e-6)
    _, _, covered = hf._topk_nucleus(scores, top_p, hf.NUCLEUS_PREFILTER)
    assert covered[:6].all() and not covered[-2:].any()  # the flat rows took the fallback
    torch.manual_seed(1)
    picks = hf.pick_tokens(scores[:6], be_api.SamplingParams(n=2, greedy=False, top_p=top_p, temperature=1.0))
    assert all(ref[i, t] > 0 for i, t in enumerate(picks.tolist()))


def test_finished_rows_report_eos(backend):
    out = backend.generate([be_api.Request("Say only: yes")], be_api.SamplingParams(max_new_tokens=64))[0][0]
    assert out.finished == (out.n_tokens < 64)


def test_cli_several_sets_load_the_model_once(save_tiny_llama, tmp_path, monkeypatch):
    """One generate job, several prompt sets: each output equals its own one-set run, the model
    loads once, a set whose shards exist loads nothing, and unpaired arguments are refused."""
    import json

    from srg import cli, models

    path = str(save_tiny_llama(tmp_path / "tiny"))
    sets = {}
    for name, n in (("a", 2), ("b", 3)):
        sets[name] = tmp_path / f"{name}.jsonl"
        rows = [{"id": f"{name}{i}", "prompt": f"Say {name} {i}.", "meta": {}} for i in range(n)]
        write_jsonl(sets[name], rows)
    params = json.dumps(
        {
            "backend": "hf",
            "shard_size": 2,
            "sampling": {"n": 2, "greedy": False, "max_new_tokens": 4, "seed": 1},
            "backend_options": {"dtype": "float32", "batch_size": 4},
        }
    )
    common = ["--model", "m", "--model-path", path, "--mode", "sample", "--params", params]
    cli.main(["generate", "--prompts", str(sets["b"]), "--out", str(tmp_path / "b1.jsonl"), "--evalset", "b", *common])
    loads = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    outs = [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    argv = ["generate", "--prompts", str(sets["a"]), str(sets["b"]), "--out", *outs, "--evalset", "a", "b", *common]
    cli.main(argv)
    assert len(loads) == 1
    assert [r["prompt_id"] for r in read_jsonl(outs[0])] == ["a0", "a0", "a1", "a1"]
    assert read_jsonl(outs[1]) == [{**r, "evalset": "b"} for r in read_jsonl(tmp_path / "b1.jsonl")]
    with pytest.raises(SystemExit, match="must pair up"):
        cli.main(["generate", "--prompts", str(sets["a"]), str(sets["b"]), "--out", outs[0], "--evalset", "a", *common])
    with pytest.raises(ValueError, match="share model path"):
        g.run_generations(
            [
                g.GenerationJob(str(sets["a"]), outs[0], path, "m", "a", "greedy", be_api.SamplingParams()),
                g.GenerationJob(str(sets["b"]), outs[1], path + "x", "m", "b", "greedy", be_api.SamplingParams()),
            ]
        )


def test_generate_branches_equals_generate_on_the_joint_prefill(backend):
    """One prefill per request, reused for every branch: greedy output equals generate() on
    prefill + branch; a branch that does not tokenize apart from the prefill ("Int" + "ent:")
    takes the plain path, so the result is exact either way; sampling is seeded."""
    reqs = [be_api.Request("How do I bake bread?", None, "<r>\n"), be_api.Request("Hi", "Be terse.", "<r>\n")]
    branches = ["Intent:", "Self-check:"]
    p = be_api.SamplingParams(n=1, greedy=True, max_new_tokens=8, stop=("\n",))
    got = backend.generate_branches(reqs, branches, p)
    for i, r in enumerate(reqs):
        for b, branch in enumerate(branches):
            want = backend.generate([be_api.Request(r.user, r.system, r.prefill + branch)], p)[0]
            assert [c.text for c in got[i][b]] == [c.text for c in want]
    split = [be_api.Request(r.user, r.system, r.prefill + "Int") for r in reqs]
    merged = backend.generate_branches(split, ["ent:"], p)
    plain = backend.generate([be_api.Request(r.user, r.system, r.prefill + "ent:") for r in split], p)
    assert [m[0][0].text for m in merged] == [x[0].text for x in plain]
    s = be_api.SamplingParams(n=3, greedy=False, temperature=0.7, max_new_tokens=6, seed=2)
    a, b = backend.generate_branches(reqs, branches, s), backend.generate_branches(reqs, branches, s)
    assert [[[c.text for c in x] for x in r] for r in a] == [[[c.text for c in x] for x in r] for r in b]
    assert all(len(x) == 3 for r in a for x in r)


def test_generate_branches_draws_further_samples_from_the_same_state(backend):
    """``more`` asks for further samples of a (request, branch): they come from the same
    prefilled state (top_k=1: the same text as the first, which equals generate on the joint
    prefill), a request's rounds for a branch end before its next branch, and they are real,
    seeded samples; a branch that takes the plain path gets them too."""
    reqs = [be_api.Request("How do I bake bread?", None, "<r>\n"), be_api.Request("Hi", "Be terse.", "<r>\n")]
    branches = ["Intent:", "Self-check:"]
    calls = []

    def more(i, b, comps):
        calls.append((i, b, len(comps)))
        return 2 if i == 0 and len(comps) == 1 else 0

    p = be_api.SamplingParams(n=1, greedy=False, top_k=1, max_new_tokens=8, stop=("\n",))
    got = backend.generate_branches(reqs, branches, p, more=more)
    assert [[len(x) for x in r] for r in got] == [[3, 3], [1, 1]]
    g = be_api.SamplingParams(n=1, greedy=True, max_new_tokens=8, stop=("\n",))
    for i, r in enumerate(reqs):
        for b, branch in enumerate(branches):
            want = backend.generate([be_api.Request(r.user, r.system, r.prefill + branch)], g)[0][0].text
            assert [c.text for c in got[i][b]] == [want] * len(got[i][b])
    assert [c for c in calls if c[0] == 0] == [(0, 0, 1), (0, 0, 3), (0, 1, 1), (0, 1, 3)]
    s = be_api.SamplingParams(n=1, greedy=False, temperature=1.0, max_new_tokens=8, seed=4)
    a = backend.generate_branches(reqs, branches, s, more=lambda i, b, c: 3 if len(c) == 1 else 0)
    b2 = backend.generate_branches(reqs, branches, s, more=lambda i, b, c: 3 if len(c) == 1 else 0)
    assert [[[c.text for c in x] for x in r] for r in a] == [[[c.text for c in x] for x in r] for r in b2]
    assert len({c.text for c in a[0][0]}) > 1
    split = [be_api.Request(r.user, r.system, r.prefill + "Int") for r in reqs]
    plain_path = backend.generate_branches(split, ["ent:"], p, more=lambda i, b, c: 1 if len(c) < 2 else 0)
    assert [len(x[0]) for x in plain_path] == [2, 2]


class ScriptedBackend:
    """Replays one scripted completion per call and records the requests and params it got."""

    def __init__(self, script):
        self.script, self.calls = script, []

    def generate(self, requests, params, progress=None):
        self.calls.append((list(requests), params))
        return [[self.script(r, params, j) for j in range(params.n)] for r in requests]


def test_budgeted_decoding_closes_for_the_model_and_keeps_one_answer_budget():
    """Reasoning is prefilled with the opening tag and stopped at the closing tag within the
    reasoning budget; a block the model did not close (budget or EOS) is closed for it; every
    answer gets the same answer budget after the closed block."""
    budget = g.ReasoningBudget("<r>", "</r>", reasoning_tokens=10, answer_tokens=3)

    def script(req, params, j):
        if params.stop:  # the reasoning call
            kind = req.user
            if kind == "closes":
                return be_api.Completion(f"why {j}", 4, True, True)
            if kind == "eos":
                return be_api.Completion("gave up", 2, True, False)
            return be_api.Completion("loop loop", 10, False, False)
        return be_api.Completion(f"answer ({req.prefill.count('loop')})", 3, True, None)

    fake = ScriptedBackend(script)
    reqs = [be_api.Request("closes"), be_api.Request("budget", system="S"), be_api.Request("eos")]
    out = g.generate_budgeted(fake, reqs, be_api.SamplingParams(n=2, greedy=False, max_new_tokens=99), budget)
    (think_reqs, think), (answer_reqs, answer) = fake.calls
    assert [r.prefill for r in think_reqs] == ["<r>\n"] * 3
    assert think.stop == ("</r>",) and think.max_new_tokens == 10 and think.n == 2
    assert answer.stop == () and answer.max_new_tokens == 3 and answer.n == 1 and len(answer_reqs) == 6
    assert answer_reqs[2].system == "S" and answer_reqs[2].prefill == "<r>\nloop loop\n</r>\n"
    assert [[c.closed_by for c in o] for o in out] == [["model"] * 2, ["budget"] * 2, ["eos"] * 2]
    assert out[0][1].text == "<r>\nwhy 1\n</r>\nanswer (0)"
    assert out[1][0].text == "<r>\nloop loop\n</r>\nanswer (2)"
    assert (out[1][0].n_tokens, out[1][0].reasoning_tokens, out[1][0].answer_tokens) == (13, 10, 3)
    from srg.reasoning import ReasoningFormat, final_answer

    fmt = ReasoningFormat("<r>", "</r>")
    assert [final_answer(o[0].text, fmt) for o in out] == ["answer (0)", "answer (2)", "answer (0)"]
    with pytest.raises(ValueError, match="reasoning budget"):
        g.ReasoningBudget(reasoning_tokens=0)


def test_budgeted_decoding_with_the_hf_backend(tmp_path, model_dir, backend):
    """Real decoding: every output has both tags and an answer within the budgets, the rows say
    who closed the block, and the budget enters the shard key."""
    job = _job(tmp_path, model_dir, n=1)
    job.sampling = be_api.SamplingParams(n=1, greedy=True, max_new_tokens=12)
    job.budget = g.ReasoningBudget(reasoning_tokens=6, answer_tokens=4)
    free = g.shard_key(_job(tmp_path, model_dir, n=1))
    assert g.shard_key(job) != free
    stats = g.run_generation(job, backend=backend, log=lambda *_: None)
    rows = read_jsonl(job.out)
    assert stats["rows"] == 5
    for r in rows:
        assert r["response"].startswith("<reasoning>\n") and "\n</reasoning>\n" in r["response"]
        assert r["reasoning_closed"] in g.CLOSED_BY
        assert r["reasoning_tokens"] <= 6 and r["answer_tokens"] <= 4
        assert r["n_tokens"] == r["reasoning_tokens"] + r["answer_tokens"]
    # the base model never writes the closing tag within 6 tokens: the budget closes every block
    assert {r["reasoning_closed"] for r in rows} <= {"budget", "eos"}


def test_closure_report_counts_who_closed_and_sizes_from_model_closed_blocks(tmp_path):
    from srg.cli import main
    from srg.reasoning import closure_report

    rows = [
        {"model": "srg", "evalset": "dev_harmful", "response": "<reasoning>\na\n</reasoning>\nNo.", "n_tokens": 12}
        | {"reasoning_closed": by, "reasoning_tokens": t, "answer_tokens": 2}
        for by, t in [("model", 10), ("model", 30), ("budget", 168), ("eos", 5)]
    ]
    rep = closure_report(rows)
    assert rep["n"] == 4 and rep["closed_by"] == {"model": 0.5, "budget": 0.25, "eos": 0.25}
    assert rep["closed_by_model"] == 0.5 and rep["reasoning_tokens_closed"]["max"] == 30  # budget-closed left out
    assert rep["reasoning_tokens_closed"]["p50"] == 20.0 and rep["answer_tokens_p50"] == 2.0
    free = [{"response": "<reasoning>\na\n</reasoning>\nNo."}, {"response": "<reasoning>\nloop loop"}]
    assert closure_report(free)["closed_by"] == {"model": 0.5, "budget": 0.0, "eos": 0.0, "none": 0.5}
    with pytest.raises(ValueError, match="no rows"):
        closure_report([])
    write_jsonl(tmp_path / "g.jsonl", rows)
    fmt = '{"open_tag": "<reasoning>", "close_tag": "</reasoning>"}'
    main(["closure", "--out", str(tmp_path / "c.json"), "--format", fmt, str(tmp_path / "g.jsonl")])
    import json

    assert json.loads((tmp_path / "c.json").read_text())["srg"]["dev_harmful"]["closed_by_model"] == 0.5


def test_budget_sweep_reads_the_closure_curve_off_one_greedy_run():
    from srg.budget_sweep import choose_budget, closure_curve

    curve = closure_curve([10, 150, 170, 200, None], [128, 168, 192, 256])
    assert curve == {128: 0.2, 168: 0.4, 192: 0.6, 256: 0.8}
    with pytest.raises(ValueError, match="no outputs"):
        closure_curve([], [128])
    reaches = {"srg": {"dev_harmful": {128: 0.5, 192: 0.96, 256: 1.0}, "dev_benign": {128: 0.9, 192: 0.95, 256: 1.0}}}
    assert choose_budget(reaches, 0.95) == (192, True)
    # never 0.95: the smallest budget within the plateau of every curve's value at the cap
    loops = {"a": {"s": {128: 0.5, 192: 0.79, 256: 0.80}}, "b": {"s": {128: 0.7, 192: 0.70, 256: 0.90}}}
    assert choose_budget(loops, 0.95) == (256, False)
    assert choose_budget({"a": {"s": {128: 0.5, 192: 0.79, 256: 0.80}}}, 0.95) == (192, False)


def test_budget_sweep_runs_on_a_real_model(tmp_path, model_dir):
    """The sweep's greedy run on a real model: one closure length (or None) per prompt, each
    within the cap; the curve is monotone in the budget."""
    from srg.budget_sweep import closed_lengths, closure_curve

    sets = {"dev_harmful": [{"prompt": "Say hi."}, {"prompt": "Name a colour."}]}
    lengths = closed_lengths(str(model_dir), sets, 6, dtype="float32", batch_size=2)
    assert len(lengths["dev_harmful"]) == 2 and all(t is None or 0 < t <= 6 for t in lengths["dev_harmful"])
    curve = closure_curve(lengths["dev_harmful"], [2, 4, 6])
    assert list(curve.values()) == sorted(curve.values())


VARIED = [
    be_api.Request("Hi."),
    be_api.Request("Name three primary colours, then explain why they are called primary in one sentence."),
    be_api.Request("What is 2 + 2?", system="You are terse."),
    be_api.Request("Write a haiku about autumn leaves falling on a quiet pond at dusk."),
    be_api.Request("List two fruits."),
    be_api.Request("Explain briefly: why is the sky blue?"),
]


def test_continuous_batching_equals_one_batch(model_dir, backend, monkeypatch):
    """Rows that leave are replaced by newly prefilled prompts (a batch of 2 rows takes several
    prefills); greedy outputs equal those of one batch holding every prompt, stop strings too."""
    small = hf.HFBackend(
        str(model_dir), dtype="float32", batch_size=2, model=backend.model, tokenizer=backend.tokenizer
    )
    prefills = []
    real = hf.HFBackend._prefill
    monkeypatch.setattr(
        hf.HFBackend, "_prefill", lambda self, ids, *a: prefills.append(len(ids)) or real(self, ids, *a)
    )
    for p in (be_api.SamplingParams(max_new_tokens=16), be_api.SamplingParams(max_new_tokens=16, stop=(".",))):
        prefills.clear()
        many = small.generate(VARIED, p)
        assert len(prefills) >= 3 and max(prefills) <= 2  # refilled as rows left
        one = backend.generate(VARIED, p)
        assert [[(c.text, c.n_tokens, c.finished, c.hit_stop) for c in x] for x in many] == [
            [(c.text, c.n_tokens, c.finished, c.hit_stop) for c in x] for x in one
        ]


def test_row_prefill_equals_one_padded_forward(model_dir, backend):
    """On CPU each prompt is prefilled on its own (no padding, the causal kernel) and the rows are
    stacked right-aligned: the same last logits, cache and greedy outputs as one left-padded
    forward (fp32), for greedy and for n samples of one prefill."""
    import torch

    padded = hf.HFBackend(
        str(model_dir),
        dtype="float32",
        batch_size=8,
        model=backend.model,
        tokenizer=backend.tokenizer,
        row_prefill=False,
    )
    assert backend.row_prefill and not padded.row_prefill  # CPU: rows by default
    rows = [hf._Row(i, 0, ids) for i, ids in enumerate(backend._encode(VARIED))]
    a, b = backend._prefill(rows), padded._prefill_padded(rows)
    assert torch.equal(a.mask, b.mask)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-4, atol=1e-4)
    m = a.mask.bool()
    for la, lb in zip(a.cache.layers, b.cache.layers):
        torch.testing.assert_close(la.keys.transpose(1, 2)[m], lb.keys.transpose(1, 2)[m], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(la.values.transpose(1, 2)[m], lb.values.transpose(1, 2)[m], rtol=1e-4, atol=1e-4)
    for p in (
        be_api.SamplingParams(max_new_tokens=12),
        be_api.SamplingParams(n=3, greedy=False, top_k=1, max_new_tokens=12),
    ):
        assert [[c.text for c in x] for x in backend.generate(VARIED, p)] == [
            [c.text for c in x] for x in padded.generate(VARIED, p)
        ]


@pytest.mark.parametrize("refeed", [0, 4, 99])
def test_budgeted_one_pass_equals_two_calls(backend, monkeypatch, refeed):
    """The hf backend's one-pass budgeted decoding (reasoning and answer in one decode loop, the
    answer prompt fed in place, or prefilled again where it parts from the row's tokens more
    than ``REFEED`` tokens back) gives the two-call protocol's outputs, whoever closed the block:
    the model (here at its first comma), EOS or the budget."""
    monkeypatch.setattr(hf, "REFEED", refeed)
    budget = g.ReasoningBudget("Answer:", ",", reasoning_tokens=16, answer_tokens=6)
    p = be_api.SamplingParams(max_new_tokens=99)
    one = g.generate_budgeted(backend, VARIED, p, budget)
    two = g.generate_budgeted_two_calls(backend, VARIED, p, budget)
    assert [[vars(c) for c in x] for x in one] == [[vars(c) for c in x] for x in two]
    assert {c.closed_by for x in one for c in x} == set(g.CLOSED_BY)
    s = be_api.SamplingParams(n=3, greedy=False, temperature=0.7, max_new_tokens=99, seed=1)
    a, b = g.generate_budgeted(backend, VARIED[:3], s, budget), g.generate_budgeted(backend, VARIED[:3], s, budget)
    assert [[vars(c) for c in x] for x in a] == [[vars(c) for c in x] for x in b]  # seeded
    for x in a:
        assert len(x) == 3
        for c in x:
            assert c.text.startswith("Answer:\n") and c.n_tokens == c.reasoning_tokens + c.answer_tokens
            assert c.reasoning_tokens <= 16 and c.answer_tokens <= 6


def test_greedy_shards_of_several_sets_share_backend_calls(tmp_path, model_dir):
    """Greedy shards of several jobs with one decoding setting go to the backend together, up to
    shard_size prompts a call, and each lands in its own job's shard and output; sampled shards
    are one call each (seed = job seed + shard index)."""

    def script(req, params, j):
        return be_api.Completion(f"{req.user}/{j}", 1, True, None)

    def jobs(mode, sampling):
        out = []
        for name, n_prompts in (("a", 3), ("b", 2), ("c", 4)):
            prompts = tmp_path / f"{name}.jsonl"
            write_jsonl(prompts, [{"id": f"{name}{i}", "prompt": f"{name}{i}"} for i in range(n_prompts)])
            out.append(
                g.GenerationJob(
                    str(prompts),
                    str(tmp_path / f"{name}.{mode}.jsonl"),
                    str(model_dir),
                    "m",
                    name,
                    mode,
                    sampling,
                    shard_size=5,
                )
            )
        return out

    fake = ScriptedBackend(script)
    greedy = jobs("greedy", be_api.SamplingParams(max_new_tokens=4))
    g.run_generations(greedy, log=lambda *_: None, backend=fake)
    assert [[r.user for r in reqs] for reqs, _ in fake.calls] == [
        ["a0", "a1", "a2", "b0", "b1"],
        ["c0", "c1", "c2", "c3"],
    ]
    for job in greedy:
        assert [r["response"] for r in read_jsonl(job.out)] == [r["prompt"] + "/0" for r in read_jsonl(job.prompts)]
    fake.calls.clear()
    sampled = jobs("sample", be_api.SamplingParams(n=2, greedy=False, max_new_tokens=4, seed=7))
    g.run_generations(sampled, log=lambda *_: None, backend=fake)
    assert [(len(reqs), p.seed) for reqs, p in fake.calls] == [(3, 7), (2, 7), (4, 7)]
    assert [r["response"] for r in read_jsonl(sampled[1].out)] == ["b0/0", "b0/1", "b1/0", "b1/1"]
