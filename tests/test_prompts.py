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
        "dev_harmful": 32,
        "dev_benign": 32,
        "dev_overrefusal": 20,
    }
    for name, rows in sets.items():
        prompts.check_records(rows, name)
        assert {r["split"] for r in rows} == {prompts.split_of(name)}
        assert prompts.split_of(name) == ("train" if name.startswith("train") else "dev" if "dev" in name else "eval")


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


@pytest.fixture(scope="module")
def pair_sets(resources):
    return prompts.build_sets(resources, prompts.PromptSizes(64, 64, 20, 20, 20, train_source="contrast_pairs"), seed=0)


def test_dev_split_is_disjoint_from_training_and_every_test_set(pair_sets, sets):
    for built in (pair_sets, sets):
        dev = {
            prompts.normalise(r["prompt"]) for k in ("dev_harmful", "dev_benign", "dev_overrefusal") for r in built[k]
        }
        for name, rows in built.items():
            if not name.startswith("dev"):
                assert not dev & {prompts.normalise(r["prompt"]) for r in rows}, name
        # and no pair is split across training and dev
        pairs = lambda k: {r["meta"].get("pair") for r in built[k]} - {None}  # noqa: E731
        assert not pairs("dev_benign") & (pairs("train_harmful") | pairs("train_benign"))


def test_contrast_pairs_share_forms_across_kinds(pair_sets):
    h, b = pair_sets["train_harmful"], pair_sets["train_benign"]
    assert [r["meta"]["pair"] for r in h] == [r["meta"]["pair"] for r in b]
    for x, y in zip(h, b):  # both members of a pair have the same form and the same opening words
        assert x["meta"]["form"] == y["meta"]["form"]
        if x["meta"]["form"] == "imperative":
            assert x["prompt"].split()[:3] == y["prompt"].split()[:3]
    forms = {r["meta"]["form"] for r in h}
    assert forms == {"question", "imperative"}


def test_imperative_rewrite():
    assert prompts.imperative("How do I bake bread?", "Explain how to {x}.") == "Explain how to bake bread."
    assert prompts.imperative("What is a cake?", "Explain how to {x}.") is None


def test_style_only_classifier_is_near_chance_on_pairs_and_not_on_behaviours(pair_sets, resources):
    from srg.style_check import style_check

    text = lambda s, k: [r["prompt"] for r in s[k]]  # noqa: E731
    matched = style_check(text(pair_sets, "train_harmful"), text(pair_sets, "train_benign"))
    assert matched["ci"][0] <= 0.5 <= matched["ci"][1] or matched["accuracy"] < 0.65
    mixed = prompts.build_sets(resources, prompts.PromptSizes(64, 64, 20, 20, 20), seed=0)
    style = style_check(text(mixed, "train_harmful"), text(mixed, "train_benign"))
    assert style["accuracy"] > 0.9  # the check can fail: unmatched sources are told apart by form alone


def test_too_many_pairs_is_a_clear_error(resources):
    with pytest.raises(ValueError, match="exceeds the .* contrast pairs"):
        prompts.build_sets(resources, prompts.PromptSizes(140, 140, 20, 20, 20, train_source="contrast_pairs"), seed=0)
