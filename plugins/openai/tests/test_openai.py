import socket

import pytest

from openr_core import GenerationRequest, SamplingParams
from openr_openai.generator import EndpointError, OpenAIGenerator


def gen(server, **kw):
    return OpenAIGenerator(model="m", base_url=server.url, backoff=0.01, **kw)


def test_completions_with_n_seed_stop_and_logprobs(server):
    g = gen(server)
    params = SamplingParams(n=3, temperature=0.7, max_tokens=2, seed=5, stop=("\n",), logprobs=True)
    results = g.generate([GenerationRequest("a b c", params), GenerationRequest("x", SamplingParams(max_tokens=4))])
    first, second = results
    assert [c.text for c in first.completions] == ["a0 b0", "a1 b1", "a2 b2"]
    assert all(c.n_tokens == 2 and c.token_logprobs == (-0.5, -0.5) and c.matched_stop == "\n" for c in first.completions)
    assert second.completions[0].stop_reason == "length" and second.completions[0].token_logprobs is None
    assert first.n_prompt_tokens == 3
    path, body, auth = next(r for r in server.requests if r[1]["prompt"] == "a b c")  # requests run concurrently
    assert path == "/v1/completions" and body["seed"] == 5 and body["stop"] == ["\n"] and body["n"] == 3
    assert body["model"] == "m" and body["logprobs"] == 1


def test_retries_429_and_5xx_with_backoff(server):
    server.failures = [429, 503, 500]
    g = gen(server)
    result = g.generate([GenerationRequest("a", SamplingParams())])[0]
    assert result.completions[0].text == "a0" and g.retries == 3 and len(server.requests) == 4


def test_gives_up_after_max_retries_with_a_clear_error(server):
    server.failures = [500] * 10
    with pytest.raises(EndpointError, match=r"/v1/completions: HTTP 500"):
        gen(server, max_retries=2).generate([GenerationRequest("a", SamplingParams())])
    assert len(server.requests) == 3


def test_auth_failure_names_the_key_variable(server, monkeypatch):
    server.required_key = "secret"
    monkeypatch.setenv("MY_KEY", "wrong")
    with pytest.raises(EndpointError, match=r"authentication failed \(HTTP 401\); check \$MY_KEY"):
        gen(server, api_key_env="MY_KEY").generate([GenerationRequest("a", SamplingParams())])
    monkeypatch.setenv("MY_KEY", "secret")
    assert gen(server, api_key_env="MY_KEY").generate([GenerationRequest("a", SamplingParams())])[0].completions[0].text == "a0"
    assert server.requests[-1][2] == "Bearer secret"


def test_connection_refused_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    g = OpenAIGenerator(model="m", base_url=f"http://127.0.0.1:{port}/v1", backoff=0.01, max_retries=1)
    with pytest.raises(EndpointError, match=r"cannot connect after 2 attempts"):
        g.generate([GenerationRequest("a", SamplingParams())])


def test_timeout_is_retried_then_reported(server):
    server.delay = 0.5
    g = gen(server, timeout=0.1, max_retries=1)
    with pytest.raises(EndpointError, match="cannot connect after 2 attempts"):
        g.generate([GenerationRequest("a", SamplingParams())])


def test_requests_run_concurrently(server):
    import time

    server.delay = 0.2
    g = gen(server, concurrency=8)
    t0 = time.perf_counter()
    results = g.generate([GenerationRequest(f"p{i}", SamplingParams()) for i in range(8)])
    assert time.perf_counter() - t0 < 1.0  # 8 x 0.2 s one after another would be 1.6 s
    assert [r.completions[0].text for r in results] == [f"p{i}0" for i in range(8)]
