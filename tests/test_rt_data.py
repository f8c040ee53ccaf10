import pytest

from srg import rt_data


def _rec(i, prompt, kind="benign"):
    return {"id": f"{kind}-{i}", "prompt": prompt, "source": "t", "category": "", "split": "train", "meta": {}}


def _gen(pid, text, finished=True):
    return {"prompt_id": pid, "sample": 0, "response": text, "finished": finished}


def is_refusal(text):
    return "can't" in text.lower()


def test_refusal_choice_is_seeded_and_varied():
    picks = [rt_data.pick(rt_data.DEFAULT_REFUSALS, f"h{i}", 0) for i in range(200)]
    assert picks == [rt_data.pick(rt_data.DEFAULT_REFUSALS, f"h{i}", 0) for i in range(200)]
    assert len(set(picks)) == len(rt_data.DEFAULT_REFUSALS)
    assert picks != [rt_data.pick(rt_data.DEFAULT_REFUSALS, f"h{i}", 1) for i in range(200)]


def test_trim_and_degenerate():
    assert rt_data.trim_to_sentence("One. Two three") == "One."
    assert rt_data.trim_to_sentence("no end at all") == ""
    assert rt_data.is_degenerate("I'm ready. " * 10)
    assert not rt_data.is_degenerate("Bread needs flour, water, salt and yeast; knead it and let it rise.")


def test_build_rows_filters_benign_targets_with_reasons():
    harmful = [_rec(0, "harmful placeholder", "harm")]
    benign = [_rec(i, f"question {i}") for i in range(5)]
    gens = [
        _gen("benign-0", "A full and helpful answer about the topic."),
        _gen("benign-1", "A helpful start. And then it was cut", finished=False),
        _gen("benign-2", "ok"),
        _gen("benign-3", "loop loop loop " * 10),
        _gen("benign-4", "Sorry, I can't help with that question."),
    ]
    rows, stats = rt_data.build_rt_rows(harmful, benign, gens, is_refusal=is_refusal, min_benign_chars=10)
    by_id = {r["id"]: r for r in rows}
    assert by_id["rt-h-harm-0"]["completion"] in rt_data.DEFAULT_REFUSALS
    assert by_id["rt-b-benign-1"]["completion"] == "A helpful start."
    assert set(by_id) == {"rt-h-harm-0", "rt-b-benign-0", "rt-b-benign-1"}
    assert stats["benign_dropped"] == {"empty_or_short": 1, "degenerate": 1, "refusal": 1}
    assert stats["benign_trimmed"] == 1 and stats["n_benign_kept"] == 2


def test_all_benign_dropped_is_an_error():
    with pytest.raises(ValueError, match="every benign target was dropped"):
        rt_data.build_rt_rows([], [_rec(0, "q")], [_gen("benign-0", "")], is_refusal=is_refusal)
