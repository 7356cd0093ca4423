import socket

import pytest

from openr_core import ConfigError, GenerationRequest, SamplingParams
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
    with pytest.raises(EndpointError, match="no complete answer after 2 attempts: .*timeout"):
        g.generate([GenerationRequest("a", SamplingParams())])


def test_requests_run_concurrently(server):
    # the server holds each request until 8 are in (30 s at most): sent one after another, they
    # would take 30 s each and never be 8 at once
    server.delay, server.gather = 0.2, 8
    results = gen(server, concurrency=8).generate([GenerationRequest(f"p{i}", SamplingParams()) for i in range(8)])
    assert [r.completions[0].text for r in results] == [f"p{i}0" for i in range(8)]
    assert server.most_in_flight == 8  # counted by the server, not timed
    server.most_in_flight, server.gather = 0, 3
    gen(server, concurrency=3).generate([GenerationRequest(f"p{i}", SamplingParams()) for i in range(6)])
    assert server.most_in_flight == 3


# --- a total deadline per attempt; no redirects; bad bodies ---------------------------------------

def _generate_within(g, seconds):
    """generate() in a thread; fails the test (instead of hanging it) if it takes over ``seconds``."""
    import threading
    import time

    outcome = {}

    def call():
        try:
            outcome["result"] = g.generate([GenerationRequest("a", SamplingParams())])
        except Exception as e:  # noqa: BLE001 - handed to the test
            outcome["error"] = e

    t0 = time.monotonic()
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"generate() still running after {seconds} s"
    return outcome, time.monotonic() - t0


HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_server_sending_a_byte_at_a_time_hits_the_total_timeout(server, where):
    """Each byte arrives well within `timeout`, so a per-read timeout never fires; the attempt's
    total deadline does (1 s here), for a drip in the headers as in the body."""
    data = HEADERS + b'{"choices": [' + b" " * 100000 if where == "body" else HEADERS
    server.drip = (0.05, data if where == "body" else data[:5] + b"X" * 100000)
    outcome, elapsed = _generate_within(gen(server, timeout=1.0, max_retries=0), 15)
    assert isinstance(outcome.get("error"), EndpointError), outcome
    assert "no complete answer after 1 attempts" in str(outcome["error"])
    assert 0.9 < elapsed < 5.0


def test_redirects_are_not_followed_and_the_key_stays_home(server, server2, monkeypatch):
    monkeypatch.setenv("MY_KEY", "secret")
    for code in (301, 302, 307, 308):
        server.raw = [f"HTTP/1.1 {code} Found\r\nLocation: {server2.url}/completions\r\n"
                      "Content-Length: 0\r\n\r\n".encode()]
        with pytest.raises(EndpointError, match=f"HTTP {code} redirect to {server2.url}/completions not followed"):
            gen(server, api_key_env="MY_KEY").generate([GenerationRequest("a", SamplingParams())])
    assert server2.requests == []  # nothing, and no key, reached the other origin
    assert all(auth == "Bearer secret" for _, _, auth in server.requests)


def _answer(body: bytes, length: int | None = None) -> bytes:
    length = len(body) if length is None else length
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (length, body)


BAD_BODIES = {
    "garbage": _answer(b"<html>502 bad gateway</html>"),
    "a list": _answer(b'[{"text": "a0"}]'),
    "truncated": _answer(b'{"choices": [{"text": "a', length=500),
    "choices not a list": _answer(b'{"choices": {"text": "a0"}}'),
    "text not a string": _answer(b'{"choices": [{"index": 0, "text": 5}]}'),
    "wrong n": _answer(b'{"choices": []}'),
    "not UTF-8": _answer(b'{"choices": [{"text": "\xff"}]}'),
}


def test_an_endless_answer_is_cut_off_not_held_in_memory(server, monkeypatch):
    from openr_openai import generator

    monkeypatch.setattr(generator, "MAX_ANSWER_BYTES", 100_000)
    server.raw = [_answer(b'{"choices": [' + b" " * 300_000 + b"]}")] * 2
    with pytest.raises(EndpointError, match=r"unusable answer after 2 attempts: the answer is larger than 100000 bytes"):
        gen(server, max_retries=1).generate([GenerationRequest("a", SamplingParams())])


@pytest.mark.parametrize("kind", BAD_BODIES)
def test_bad_bodies_are_retried_then_succeed(server, kind):
    server.raw = [BAD_BODIES[kind]] * 2
    g = gen(server, max_retries=2)
    assert g.generate([GenerationRequest("a", SamplingParams())])[0].completions[0].text == "a0"
    assert g.retries == 2


@pytest.mark.parametrize("kind", BAD_BODIES)
def test_bad_bodies_fail_in_one_line(server, kind):
    server.raw = [BAD_BODIES[kind]] * 2
    with pytest.raises(EndpointError) as info:
        gen(server, max_retries=1).generate([GenerationRequest("a", SamplingParams())])
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{server.url}/completions: ")
    assert "after 2 attempts" in message


def test_error_details_stay_on_one_line_and_bad_settings_are_refused(server):
    server.raw = [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 24\r\n\r\nline one\nline two\r\nthree"]
    with pytest.raises(EndpointError) as info:
        gen(server).generate([GenerationRequest("a", SamplingParams())])
    assert str(info.value) == f"{server.url}/completions: HTTP 400: line one line two three"
    for bad, message in (({"timeout": 0}, "timeout must be > 0 seconds, got 0"), ({"timeout": -1}, "timeout must be > 0"),
                         ({"backoff": -0.5}, "backoff"),
                         ({"base_url": "http://[::1"}, r"base_url 'http://\[::1' is not a URL: Invalid IPv6 URL"),
                         ({"base_url": "127.0.0.1:8000/v1"}, "base_url must be an http:// or https:// URL with a host"),
                         ({"base_url": "ftp://host/v1"}, "base_url must be an http:// or https:// URL with a host"),
                         ({"base_url": "http://host:port/v1"}, "base_url 'http://host:port/v1' is not a URL")):
        with pytest.raises(ConfigError, match=message):
            OpenAIGenerator(model="m", **bad)


def test_any_json_answer_parses_or_is_a_bad_body():
    """Whatever JSON a server answers with, the parser gives a result or _BadBody (retried, then
    one line), never another exception."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from openr_openai.generator import _BadBody, _parse

    scalars = st.none() | st.booleans() | st.integers(-2, 3) | st.floats(allow_nan=False) | st.text(max_size=4)
    values = st.recursive(scalars, lambda v: st.lists(v, max_size=3) | st.dictionaries(st.text(max_size=3), v, max_size=3),
                          max_leaves=8)
    choice = st.fixed_dictionaries({}, optional={"index": values | st.integers(0, 2), "text": values | st.text(max_size=4),
                                                 "finish_reason": values, "stop_reason": values,
                                                 "logprobs": values | st.fixed_dictionaries({"token_logprobs": values})})
    body = st.fixed_dictionaries({}, optional={"choices": st.lists(choice | values, max_size=3) | values,
                                               "usage": values}) | values

    @settings(max_examples=300, deadline=None)
    @given(body, st.integers(1, 2), st.booleans())
    def check(data, n, logprobs):
        try:
            result = _parse(data, GenerationRequest("p", SamplingParams(n=n, logprobs=logprobs)))
        except _BadBody:
            return
        assert len(result.completions) == n and all(isinstance(c.text, str) for c in result.completions)

    check()
