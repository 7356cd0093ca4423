"""`openr serve` through the official openai client: answers from the configured searchers,
shared search rounds, per-request searcher and budget, usage, streaming, errors, 429, shutdown."""

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx  # what the openai client uses
import openai
import pytest

from openr_arith.task import ArithTask
from openr_serve.engine import problem

TASK = ArithTask()
QUESTIONS = [p.question for p in TASK.load("test", 6)]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server[1] + "/v1", api_key="unused", max_retries=0, timeout=120)


def ask(client, question, **extra):
    return client.chat.completions.create(model="openr", messages=[{"role": "user", "content": question}], extra_body=extra)


def test_models_are_the_configured_searchers(client):
    assert [m.id for m in client.models.list()] == ["openr", "best-of-n@4", "beam@4", "greedy"]


def test_chat_answer_is_the_searchers_chosen_solution_with_usage(client, direct):
    reply = ask(client, QUESTIONS[0])
    text = reply.choices[0].message.content
    extra = reply.model_extra["openr"]
    assert reply.model == "best-of-n@4" and extra["candidates"] == 4  # the first searcher, n = 4 samples
    assert TASK.extract_answer(text) == extra["answer"]
    assert reply.usage.completion_tokens > len(TASK.split_steps(text))  # all 4 samples' tokens, not just the answer's
    assert reply.usage.model_extra["generator_calls"] == 1
    # the same searcher run here on the same question: the same solution, answer and token count
    expected = direct(0, [QUESTIONS[0]])[0]
    assert text == TASK.join_steps(expected.solution.steps).rstrip() and extra["answer"] == expected.answer
    assert reply.usage.completion_tokens == expected.budget.generated_tokens


def test_concurrent_requests_share_search_rounds_and_get_the_answers_they_get_alone(client):
    alone = [ask(client, q).choices[0].message.content for q in QUESTIONS[:3]]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda q: ask(client, q), QUESTIONS[:3]))
    assert max(r.model_extra["openr"]["batched_with"] for r in together) > 1
    assert [r.choices[0].message.content for r in together] == alone


def test_searcher_and_budget_per_request(client):
    beam = client.completions.create(model="beam@4", prompt=QUESTIONS[1])
    assert beam.model == "beam@4" and TASK.extract_answer(beam.choices[0].text) is not None
    assert beam.usage.completion_tokens > 0
    two = ask(client, QUESTIONS[1], searcher="best-of-n", n=2)
    assert two.model == "best-of-n@4" and two.model_extra["openr"]["candidates"] == 2
    greedy = ask(client, QUESTIONS[1], searcher="greedy")
    assert greedy.model_extra["openr"]["candidates"] == 1 and greedy.usage.model_extra["generator_calls"] == 1


def test_streaming_sends_the_same_answer_in_chunks(client):
    whole = ask(client, QUESTIONS[2]).choices[0].message.content
    chunks = list(client.chat.completions.create(model="openr", messages=[{"role": "user", "content": QUESTIONS[2]}],
                                                 stream=True, stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == whole and len(deltas) == len(TASK.split_steps(whole))
    assert chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


@pytest.mark.parametrize("extra, message", [
    ({"n": 0}, "n: must be an integer in 1..256"), ({"n": "four"}, "n: must be an integer"), ({"n": 257}, "1..256"),
    ({"searcher": "nope"}, "searcher: unknown 'nope'; available: best-of-n@4, beam@4, greedy"),
    ({"searcher": "beam", "n": 1}, "width must be in 1..n (1)"), ({"searcher": "greedy", "n": 2}, "has no budget n"),
    ({"max_tokens": 100_000}, "max_tokens: searcher 'best-of-n@4' allows at most 256, got 100000"),
])
def test_bad_requests_get_400_with_a_message(client, extra, message):
    with pytest.raises(openai.BadRequestError) as e:
        ask(client, QUESTIONS[0], **extra)
    assert message in e.value.message and "Traceback" not in e.value.message


def test_malformed_bodies_and_unknown_models(client, server):
    base = server[1]
    for body, message in ((b"{nope", "not valid JSON"), (b"[1]", "JSON object"), (b'{"messages": []}', "messages: required"),
                          (b'{"messages": [{"role": "system", "content": "x"}]}', "no message with role 'user'")):
        r = httpx.post(f"{base}/v1/chat/completions", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and message in r.json()["error"]["message"]
    r = httpx.post(f"{base}/v1/completions", json={"prompt": 3})
    assert r.status_code == 400 and r.json()["error"]["message"] == "prompt: required, one string"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "1+1"}])


@pytest.fixture
def busy_client(tmp_path, start_server):
    # a server of its own that allows a search big enough (n = 4096, seconds) to keep its worker busy
    proc, base = start_server(tmp_path, "--queue-size", "3", "--window-ms", "50", "--max-n", "4096")
    return openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_a_full_queue_answers_429_and_loses_nothing_it_accepted(busy_client):
    # the worker is busy with a big search, the queue holds 3: of 11 requests sent at once, some wait
    # (and are answered), the others are refused at once with 429
    client = busy_client

    def one(i):
        try:
            ask(client, QUESTIONS[i % 6], n=4096 if i == 0 else 1 + i % 3)
            return "ok"
        except openai.RateLimitError as e:
            assert "queue is full (3 requests waiting)" in e.message
            return 429
    with ThreadPoolExecutor(12) as pool:
        first = pool.submit(one, 0)
        time.sleep(0.5)
        rest = list(pool.map(one, range(1, 12)))
    assert first.result() == "ok"
    assert 1 <= rest.count("ok") and rest.count(429) >= 11 - 2 * 3 and rest.count("ok") + rest.count(429) == 11


def test_shutdown_finishes_the_requests_in_flight(tmp_path, start_server):
    proc, base = start_server(tmp_path)
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(ask, client, q, n=32) for q in QUESTIONS[:3]]
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        replies = [f.result() for f in futures]
    assert [r.model_extra["openr"]["candidates"] for r in replies] == [32] * 3
    # uvicorn re-raises the SIGTERM it caught once shutdown is done: the conventional status
    assert proc.wait(60) == -signal.SIGTERM
    assert "openr serve: stopped after 3 requests" in proc.stdout.read()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/v1/models")


def test_openr_help_imports_neither_fastapi_nor_uvicorn():
    import subprocess
    import sys
    probe = ("import sys\nfrom openr_core.cli import cli\ntry:\n    cli.main(args=['--help'], prog_name='openr')\n"
             "except SystemExit:\n    pass\nprint(sorted(m for m in ('fastapi', 'uvicorn', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout
    assert "serve" in out and out.strip().endswith("[]")


def test_every_serve_option_is_in_serve_md():
    from pathlib import Path

    from openr_serve.plugin import serve
    text = (Path(__file__).resolve().parents[3] / "docs" / "serve.md").read_text()
    for param in serve.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert f"`{opt}" in text, f"docs/serve.md does not mention {opt}"
