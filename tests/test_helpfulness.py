"""Judge-free helpfulness proxy: reference-answer log-likelihood, with reasoning prefixes."""

import math

from srg.helpfulness import answer_prefixes, reference_loglik
from srg.reasoning import ReasoningFormat

RECORDS = [
    {"id": "q1", "prompt": "What is 2 + 2?", "meta": {"reference": "2 + 2 = 4."}},
    {"id": "q2", "prompt": "Name a colour.", "meta": {}},  # no reference: skipped
    {"id": "q3", "prompt": "Capital of France?", "meta": {"reference": "Paris."}},
]


def test_prefixes_plain_and_reasoning():
    assert answer_prefixes(RECORDS, None, None) == {"q1": "", "q2": "", "q3": ""}
    fmt = ReasoningFormat()
    gens = [
        {"prompt_id": "q1", "sample": 0, "response": "<reasoning>add them</reasoning>4"},
        {"prompt_id": "q3", "sample": 0, "response": "<reasoning>cut off"},
    ]
    p = answer_prefixes(RECORDS, gens, fmt)
    assert p["q1"] == "<reasoning>\nadd them\n</reasoning>\n"
    assert p["q3"] == "<reasoning>\n\n</reasoning>\n"  # unclosed output: an empty reasoning block
    assert p["q2"] == "<reasoning>\n\n</reasoning>\n"  # no generation at all


def test_reference_loglik_scores_references_only(model_dir):
    rows = reference_loglik(str(model_dir), RECORDS, answer_prefixes(RECORDS, None, None), dtype="float32")
    assert [r["prompt_id"] for r in rows] == ["q1", "q3"]
    for r in rows:
        assert (
            r["n_tokens"] > 0
            and r["mean_logprob"] < 0
            and math.isclose(r["sum_logprob"] / r["n_tokens"], r["mean_logprob"], rel_tol=1e-5)
        )
    # a right answer is more likely than a wrong one under the same model
    wrong = [{"id": "q3", "prompt": "Capital of France?", "meta": {"reference": "Banana."}}]
    bad = reference_loglik(str(model_dir), wrong, {"q3": ""}, dtype="float32")[0]
    assert rows[1]["mean_logprob"] > bad["mean_logprob"]
