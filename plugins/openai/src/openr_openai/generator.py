"""The `openai` generator: POST /completions to any OpenAI-compatible server.

Standard library only (urllib + a thread pool). Requests run ``concurrency`` at a time;
429 and 5xx answers and dropped connections are retried with exponential backoff; 401/403
and unreachable servers become one-line errors that name the URL and the key variable.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

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
    timeout: float = 120.0

    def __attrs_post_init__(self):
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")


class EndpointError(OpenrError):
    """The endpoint refused or failed a request for good."""


class OpenAIGenerator(Generator):
    """Any OpenAI-compatible /v1/completions endpoint: concurrency, retries with backoff, timeouts."""

    Config = OpenAIGeneratorConfig

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self.retries = 0  # how many retries were needed so far (for logs and tests)

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
        data = self._post("/completions", self._payload(request))
        choices = sorted(data.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != request.params.n:
            raise EndpointError(f"{self.config.base_url}: asked for n={request.params.n} completions, got {len(choices)}")
        usage = data.get("usage") or {}
        completions = []
        for choice in choices:
            logprobs = choice.get("logprobs") or {}
            token_logprobs = logprobs.get("token_logprobs")
            n_tokens = len(token_logprobs) if token_logprobs is not None else usage.get("completion_tokens", 0) // len(choices)
            stop_string = choice.get("stop_reason") if isinstance(choice.get("stop_reason"), str) else None
            completions.append(Completion(
                choice.get("text", ""), n_tokens, "length" if choice.get("finish_reason") == "length" else "stop",
                tuple(token_logprobs) if request.params.logprobs and token_logprobs is not None else None, stop_string))
        return GenerationResult(tuple(completions), usage.get("prompt_tokens", 0))

    def _post(self, path: str, body: dict) -> dict:
        url = self.config.base_url.rstrip("/") + path
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        payload = json.dumps(body).encode()
        delay = self.config.backoff
        for attempt in range(self.config.max_retries + 1):
            last = attempt == self.config.max_retries
            try:
                req = urllib.request.Request(url, data=payload, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.config.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                detail = e.read()[:200].decode(errors="replace")
                if e.code in (401, 403):
                    raise EndpointError(f"{url}: authentication failed (HTTP {e.code}); check ${self.config.api_key_env}") from None
                if (e.code == 429 or e.code >= 500) and not last:
                    self._wait(delay)
                    delay *= 2
                    continue
                raise EndpointError(f"{url}: HTTP {e.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if not last:
                    self._wait(delay)
                    delay *= 2
                    continue
                reason = getattr(e, "reason", e)
                raise EndpointError(f"{url}: cannot connect after {attempt + 1} attempts: {reason}") from None
        raise AssertionError("unreachable")

    def _wait(self, seconds: float) -> None:
        self.retries += 1
        time.sleep(seconds)
