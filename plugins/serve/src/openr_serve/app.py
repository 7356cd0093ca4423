"""The OpenAI-compatible HTTP API over a :class:`SearchEngine` (FastAPI).

``POST /v1/chat/completions`` (the question is the last user message) and
``POST /v1/completions`` (the prompt) answer with the chosen solution of the configured
searcher; ``GET /v1/models`` lists the searchers. Extra body fields: ``searcher`` (a label
such as ``beam@16`` or a type such as ``beam``; ``model`` works the same way) and ``n`` (the
searcher's budget). ``stream: true`` sends the answer as server-sent events, one chunk per
step. Errors have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``: 400
for a bad request, 404 for an unknown model, 429 when the queue is full, never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from openr_serve.engine import BadRequest, QueueFull, SearchEngine

SERVED_NAME = "openr"  # `model` may be this (the default searcher), a searcher label or a type


def error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status_code=status)


def create_app(engine: SearchEngine) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app):
        engine.start()
        yield
        await engine.stop()  # uvicorn has let in-flight requests finish; drain the queue, free models
        print(f"openr serve: stopped after {engine.answered} requests", file=sys.stderr, flush=True)

    app = FastAPI(title="openr serve", lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return error(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}", param=where or None)

    @app.exception_handler(HTTPException)
    async def _http(request, exc):
        return error(exc.status_code, str(exc.detail), "not_found_error" if exc.status_code == 404 else "invalid_request_error")

    @app.exception_handler(Exception)
    async def _crash(request, exc):
        return error(500, f"{type(exc).__name__}: {exc}", "server_error")

    @app.get("/v1/models")
    async def models():
        ids = [SERVED_NAME, *engine.specs]
        return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "openr"} for i in ids]}

    async def body_of(request: Request) -> dict:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadRequest("body: not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("body: must be a JSON object")
        return body

    async def answer(request: Request, chat: bool):
        try:
            body = await body_of(request)
            question = question_of(body, chat)
            model = body.get("model")
            searcher = body.get("searcher")
            if searcher is None and model not in (None, SERVED_NAME):
                try:
                    searcher = engine.resolve(model)
                except BadRequest:
                    return error(404, f"model: '{model}' not found; available: {', '.join([SERVED_NAME, *engine.specs])}",
                                 "not_found_error", "model")
            job = engine.job(question, searcher, body.get("n"), body.get("max_tokens"))
            result, shared = await engine.submit(job)
        except BadRequest as e:
            return error(400, str(e))
        except QueueFull as e:
            return error(429, str(e), "rate_limit_error")
        text = engine.task.join_steps(result.solution.steps).rstrip() if result.solution else ""
        steps = list(result.solution.steps) if result.solution else []
        usage = {"prompt_tokens": 0, "completion_tokens": result.budget.generated_tokens,
                 "total_tokens": result.budget.generated_tokens, "prm_tokens": result.budget.prm_tokens,
                 "generator_calls": result.budget.generator_calls}
        ident, created = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}", int(time.time())
        extra = {"searcher": job.searcher, "answer": result.answer, "candidates": len(result.candidates), "batched_with": shared}
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(events(ident, created, job.searcher, steps, engine.task.step_separator, usage,
                                            include_usage, chat), media_type="text/event-stream")
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
        return {"id": ident, "object": "chat.completion" if chat else "text_completion", "created": created,
                "model": job.searcher, "choices": [choice], "usage": usage, "openr": extra}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await answer(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await answer(request, chat=False)

    return app


def question_of(body: dict, chat: bool) -> str:
    if not chat:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise BadRequest("prompt: required, one string")
        return prompt
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: required, a non-empty list")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise BadRequest("messages: no message with role 'user'")
    content = users[-1].get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(content, str):
        raise BadRequest("messages: the last user message has no text content")
    return content


def events(ident, created, model, steps, separator, usage, include_usage, chat):
    """Server-sent events: one chunk per step of the answer, a final chunk, then [DONE]."""
    kind = "chat.completion.chunk" if chat else "text_completion"

    def chunk(delta_text=None, finish=None, role=False, with_usage=False):
        if chat:
            delta = {"role": "assistant"} if role else {}
            if delta_text is not None:
                delta["content"] = delta_text
            choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
        else:
            choices = [{"index": 0, "text": delta_text or "", "logprobs": None, "finish_reason": finish}]
        data = {"id": ident, "object": kind, "created": created, "model": model, "choices": choices}
        if with_usage:
            data = {**data, "choices": [], "usage": usage}
        return f"data: {json.dumps(data)}\n\n"

    if chat:
        yield chunk(role=True, delta_text="")
    for i, step in enumerate(steps):
        yield chunk(step + (separator if i < len(steps) - 1 else ""))
    yield chunk(finish="stop")
    if include_usage:
        yield chunk(with_usage=True)
    yield "data: [DONE]\n\n"
