"""The `openai` generator: POST /completions to any OpenAI-compatible server.

HTTP goes through httpcore (the transport under httpx) with a network backend of our own: every
socket connect, read and write gets the time left of the attempt's ``timeout``, so ``timeout`` is a
total deadline per attempt (httpx's and urllib's timeouts apply to each read, so a server that sends
a byte a second held a request forever). Requests run ``concurrency`` at a time; 429 and 5xx answers,
dropped connections, timeouts and unreadable bodies (not JSON, not an object, cut short) are retried
with exponential backoff; 401/403, redirects and unreachable servers become one-line errors that
name the URL. Redirects are never followed, so the API key is only ever sent to ``base_url``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs
import httpcore

from openr_core import Completion, GenerationRequest, GenerationResult, Generator, OpenrError


@attrs.frozen
class OpenAIGeneratorConfig:
    """``api_key_env`` names the environment variable holding the key (unset: no auth header)."""

    model: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 5
    backoff: float = 0.5
    timeout: float = 120.0  # seconds one attempt may take in all: connect, send, wait, read the answer

    def __attrs_post_init__(self):
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if not self.backoff >= 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {self.backoff}")
        try:
            url = urllib.parse.urlsplit(self.base_url)
            url.port  # noqa: B018 (parses the port: 'host:x' fails here)
        except ValueError as e:
            raise ValueError(f"base_url {self.base_url!r} is not a URL: {e}") from None
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL with a host, got {self.base_url!r}")


class EndpointError(OpenrError):
    """The endpoint refused or failed a request for good."""


class OpenAIGenerator(Generator):
    """Any OpenAI-compatible /v1/completions endpoint: concurrency, retries with backoff, a total
    ``timeout`` per attempt, no redirects (the key stays with ``base_url``)."""

    Config = OpenAIGeneratorConfig

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self.retries = 0  # how many retries were needed so far (for logs and tests)
        self._pool = httpcore.ConnectionPool(max_connections=self.config.concurrency, network_backend=_DeadlineBackend())

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def _payload(self, request: GenerationRequest) -> dict:
        p = request.params
        body = {"model": self.config.model, "prompt": request.prompt, "n": p.n, "temperature": p.temperature,
                "top_p": p.top_p, "max_tokens": p.max_tokens, "logprobs": 1 if p.logprobs else 0}
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop:
            body["stop"] = list(p.stop)
        return body

    def _one(self, request: GenerationRequest) -> GenerationResult:
        return self._post("/completions", self._payload(request), lambda data: _parse(data, request))

    def _post(self, path: str, body: dict, parse):
        url = self.config.base_url.rstrip("/") + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        payload = json.dumps(body).encode()
        delay = self.config.backoff
        for attempt in range(self.config.max_retries + 1):
            last = attempt == self.config.max_retries
            try:
                with _deadline(self.config.timeout):
                    response, content = self._send(url, headers, payload)
            except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.RemoteProtocolError, OSError) as e:
                if not last:
                    delay = self._wait(delay)
                    continue
                if isinstance(e, httpcore.TimeoutException):
                    reason = f"timed out (`timeout`: {self.config.timeout} s per attempt in all)"
                else:
                    reason = str(e) or type(e).__name__
                connecting = isinstance(e, (httpcore.ConnectError, httpcore.ConnectTimeout, OSError))
                failure = "cannot connect" if connecting else "no complete answer"
                raise EndpointError(f"{url}: {failure} after {attempt + 1} attempts: {reason}") from None
            except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as e:
                raise EndpointError(f"{url}: {e}") from None
            code = response.status
            if code in (401, 403):
                raise EndpointError(f"{url}: authentication failed (HTTP {code}); check ${self.config.api_key_env}")
            if 300 <= code < 400:
                location = dict((k.lower(), v) for k, v in response.headers).get(b"location", b"?").decode(errors="replace")
                raise EndpointError(f"{url}: HTTP {code} redirect to {location} not followed (the API key is "
                                    "only sent to base_url); set base_url to the server's real address")
            if code != 200:
                if (code == 429 or code >= 500) and not last:
                    delay = self._wait(delay)
                    continue
                detail = " ".join((content or b"")[:200].decode(errors="replace").split())  # one line
                raise EndpointError(f"{url}: HTTP {code}: {detail}")
            try:
                if content is None:
                    raise _BadBody(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
                return parse(json.loads(content))
            except (ValueError, UnicodeDecodeError, _BadBody) as e:
                if not last:
                    delay = self._wait(delay)
                    continue
                problem = e if isinstance(e, _BadBody) else f"not JSON ({e})"
                raise EndpointError(f"{url}: unusable answer after {attempt + 1} attempts: {problem}; "
                                    f"starts {(content or b'')[:80]!r}") from None
        raise AssertionError("unreachable")

    def _send(self, url: str, headers: dict, payload: bytes) -> tuple[httpcore.Response, bytes | None]:
        """The response and its body; the body is None past MAX_ANSWER_BYTES (read no further)."""
        with self._pool.stream("POST", url, headers=headers, content=payload) as response:
            content = bytearray()
            for chunk in response.iter_stream():
                content += chunk
                if len(content) > MAX_ANSWER_BYTES:
                    return response, None
            return response, bytes(content)

    def close(self) -> None:
        self._pool.close()

    def _wait(self, seconds: float) -> float:
        """Sleep ``seconds``; return the next, doubled, backoff."""
        self.retries += 1
        time.sleep(seconds)
        return seconds * 2


MAX_ANSWER_BYTES = 64 * 2**20  # a completions answer is a few MB at most, even with n=64 and log-probs


class _BadBody(ValueError):
    """A 200 answer whose JSON is not a completions object."""


def _parse(data, request: GenerationRequest) -> GenerationResult:
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise _BadBody(f"expected an object with a 'choices' list, got {type(data).__name__}")
    choices = data["choices"]
    if not all(isinstance(c, dict) and isinstance(c.get("text", ""), str) and isinstance(c.get("index", 0), int)
               for c in choices):
        raise _BadBody("each choice must be an object with a string 'text' and an integer 'index'")
    choices = sorted(choices, key=lambda c: c.get("index", 0))
    if len(choices) != request.params.n:
        raise _BadBody(f"asked for n={request.params.n} completions, got {len(choices)}")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    completions = []
    for choice in choices:
        logprobs = choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else {}
        token_logprobs = logprobs.get("token_logprobs")
        if token_logprobs is not None and not isinstance(token_logprobs, list):
            raise _BadBody("'logprobs.token_logprobs' must be a list")
        n_tokens = len(token_logprobs) if token_logprobs is not None else _int(usage.get("completion_tokens")) // max(len(choices), 1)
        stop_string = choice.get("stop_reason") if isinstance(choice.get("stop_reason"), str) else None
        completions.append(Completion(
            choice.get("text", ""), n_tokens, "length" if choice.get("finish_reason") == "length" else "stop",
            tuple(token_logprobs) if request.params.logprobs and token_logprobs is not None else None, stop_string))
    return GenerationResult(tuple(completions), _int(usage.get("prompt_tokens")))


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- a total deadline per attempt --------------------------------------------------------------------
# httpcore gives each socket operation the same timeout; this backend shrinks it to what is left of
# the attempt's deadline (kept per thread: each attempt runs start to end in one worker thread).

_DEADLINE = threading.local()


@contextlib.contextmanager
def _deadline(seconds: float):
    _DEADLINE.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _DEADLINE.at = math.inf


def _time_left(timeout: float | None, error: type[Exception]) -> float:
    left = getattr(_DEADLINE, "at", math.inf) - time.monotonic()
    if left <= 0:
        raise error("the request's total timeout ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream):
        self.stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        return self.stream.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        return _DeadlineStream(self.stream.start_tls(ssl_context, server_hostname, _time_left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str):
        return self.stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self):
        self.backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None) -> httpcore.NetworkStream:
        return _DeadlineStream(self.backend.connect_tcp(host, port, _time_left(timeout, httpcore.ConnectTimeout),
                                                        local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None) -> httpcore.NetworkStream:
        return _DeadlineStream(self.backend.connect_unix_socket(path, _time_left(timeout, httpcore.ConnectTimeout),
                                                                socket_options))
