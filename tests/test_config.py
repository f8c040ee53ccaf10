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
