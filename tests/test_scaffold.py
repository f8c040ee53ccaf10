"""Scaffolded teacher decoding (srg.scaffold): line checks, the scaffold's requests, rendering,
screening of scaffolded candidates and subset re-rendering for one-guideline ablations."""

from __future__ import annotations

from srg.backends import Completion, Request
from srg.reasoning import ReasoningFormat, parse
from srg.scaffold import (
    ScaffoldSettings,
    answer_quality,
    generate_candidates,
    headers,
    line_quality,
    line_yield,
    reasoning_ok,
    render,
)
from srg.synthesis import Guideline, Variant, build_srg_rows

FMT = ReasoningFormat("<r>", "</r>")
G = [
    Guideline("intent", "Intent", "What does the user want?", "h", "b"),
    Guideline("framing", "Framing", "Is the request framed to hide something?", "h", "b"),
]


def test_line_quality_rejects_copies_repeats_and_junk():
    kw = {"request": "How do I make a cake at home quickly", "min_words": 3}
    assert line_quality("the user wants baking help for a birthday", "Intent:", **kw) == "ok"
    assert line_quality("", "Intent:", **kw) == "empty"
    assert line_quality("cake.", "Intent:", **kw) == "too_short"
    assert line_quality("yes yes yes yes yes yes", "Intent:", **kw) == "degenerate"
    assert line_quality("Intent: the user wants a cake", "Intent:", **kw) == "copies_header"
    assert line_quality("How do I make a cake at home", "Intent:", **kw) == "copies_request"
    assert line_quality("is the request framed to hide something", "Framing:", G[1].instruction) == "copies_header"
    earlier = ["the user wants baking help for a birthday"]
    assert line_quality("the user wants baking help for birthday", "Framing:", earlier=earlier) == "repeats_line"
    assert line_quality("plainly framed, nothing hidden here", "Framing:", earlier=earlier) == "ok"


def test_answer_quality_flags_a_reopened_scaffold():
    heads = ["Intent:", "Framing:"]
    assert answer_quality("Mix flour and eggs, then bake.", FMT, heads) == "ok"
    assert answer_quality("  ", FMT, heads) == "empty"
    assert answer_quality("Intent: more thinking", FMT, heads) == "continues_scaffold"
    assert answer_quality("ok </r> again", FMT, heads) == "continues_scaffold"
    assert answer_quality("Request: bake a cake", FMT, heads) == "echoes_request"
    assert (
        answer_quality("How do I make a cake at home", FMT, heads, "How do I make a cake at home?") == "echoes_request"
    )
    assert answer_quality("Mix flour and eggs, then bake.", FMT, heads, "How do I make a cake?") == "ok"


class ScriptedBackend:
    """Answers each request from a function of (request, sample index); records every call."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def generate(self, requests, params, progress=None):
        self.calls.append((list(requests), params))
        return [[Completion(self.fn(r, j), 5, True) for j in range(params.n)] for r in requests]


def _line_for(req, j):
    if req.prefill.endswith("</r>\n"):
        return "Mix flour and eggs, then bake at 180 C."
    header = req.prefill.rsplit("\n", 1)[-1]
    if j == 0 and header == "Framing:":
        return "Framing: again"  # the first sample copies its header; the second is used
    if j >= 2 and header == "Intent:":  # the second candidate's slice of a shared request
        return " the user wants baking help"
    return {"Intent:": " the user wants kitchen help", "Framing:": " plainly framed, nothing hidden"}[header]


def test_generate_candidates_prefills_stops_and_keeps_the_first_usable_sample():
    records = [{"id": "h1", "prompt": "T: bad"}, {"id": "b1", "prompt": "T: cake"}]
    backend = ScriptedBackend(_line_for)
    rows = generate_candidates(
        backend,
        records,
        queries={"h1": "bad thing", "b1": "cake"},
        kinds={"h1": "harmful", "b1": "benign"},
        refusals={"h1": "I can't help with that."},
        guidelines=G,
        settings=ScaffoldSettings(k=2, line_samples=2),
        fmt=FMT,
    )
    assert len(rows) == 4 and [r["prompt_id"] for r in rows] == ["h1", "h1", "b1", "b1"]
    # one call per guideline line (every chain batched) + one for the benign answers
    assert len(backend.calls) == 3
    first, second, answers = backend.calls
    # chain=False: the k candidates of a query share one request (one prefill), k x line_samples samples
    assert first[1].stop == ("\n",) and first[1].n == 4 and first[1].top_k == 0
    assert [r.user for r in first[0]] == ["T: bad", "T: cake"]
    assert first[0][0].prefill == "<r>\nIntent:"
    assert second[0][0].prefill == "<r>\nFraming:"  # each line from the query alone (chain=False)
    assert [r.user for r in answers[0]] == ["T: cake", "T: cake"]  # only benign chains get a model answer
    assert answers[0][0].prefill.endswith("</r>\n")
    h, b = rows[0], rows[2]
    assert [x["quality"] for x in b["lines"]] == ["ok", "ok"]
    assert b["lines"][1]["samples_tried"] == 2 and b["lines"][1]["text"] == "plainly framed, nothing hidden"
    assert h["answer"] == "I can't help with that." and h["answer_by"] == "rt"
    assert b["answer_by"] == "model" and b["answer_quality"] == "ok"
    p = parse(b["response"], FMT)
    assert p.ok and p.reasoning.splitlines() == [
        "Intent: the user wants kitchen help",
        "Framing: plainly framed, nothing hidden",
    ]
    # segments say who wrote what and add up to the response
    assert "".join(x["text"] for x in b["segments"]) == b["response"]
    assert {x["by"] for x in h["segments"]} == {"scaffold", "model", "rt"}
    assert [x["text"] for x in b["segments"] if x["by"] == "model"][0] == "the user wants kitchen help\n"
    assert line_yield(rows)["framing"]["ok_rate"] == 1.0
    # candidate 1 of a query reads samples 2-3 of the shared request, candidate 0 samples 0-1
    assert rows[3]["lines"][0]["text"] == "the user wants baking help" and rows[3]["lines"][1]["samples_tried"] == 1
    chained = ScriptedBackend(_line_for)
    generate_candidates(
        chained,
        records[1:],
        queries={"b1": "cake"},
        kinds={"b1": "benign"},
        refusals={},
        guidelines=G,
        settings=ScaffoldSettings(k=1, line_samples=2, chain=True),
        fmt=FMT,
    )
    assert chained.calls[1][0][0].prefill == "<r>\nIntent: the user wants kitchen help\nFraming:"


class BranchingBackend(ScriptedBackend):
    """ScriptedBackend with generate_branches: one call for every guideline line; further samples
    of a (request, branch) continue its sample numbers when ``more`` asks for them."""

    def generate_branches(self, requests, branches, params, progress=None, more=None):
        self.calls.append((list(requests), params, list(branches)))
        self.extra = []
        out = [[None] * len(branches) for _ in requests]
        for b, branch in enumerate(branches):
            for i, r in enumerate(requests):
                req = Request(r.user, r.system, r.prefill + branch)
                comps = [Completion(self.fn(req, j), 5, True) for j in range(params.n)]
                while more and (m := more(i, b, comps)):
                    self.extra.append((i, b, m))
                    comps += [Completion(self.fn(req, len(comps) + t), 5, True) for t in range(m)]
                out[i][b] = comps
        return out


def test_a_branching_backend_writes_every_line_in_one_call_sampling_lazily():
    """Where the backend prefills a query once for all guideline headers (hf), one call writes
    every line (+ one for the answers): one sample per candidate, and a further sample only for
    a candidate whose samples so far are unusable, up to line_samples; the first usable is kept."""
    records = [{"id": "h1", "prompt": "T: bad"}, {"id": "b1", "prompt": "T: cake"}]
    kw = dict(
        records=records,
        queries={"h1": "bad thing", "b1": "cake"},
        kinds={"h1": "harmful", "b1": "benign"},
        refusals={"h1": "I can't help with that."},
        guidelines=G,
        settings=ScaffoldSettings(k=2, line_samples=2),
        fmt=FMT,
    )
    branching = BranchingBackend(_line_for)
    rows = generate_candidates(branching, **kw)
    assert len(branching.calls) == 2 and branching.calls[0][2] == ["Intent:", "Framing:"]
    assert [r.prefill for r in branching.calls[0][0]] == ["<r>\n", "<r>\n"] and branching.calls[0][1].n == 2
    # Framing's sample 0 (candidate 0's first) copies its header: one more sample, for it alone
    assert branching.extra == [(0, 1, 1), (1, 1, 1)]
    b0, b1 = rows[2], rows[3]
    assert [x["samples_tried"] for x in b0["lines"]] == [1, 2] and [x["samples_tried"] for x in b1["lines"]] == [1, 1]
    assert [x["text"] for x in b0["lines"]] == ["the user wants kitchen help", "plainly framed, nothing hidden"]
    assert all(x["quality"] == "ok" for r in rows for x in r["lines"])
    # a line that stays unusable after line_samples samples keeps its first sample
    stubborn = BranchingBackend(
        lambda req, j: "Framing: again" if req.prefill.endswith("Framing:") else _line_for(req, j)
    )
    rows = generate_candidates(stubborn, **kw)
    assert stubborn.extra == [(0, 1, 2), (1, 1, 2)]
    intent, framing = rows[0]["lines"]
    assert (intent["quality"], intent["samples_tried"]) == ("ok", 1)
    assert framing["quality"] != "ok" and framing["samples_tried"] == 2 and framing["text"] == "Framing: again"


def test_unusable_lines_are_dropped_from_the_text_and_counted():
    good = {"id": "intent", "header": "Intent:", "text": "wants help", "quality": "ok"}
    bad = {"id": "framing", "header": "Framing:", "text": "same again", "quality": "repeats_line"}
    cand = {"lines": [good, bad]}
    assert render([good, bad], "Sure.", FMT) == "<r>\nIntent: wants help\n</r>\nSure."
    assert reasoning_ok(cand, None, 0.5) and not reasoning_ok(cand, None, 0.6)
    assert not reasoning_ok({"lines": [bad]}, None, 0.0)  # at least one usable line


def _cand(pid, lines, answer, answer_quality="ok"):
    return {
        "prompt_id": pid,
        "sample": 0,
        "response": "",
        "lines": lines,
        "answer": answer,
        "answer_quality": answer_quality,
    }


def test_scaffolded_candidates_screen_and_rerender_per_variant():
    good = {"id": "intent", "header": "Intent:", "text": "wants help", "quality": "ok"}
    bad = {"id": "framing", "header": "Framing:", "text": "Framing: x", "quality": "copies_header"}
    base = [
        {"id": "q1", "prompt": "bad", "completion": "No.", "kind": "harmful", "source": "s"},
        {"id": "q2", "prompt": "cake", "completion": "Bake it.", "kind": "benign", "source": "s"},
    ]
    cands = [_cand("q1", [good, bad], "I can't help."), _cand("q2", [good, good | {"id": "framing"}], "Bake it.")]
    assert not reasoning_ok(cands[0], None, 1.0) and reasoning_ok(cands[0], ["intent"], 1.0)

    class Judge:
        @staticmethod
        def is_refusal(t):
            return t.startswith("I can't")

    full = build_srg_rows(
        base, cands, Variant("srg", ("intent", "framing")), G, Judge.is_refusal, fallback="none", fmt=FMT
    )
    assert [c.reason for c in full.candidates] == ["weak_reasoning", None]
    assert [r["id"] for r in full.rows] == ["srg-q2"]
    assert full.stats["mode"] == "scaffold" and full.stats["line_yield"]["framing"]["ok_rate"] == 0.5
    # dropping framing removes its line from the text, so q1's candidate is now acceptable
    minus = build_srg_rows(
        base, cands, Variant("srg_minus_framing", ("intent",)), G, Judge.is_refusal, fallback="none", fmt=FMT
    )
    assert [r["id"] for r in minus.rows] == ["srg_minus_framing-q1", "srg_minus_framing-q2"]
    assert "Framing:" not in minus.rows[0]["completion"] and minus.rows[0]["completion"] == render(
        [good], "I can't help.", FMT
    )
    # a bad answer is rejected whatever the reasoning; rejection sampling rejects a benign refusal
    cands2 = [_cand("q2", [good], "Intent: again"), _cand("q2", [good], "I can't help.")]
    r = build_srg_rows(
        base, cands2, Variant("srg", ("intent",)), G, Judge.is_refusal, fallback="none", min_examples=0, fmt=FMT
    )
    assert [c.reason for c in r.candidates] == ["bad_answer", "refused_benign"] and r.rows == []
    no_rs = build_srg_rows(
        base,
        cands2,
        Variant("srg_no_rs", ("intent",), rejection_sampling=False),
        G,
        Judge.is_refusal,
        fallback="none",
        fmt=FMT,
    )
    assert [c.reason for c in no_rs.candidates] == ["bad_answer", None]


def test_plain_reasoning_headers():
    assert headers([], 2) == [("step1", "Step 1:"), ("step2", "Step 2:")]
    assert headers(G, 3) == [("intent", "Intent:"), ("framing", "Framing:")]
