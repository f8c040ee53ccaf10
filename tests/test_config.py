import pytest

from srg import config

REPO = config.REPO_ROOT


@pytest.mark.parametrize("name", ["default", "smoke"])
def test_shipped_configs_validate(name):
    cfg = config.load(REPO / "config" / f"{name}.yaml")
    assert cfg["name"] == name
    assert cfg["generation"]["backend"] == "hf"


def test_defaults_are_filled():
    cfg = config.validate({"name": "x"})
    assert cfg["bon"]["n"] == 16 and cfg["paths"]["results"] == "results"


@pytest.mark.parametrize(
    "override, needle",
    [
        ({"bogus": 1}, "unknown config key 'bogus'"),
        ({"generation": {"bogus": 1}}, "unknown config key 'generation.bogus'"),
        (
            {"generation": {"backend": "nope"}},
            "'generation.backend': 'nope' is not allowed; allowed values: ['hf', 'vllm', 'openai']",
        ),
        (
            {"judge": {"name": "nope"}},
            "'judge.name': 'nope' is not allowed; allowed values: ['keyword', 'llamaguard', 'llm']",
        ),
        ({"prompts": {"id_eval": 0}}, "'prompts.id_eval': 0 is less than the minimum of 1"),
        ({"bon": {"n": -3}}, "'bon.n': -3 is less than the minimum of 1"),
        ({"bon": {"n": "many"}}, "'bon.n': 'many' is not of type 'integer'"),
        ({"model": {"base": "not a model"}}, "'model.base': 'not a model' is neither a known model"),
        (
            {"bon": {"evalsets": {"srg_plain": ["id_eval"]}}},
            "'bon.evalsets.srg_plain': 'srg_plain' is not in bon.models",
        ),
        ({"bon": {"evalsets": {"srg": ["id_eval", "rot13"]}}}, "'bon.evalsets.srg': unknown eval sets ['rot13']"),
        ({"bon": {"evalsets": {"srg": []}}}, "'bon.evalsets.srg': [] should be non-empty"),
        ({"seeds": {"extra": [1], "models": ["rt"]}, "rt": {"training": {"seed": 1}}}, "seed 1 is already rt's own"),
        ({"seeds": {"extra": [0]}}, "'seeds.extra.0': 0 is less than the minimum of 1"),
        ({"bon": {"seed_replicas": ["srg"]}, "seeds": {"models": ["rt"]}}, "'bon.seed_replicas': 'srg' needs"),
        ({"bon": {"seed_replicas": ["base"]}}, "'bon.seed_replicas': 'base' needs"),
        (
            {"srg": {"max_new_tokens": 24, "reasoning_tokens": None}},
            "'srg.max_new_tokens' (24) must exceed generation.max_new_tokens (24)",
        ),
        ({"srg": {"reasoning_tokens": 0}}, "'srg.reasoning_tokens': 0 is less than the minimum of 1"),
    ],
)
def test_bad_configs_name_the_key(override, needle):
    with pytest.raises(config.ConfigError) as exc:
        config.load(REPO / "config" / "default.yaml", override)
    assert needle in str(exc.value)


def test_hf_id_and_local_dir_are_accepted(tmp_path):
    assert config.validate({"name": "x", "model": {"base": "meta-llama/Llama-3.1-8B"}})
    assert config.validate({"name": "x", "model": {"base": str(tmp_path)}})


def test_content_hash_is_order_independent():
    assert config.content_hash({"a": 1, "b": 2}) == config.content_hash({"b": 2, "a": 1})
    assert config.content_hash({"a": 1}) != config.content_hash({"a": 2})


def test_seed_replicas_are_named_per_model_and_seed():
    cfg = config.load(REPO / "config" / "default.yaml", {"seeds": {"extra": [1, 2], "models": ["rt", "srg"]}})
    assert config.seed_replicas(cfg) == {
        "rt_seed1": ("rt", 1),
        "rt_seed2": ("rt", 2),
        "srg_seed1": ("srg", 1),
        "srg_seed2": ("srg", 2),
    }
    assert config.seed_replicas(config.load(REPO / "config" / "default.yaml", {"seeds": {"extra": []}})) == {}
