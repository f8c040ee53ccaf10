"""benchmarks/generation.py on a tiny shape: the JSON has every key and its ratios follow from its rates."""

import importlib.util
import json

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_generation", REPO / "benchmarks" / "generation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_writes_consistent_json(bench, resources, model_dir, tmp_path):
    out = tmp_path / "generation.json"
    res = bench.main(
        [
            "--out",
            str(out),
            "--prompts",
            "4",
            "--max-new-tokens",
            "6",
            "--batch-size",
            "4",
            "--naive-prompts",
            "1",
            "--sample-n",
            "2",
            "--threads",
            "1",
            "--resources",
            str(resources),
            "--model",
            str(model_dir),
        ]
    )
    assert json.loads(out.read_text()) == res
    for key in (
        "tokens_per_s",
        "naive_tokens_per_s",
        "forward_ceiling_tokens_per_s",
        "forward_ceiling_with_prefill_tokens_per_s",
        "sample_tokens_per_s",
        "speedup_vs_naive",
        "fraction_of_forward_ceiling",
        "fraction_of_decode_only_ceiling",
        "where_time_goes",
        "phases",
    ):
        assert res[key] is not None, key
    assert res["generated_tokens"] <= 4 * 6
    assert res["forward_ceiling"]["tokens"] == 4 * 6  # one batch of 4 rows x 6 steps, no EOS
    assert res["speedup_vs_naive"] == pytest.approx(res["tokens_per_s"] / res["naive_tokens_per_s"], rel=0.02)
    # the ceiling with prefill is slower than the decode-only one, so its fraction is the larger
    assert res["forward_ceiling_with_prefill_tokens_per_s"] < res["forward_ceiling_tokens_per_s"]
    assert res["fraction_of_forward_ceiling"] == pytest.approx(
        res["tokens_per_s"] / res["forward_ceiling_with_prefill_tokens_per_s"], rel=0.02
    )
    assert res["fraction_of_forward_ceiling"] > res["fraction_of_decode_only_ceiling"]
    assert set(res["phases"]) == {
        "hf_greedy",
        "naive",
        "forward_ceiling",
        "sample_shared_prefill",
        "sample_no_shared_prefill",
    }
