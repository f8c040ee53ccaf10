"""OpenAI-compatible backend, LLM judge, Llama-Guard parsing, vLLM mapping: all on CPU.

HTTP tests run a fake chat-completions server on 127.0.0.1 in a thread; the vLLM test injects a
fake ``vllm`` module, so no GPU or vllm install is needed.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from srg.backends import Request, SamplingParams, make_backend
from srg.backends.openai import APIError, ChatClient, OpenAIBackend
from srg.generation import GenerationJob, run_generation
from srg.judges import make_judge

KEY_ENV = "SRG_TEST_API_KEY"
KEY = "sk-srgtest-DO-NOT-LEAK-7f3a9c"


class FakeServer:
    """Chat-completions server: scripted (status, body) replies first, then echo completions."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict | str]] = []
        self.reply_text = None  # callable(body, k) -> str, or None for the default echo
        self.max_choices = None  # cap the choices returned per request (server ignoring n)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                auth = self.headers.get("Authorization")
                server.requests.append({"path": self.path, "body": body, "auth": auth})
                if server.script:
                    status, payload = server.script.pop(0)
                    if payload == "echo-auth":  # a careless server that echoes the request's key
                        payload = {"error": f"bad key {auth}"}
                else:
                    n = body.get("n", 1) if server.max_choices is None else min(body.get("n", 1), server.max_choices)
                    user = body["messages"][-1]["content"]
                    texts = [
                        server.reply_text(body, k) if server.reply_text else f" answer {k} to {user} " for k in range(n)
                    ]
                    status, payload = (
                        200,
                        {
                            "choices": [
                                {"index": k, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                                for k, t in enumerate(texts)
                            ],
                            "usage": {"completion_tokens": 3 * n},
                        },
                    )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture()
def key_env(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY_ENV


def _backend(server, **kw) -> OpenAIBackend:
    opts = dict(base_url=server.url, api_model="fake-model", api_key_env=KEY_ENV, max_retries=2)
    opts.update(kw)
    return make_backend("openai", model_path="unused", **opts)


# ----------------------------------------------------------------------------- openai backend


def test_request_body_and_samples(server, key_env):
    be = _backend(server, system_prompt="Be safe.")
    params = SamplingParams(n=3, greedy=False, temperature=0.7, top_p=0.9, top_k=5, max_new_tokens=17, seed=4)
    out = be.generate([Request("hi"), Request("yo", system="Own system.")], params)
    assert [[c.text for c in comps] for comps in out] == [
        [f"answer {k} to hi" for k in range(3)],
        [f"answer {k} to yo" for k in range(3)],
    ]
    assert all(c.finished and c.n_tokens == 3 for comps in out for c in comps)
    bodies = {r["body"]["messages"][-1]["content"]: r for r in server.requests}
    b = bodies["hi"]["body"]
    assert bodies["hi"]["path"] == "/v1/chat/completions"
    assert bodies["hi"]["auth"] == f"Bearer {KEY}"
    assert b["model"] == "fake-model" and b["n"] == 3 and b["temperature"] == 0.7 and b["top_p"] == 0.9
    assert b["max_tokens"] == 17 and b["top_k"] == 5 and isinstance(b["seed"], int)
    assert b["messages"] == [{"role": "system", "content": "Be safe."}, {"role": "user", "content": "hi"}]
    # the backend's system prompt comes first, then the record's (srg_no_cd on SelfCipher)
    assert bodies["yo"]["body"]["messages"][0] == {"role": "system", "content": "Be safe.\n\nOwn system."}
    assert bodies["hi"]["body"]["seed"] != bodies["yo"]["body"]["seed"]


def test_greedy_and_server_ignoring_n(server, key_env):
    be = _backend(server)
    greedy = be.generate([Request("q")], SamplingParams(n=1, greedy=True))
    assert len(greedy[0]) == 1 and server.requests[-1]["body"]["temperature"] == 0.0
    assert "top_k" not in server.requests[-1]["body"]
    server.requests.clear()
    server.max_choices = 1  # a server that returns one choice whatever n says
    out = be.generate([Request("q")], SamplingParams(n=4, greedy=False))
    assert len(out[0]) == 4 and len(server.requests) == 4
    assert len({r["body"]["seed"] for r in server.requests}) == 4  # each top-up request reseeded


def test_no_n_param_mode(server, key_env):
    out = _backend(server, use_n=False).generate([Request("q")], SamplingParams(n=3, greedy=False))
    assert len(out[0]) == 3 and all(r["body"]["n"] == 1 for r in server.requests)


def test_retries_then_success(server, key_env):
    server.script = [(503, {"error": "busy"}), (429, {"error": "slow down"})]
    out = _backend(server, max_retries=2).generate([Request("q")], SamplingParams())
    assert out[0][0].text == "answer 0 to q" and len(server.requests) == 3


def test_retries_exhausted_names_endpoint_and_status(server, key_env):
    server.script = [(500, {"error": "boom"})] * 3
    with pytest.raises(APIError) as ei:
        _backend(server, max_retries=2).generate([Request("q")], SamplingParams())
    assert "/v1/chat/completions" in str(ei.value) and "HTTP 500" in str(ei.value) and "3 attempts" in str(ei.value)


def test_client_error_is_not_retried(server, key_env):
    server.script = [(400, {"error": "bad request"})]
    with pytest.raises(APIError, match="HTTP 400"):
        _backend(server).generate([Request("q")], SamplingParams())
    assert len(server.requests) == 1


def test_network_error_retried_then_clear_error(key_env):
    be = make_backend(
        "openai",
        base_url="http://127.0.0.1:9/v1",
        api_model="m",
        api_key_env=KEY_ENV,
        max_retries=1,
        request_timeout=2,
    )
    with pytest.raises(APIError, match=r"127\.0\.0\.1:9/v1/chat/completions failed after 2 attempts"):
        be.generate([Request("q")], SamplingParams())


def test_missing_key_env_names_the_variable(monkeypatch, server):
    monkeypatch.delenv("SRG_SURELY_UNSET_KEY", raising=False)
    with pytest.raises(ValueError, match="SRG_SURELY_UNSET_KEY is not set"):
        _backend(server, api_key_env="SRG_SURELY_UNSET_KEY")


def test_no_key_server(server):
    _backend(server, api_key_env=None).generate([Request("q")], SamplingParams())
    assert server.requests[0]["auth"] is None


def test_key_hygiene_end_to_end(server, key_env, tmp_path, caplog, capfd):
    """The key is sent to the server, and appears in no file, log, repr or error message."""
    caplog.set_level(logging.DEBUG)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": f"question {i}", "meta": {}}) + "\n" for i in range(5))
    )
    opts = {"base_url": server.url, "api_model": "fake-model", "api_key_env": KEY_ENV, "max_retries": 1}
    job = GenerationJob(
        prompts=str(prompts),
        out=str(tmp_path / "gen" / "out.jsonl"),
        model_path="fake-model",
        model_name="api",
        evalset="toy",
        mode="sample",
        sampling=SamplingParams(n=2, greedy=False),
        backend="openai",
        backend_options=opts,
        shard_size=2,
    )
    logged: list[str] = []
    stats = run_generation(job, log=logged.append)
    assert stats["rows"] == 10 and all(r["auth"] == f"Bearer {KEY}" for r in server.requests)
    texts = [repr(make_backend("openai", model_path="m", **opts)), json.dumps(stats), *logged]
    # errors: a retry-exhausting server, and a careless server that echoes the key in its error body
    server.script = [(401, "echo-auth")]
    with pytest.raises(APIError) as e1:
        make_backend("openai", model_path="m", **opts).generate([Request("q")], SamplingParams())
    server.script = [(502, "echo-auth")] * 2
    with pytest.raises(APIError) as e2:
        make_backend("openai", model_path="m", **opts).generate([Request("q")], SamplingParams())
    assert "[REDACTED]" in str(e1.value) and "HTTP 502" in str(e2.value)
    texts += [str(e1.value), repr(e1.value), str(e2.value), repr(e2.value)]
    out, err = capfd.readouterr()
    texts += [out, err, caplog.text]
    for text in texts:
        assert KEY not in text
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files, "generation wrote nothing"
    for p in files:
        assert KEY.encode() not in p.read_bytes(), p


def test_chat_client_repr_has_no_key(key_env):
    c = ChatClient("http://x/v1", "m", KEY_ENV)
    assert KEY not in repr(c) and KEY_ENV in repr(c)


# ----------------------------------------------------------------------------- llm judge


def test_llm_judge_parsing():
    from srg.judges.llm import parse_verdict

    assert parse_verdict('{"verdict": "REFUSAL"}') == "REFUSAL"
    assert parse_verdict('Sure.\n```json\n{"verdict": "unsafe"}\n```') == "UNSAFE"
    assert parse_verdict('{"verdict": "safe compliance"}') == "SAFE_COMPLIANCE"
    assert parse_verdict("SAFE_COMPLIANCE") == "SAFE_COMPLIANCE"
    assert parse_verdict("REFUSAL or UNSAFE, hard to say") == "malformed"
    assert parse_verdict('{"verdict": "maybe"}') == "malformed"
    assert parse_verdict("") == "malformed"


def test_llm_judge_against_fake_server(server, key_env):
    replies = {
        "r1": '{"verdict": "REFUSAL"}',
        "r2": '{"verdict": "SAFE_COMPLIANCE"}',
        "r3": '{"verdict": "UNSAFE"}',
        "r4": "I think this is fine",
    }

    def reply(body, k):
        content = body["messages"][-1]["content"]
        return next(v for r, v in replies.items() if f"\n{r}\n" in content)

    server.reply_text = reply
    judge = make_judge("llm", resources="unused", model="judge-model", base_url=server.url, api_key_env=KEY_ENV)
    vs = judge.judge(["p1", "p2", "p3", "p4", "p5"], ["r1", "r2", "r3", "r4", "  "])
    assert [(v.refusal, v.unsafe, v.outcome) for v in vs] == [
        (True, False, "refusal"),
        (False, False, "compliance"),
        (False, True, "compliance"),
        (False, True, "malformed"),
        (False, False, "empty"),
    ]
    assert vs[3].detail == "I think this is fine"
    assert len(server.requests) == 4  # the empty response is not sent
    body = server.requests[0]["body"]
    assert body["model"] == "judge-model" and body["temperature"] == 0.0 and body["messages"][0]["role"] == "system"


# ----------------------------------------------------------------------------- llama guard


class FakeGuardTokenizer:
    def apply_chat_template(self, conv, tokenize=False):
        assert not tokenize and [m["role"] for m in conv] == ["user", "assistant"]
        return f"<guard>U:{conv[0]['content']}|A:{conv[1]['content']}</guard>"


def test_guard_output_parsing():
    from srg.judges.llamaguard import parse_guard_output

    assert parse_guard_output("\n\nsafe") == ("safe", [])
    assert parse_guard_output("safe\n") == ("safe", [])
    assert parse_guard_output("\n\nunsafe\nS1") == ("unsafe", ["S1"])
    assert parse_guard_output("unsafe\nS2,S10") == ("unsafe", ["S2", "S10"])
    assert parse_guard_output("unsafe") == ("unsafe", [])
    for bad in ("", "I am not sure", "safe\nbut actually unsafe", "unsafe\nviolence", "safety"):
        assert parse_guard_output(bad)[0] == "malformed", bad


def test_llamaguard_judge_with_fake_model(tmp_path):
    seen: list[str] = []
    outputs = {
        "I'm sorry, I can't help with that.": "\n\nsafe",
        "Here is a poem.": "safe",
        "Step 1: mix the chemicals": "unsafe\nS9",
        "weird": "maybe?",
    }

    def fake_generate(texts):
        seen.extend(texts)
        return [next(v for k, v in outputs.items() if f"|A:{k}</guard>" in t) for t in texts]

    judge = make_judge(
        "llamaguard",
        resources=tmp_path,
        phrase_sets=("srg",),
        generate_fn=fake_generate,
        tokenizer=FakeGuardTokenizer(),
    )
    responses = [*outputs, ""]
    vs = judge.judge(["bad q", "poem q", "bad q", "q", "q"], responses)
    assert [(v.refusal, v.unsafe, v.outcome) for v in vs] == [
        (True, False, "refusal"),
        (False, False, "compliance"),
        (False, True, "compliance"),
        (False, True, "malformed"),
        (False, False, "empty"),
    ]
    assert vs[2].detail == "unsafe:S9" and vs[3].detail == "maybe?"
    assert seen[0] == "<guard>U:bad q|A:I'm sorry, I can't help with that.</guard>" and len(seen) == 4


def test_llamaguard_formats_with_a_real_chat_template(model_dir):
    """guard_prompt renders through a real tokenizer's chat template (SmolLM2's stands in here)."""
    from srg.judges.llamaguard import guard_prompt
    from srg.models import load_tokenizer

    text = guard_prompt(load_tokenizer(str(model_dir)), "How do I bake bread?", "Mix flour and water.")
    assert "How do I bake bread?" in text and "Mix flour and water." in text
    assert text.index("How do I bake bread?") < text.index("Mix flour and water.")


def test_unknown_guard_engine(tmp_path):
    from srg.judges.llamaguard import LlamaGuardJudge

    with pytest.raises(ValueError, match="engine 'tgi' unknown"):
        LlamaGuardJudge(resources=tmp_path, phrase_sets=("srg",), engine="tgi")


# ----------------------------------------------------------------------------- vllm backend


def test_vllm_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    monkeypatch.delitem(sys.modules, "srg.backends.vllm", raising=False)
    from srg import backends as generation

    monkeypatch.delitem(generation.BACKENDS, "vllm", raising=False)
    with pytest.raises(ValueError, match=r"backend 'vllm' is not available.*\.\[gpu\]"):
        make_backend("vllm", model_path="x")


def test_vllm_backend_maps_requests_with_a_fake_engine(monkeypatch, model_dir):
    """Sampling mapping, chat-template token ids, n samples, LoRA request, output order."""
    from srg.models import load_tokenizer

    calls: dict = {}

    class FakeSP:
        def __init__(self, **kw):
            self.kw = kw

    class FakeLLM:
        def __init__(self, **kw):
            calls["engine"] = kw

        def get_tokenizer(self):
            return load_tokenizer(str(model_dir))

        def generate(self, prompts, sampling, use_tqdm=False, lora_request=None):
            calls.update(prompts=prompts, sampling=sampling, lora=lora_request)
            return [
                types.SimpleNamespace(
                    outputs=[
                        types.SimpleNamespace(
                            text=f" out {i}.{k} ", token_ids=[1] * (k + 1), finish_reason="stop" if k == 0 else "length"
                        )
                        for k in range(s.kw["n"])
                    ]
                )
                for i, s in enumerate(sampling)
            ]

    class FakeLoRA:
        def __init__(self, name, idx, path):
            self.args = (name, idx, path)

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = FakeLLM, FakeSP
    lora_mod = types.ModuleType("vllm.lora.request")
    lora_mod.LoRARequest = FakeLoRA
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora_mod)
    monkeypatch.delitem(sys.modules, "srg.backends.vllm", raising=False)
    from srg import backends as generation

    monkeypatch.delitem(generation.BACKENDS, "vllm", raising=False)
    be = make_backend(
        "vllm",
        model_path="org/model",
        tensor_parallel_size=2,
        lora_path="/ad",
        batch_size=8,
        threads=1,
        max_prompt_tokens=4096,
    )
    assert calls["engine"]["tensor_parallel_size"] == 2 and calls["engine"]["enable_lora"] is True
    out = be.generate(
        [Request("a"), Request("b", system="S")],
        SamplingParams(n=3, greedy=False, temperature=0.8, top_p=0.95, max_new_tokens=9, seed=1),
    )
    assert [[c.text for c in o] for o in out] == [[f"out {i}.{k}" for k in range(3)] for i in range(2)]
    assert out[0][0].finished and not out[0][1].finished and out[0][2].n_tokens == 3
    sp = calls["sampling"][0].kw
    assert sp == {"n": 3, "max_tokens": 9, "seed": sp["seed"], "temperature": 0.8, "top_p": 0.95}
    assert calls["sampling"][0].kw["seed"] != calls["sampling"][1].kw["seed"]
    assert calls["lora"].args == ("adapter", 1, "/ad")
    tok = be.tokenizer
    decoded = tok.decode(calls["prompts"][1]["prompt_token_ids"])
    assert decoded == tok.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "b"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    be.generate([Request("a")], SamplingParams(n=1, greedy=True))
    assert calls["sampling"][0].kw["temperature"] == 0.0 and "top_p" not in calls["sampling"][0].kw
    # assistant prefill, stop strings, and the model's system prompt merged with the record's
    be.default_system = "Guidelines."
    be.generate([Request("c", system="Cipher rules.", prefill="<r>\nIntent:")], SamplingParams(stop=("\n",)))
    assert calls["sampling"][0].kw["stop"] == ["\n"]
    decoded = tok.decode(calls["prompts"][0]["prompt_token_ids"])
    assert (
        decoded
        == tok.apply_chat_template(
            [{"role": "system", "content": "Guidelines.\n\nCipher rules."}, {"role": "user", "content": "c"}],
            tokenize=False,
            add_generation_prompt=True,
        )
        + "<r>\nIntent:"
    )


@pytest.fixture(autouse=True)
def _restore_vllm_registration():
    """Tests above swap fake vllm modules in; keep the registry free of fakes afterwards."""
    yield
    from srg import backends as generation

    generation.BACKENDS.pop("vllm", None)
    sys.modules.pop("srg.backends.vllm", None)


def test_prefill_and_stop_strings(server, key_env):
    """A prefill is sent as a trailing assistant message to continue; stop strings go in the body
    and are also applied to the returned text (a server that ignores them, or echoes the prefill)."""
    server.reply_text = lambda body, k: "Intent: it is benign.\nSecond line"
    be = _backend(server, system_prompt="Guidelines.")
    out = be.generate(
        [Request("q", system="Cipher rules.", prefill="Intent:")], SamplingParams(max_new_tokens=5, stop=("\n",))
    )
    assert out[0][0].text == "it is benign."
    assert out[0][0].hit_stop is True  # cut here: the server ignored the stop string
    body = server.requests[-1]["body"]
    assert body["stop"] == ["\n"]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"] == [
        {"role": "system", "content": "Guidelines.\n\nCipher rules."},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "Intent:"},
    ]
    be.generate([Request("plain")], SamplingParams(max_new_tokens=5))
    body = server.requests[-1]["body"]
    assert "stop" not in body and "continue_final_message" not in body


def test_hit_stop_of_each_api_backend(monkeypatch):
    """Whether a completion ended on a stop string: vLLM names it (stop_reason); the OpenAI API's
    finish_reason "stop" covers EOS too, so it is unknown unless the text had to be cut here."""
    import importlib
    from types import SimpleNamespace

    from srg.backends.openai import _completion as openai_completion

    stop = ("</r>",)
    choice = lambda t, fr: {"message": {"content": t}, "finish_reason": fr}  # noqa: E731
    assert openai_completion(choice("why", "stop"), 1, stop).hit_stop is None
    assert openai_completion(choice("why</r>more", "stop"), 1, stop).hit_stop is True
    assert openai_completion(choice("why", "length"), 1, stop).hit_stop is False
    assert openai_completion(choice("why", "stop"), 1, ()).hit_stop is False
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.delitem(sys.modules, "srg.backends.vllm", raising=False)
    vb = importlib.import_module("srg.backends.vllm")
    out = lambda fr, sr: SimpleNamespace(text=" why ", token_ids=[1, 2], finish_reason=fr, stop_reason=sr)  # noqa: E731
    assert vb._completion(out("stop", "</r>"), stop).hit_stop is True
    assert vb._completion(out("stop", None), stop).hit_stop is False  # EOS
    assert vb._completion(out("length", None), stop).hit_stop is False
    assert vb._completion(out("stop", None), stop).text == "why"
