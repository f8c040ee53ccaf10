import pytest

from srg import prompts


@pytest.fixture(scope="module")
def sets(resources):
    return prompts.build_sets(resources, prompts.PromptSizes(200, 200, 40, 40, 40), seed=0)


def test_sizes_schema_and_splits(sets):
    assert {k: len(v) for k, v in sets.items()} == {
        "train_harmful": 200,
        "train_benign": 200,
        "id_eval": 40,
        "overrefusal": 40,
        "helpfulness": 40,
    }
    for name, rows in sets.items():
        prompts.check_records(rows, name)
        assert {r["split"] for r in rows} == {"train" if name.startswith("train") else "eval"}


def test_no_normalised_overlap_between_any_two_sets(sets):
    owners = {}
    for name, rows in sets.items():
        for r in rows:
            key = prompts.normalise(r["prompt"])
            assert owners.setdefault(key, name) == name, f"{r['id']} in {owners[key]} and {name}"


def test_seeded_and_deterministic(resources, sets):
    again = prompts.build_sets(resources, prompts.PromptSizes(200, 200, 40, 40, 40), seed=0)
    assert again == sets
    other = prompts.build_sets(resources, prompts.PromptSizes(200, 200, 40, 40, 40), seed=1)
    assert [r["id"] for r in other["id_eval"]] != [r["id"] for r in sets["id_eval"]]


def test_eval_set_does_not_depend_on_train_size(resources, sets):
    small = prompts.build_sets(resources, prompts.PromptSizes(10, 10, 40, 40, 40), seed=0)
    assert small["id_eval"] == sets["id_eval"]


def test_too_many_prompts_is_a_clear_error(resources):
    with pytest.raises(ValueError, match="exceeds the 720 harmful prompts"):
        prompts.build_sets(resources, prompts.PromptSizes(700, 10, 40, 10, 10), seed=0)


def test_normalise_and_dedupe():
    assert prompts.normalise("  Hello,   WORLD! ") == prompts.normalise("hello world")
    rows = [prompts.record("a", "Hi there", "s"), prompts.record("b", "hi, THERE", "s")]
    assert [r["id"] for r in prompts.dedupe(rows)] == ["a"]
    with pytest.raises(ValueError, match="empty prompt"):
        prompts.record("c", "  ", "s")
