"""A small OpenAI-compatible completions server on 127.0.0.1 with scripted failures."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeServer:
    def __init__(self):
        self.failures = []  # HTTP codes to answer before succeeding
        self.requests = []
        self.lock = threading.Lock()
        self.stop = threading.Event()  # set at teardown: ends a dripping answer
        self.required_key = None
        self.delay = 0.0
        self.in_flight = self.most_in_flight = 0  # requests being answered at once (with a delay)
        self.gather = 0  # with a delay: hold each request until this many are in flight (or 30 s pass)
        self.arrived = threading.Condition(self.lock)
        self.raw = []  # whole HTTP answers (bytes) to send, one per request, before normal answers
        self.drip = None  # (seconds per byte, bytes): answer a byte at a time, forever slow

    def handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append((self.path, body, self.headers.get("Authorization")))
                    code = server.failures.pop(0) if server.failures else 200
                if server.required_key and self.headers.get("Authorization") != f"Bearer {server.required_key}":
                    code = 401
                if server.delay:
                    with server.arrived:
                        server.in_flight += 1
                        server.most_in_flight = max(server.most_in_flight, server.in_flight)
                        server.arrived.notify_all()
                        if server.gather:  # counted, not timed: a loaded machine only makes it slower
                            server.arrived.wait_for(lambda: server.in_flight >= server.gather, timeout=30)
                    time.sleep(server.delay)
                    with server.lock:
                        server.in_flight -= 1
                with server.lock:
                    raw = server.raw.pop(0) if server.raw else None
                if raw is not None:
                    self.wfile.write(raw)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if server.drip:
                    seconds, data = server.drip
                    try:
                        for i in range(len(data)):
                            self.wfile.write(data[i : i + 1])
                            self.wfile.flush()
                            if server.stop.wait(seconds):
                                break
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client gave up, as it should
                    self.close_connection = True
                    return
                if code != 200:
                    self.send_response(code)
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted"}')
                    return
                words = body["prompt"].split()
                choices = []
                for i in range(body["n"]):
                    tokens = [f"{w}{i}" for w in words[: body["max_tokens"]]]
                    stop = (body.get("stop") or [None])[0]
                    choices.append({"index": i, "text": " ".join(tokens), "finish_reason": "stop" if stop else "length",
                                    "stop_reason": stop,
                                    "logprobs": {"tokens": tokens, "token_logprobs": [-0.5] * len(tokens)}})
                answer = {"choices": choices, "usage": {"prompt_tokens": len(words), "completion_tokens": 0}}
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        return Handler


@pytest.fixture
def server2():
    """A second server on another port: another origin."""
    yield from _serve()


@pytest.fixture
def server():
    yield from _serve()


def _serve():
    fake = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield fake
    fake.stop.set()
    httpd.shutdown()
    httpd.server_close()
