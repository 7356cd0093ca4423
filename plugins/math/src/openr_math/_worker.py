"""The grading worker process: runs math-verify, one request at a time.

Started by :mod:`openr_math.grader` as ``python -m openr_math._worker READ_FD WRITE_FD`` (a
plain subprocess, so the parent's ``__main__`` is never re-imported and its threads do not
matter). Requests and replies are pickled over the two pipes with
:class:`multiprocessing.connection.Connection`.

Protocol: the worker first sends ``("ready", pid)``; then for each request
``(op, args, budget_seconds)`` it answers ``("ok", value)``, ``("timeout", None)`` or
``("error", message)``. ``budget_seconds`` is a soft limit enforced with ``setitimer`` (the
worker runs on its own main thread, so signals work); the parent keeps a hard limit on top and
kills the process when a computation cannot be interrupted (long C-level big-integer work).
"""

from __future__ import annotations

import os
import signal
import time
from collections import OrderedDict

# Soft memory ceiling for the worker (address space), so that a runaway computation raises
# MemoryError in the worker instead of exhausting the machine. Override with
# OPENR_MATH_WORKER_MEMORY_MB (0 disables).
DEFAULT_MEMORY_MB = 4096


class _Budget(BaseException):
    """Raised by the timer inside a computation. BaseException: math-verify's and sympy's
    ``except Exception`` handlers let it through."""


_armed = False


def _on_alarm(signum, frame):
    if _armed:
        raise _Budget()


def _limit_memory() -> None:
    try:
        mb = int(os.environ.get("OPENR_MATH_WORKER_MEMORY_MB", DEFAULT_MEMORY_MB))
    except ValueError:
        mb = DEFAULT_MEMORY_MB
    if mb <= 0:
        return
    try:
        import resource

        limit = mb * 1024 * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or soft > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


class _Engine:
    """math-verify parse/verify with the extraction targets named by strings, and a parse cache."""

    def __init__(self):
        import logging

        import math_verify
        import math_verify.grader
        import math_verify.parser
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        # We pass timeout=None to math-verify (its SIGALRM-based limit would reset our timer);
        # silence its one-time "timeout disabled" warning and its per-failure chatter.
        math_verify.parser.TIMEOUT_WARNING_SHOWN = True
        math_verify.grader.TIMEOUT_WARNING_SHOWN = True
        for name in ("math_verify", "latex2sympy2_extended"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.mv = math_verify
        self.configs = {
            "latex": LatexExtractionConfig(boxed_match_priority=0),
            "expr": ExprExtractionConfig(),
        }
        self.cache: OrderedDict = OrderedDict()

    def parse(self, text: str, targets: tuple[str, ...]):
        key = (text, targets)
        hit = self.cache.get(key)
        if hit is not None:
            self.cache.move_to_end(key)
            return hit
        parsed = self.mv.parse(
            text, [self.configs[t] for t in targets], parsing_timeout=None
        )
        self.cache[key] = parsed
        if len(self.cache) > 4096:
            self.cache.popitem(last=False)
        return parsed

    def verify(self, gold: str, pred: str, opts: dict) -> bool:
        targets = tuple(opts.get("targets", ("latex", "expr")))
        g = self.parse(gold, targets)
        p = self.parse(pred, targets)
        if not g or not p:
            return False
        return bool(
            self.mv.verify(
                g,
                p,
                float_rounding=opts.get("float_rounding", 6),
                strict=opts.get("strict", True),
                allow_set_relation_comp=opts.get("allow_set_relation_comp", False),
                timeout_seconds=None,
            )
        )

    def describe(self, text: str, opts: dict) -> list:
        """What ``text`` parses to: ``[(type name, str)]`` per extracted item (strings cut)."""
        from sympy import Basic, MatrixBase

        targets = tuple(opts.get("targets", ("latex", "expr")))
        out = []
        for item in self.parse(text, targets):
            kind = type(item).__name__ if isinstance(item, (Basic, MatrixBase)) else "str"
            out.append((kind, str(item)[:200]))
        return out


def serve(reader, writer) -> None:
    """Worker main loop: requests come on ``reader``, replies go to ``writer``."""
    global _armed
    _limit_memory()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent; it kills us
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        engine = _Engine()
    except BaseException as e:  # noqa: BLE001 - report any import failure to the parent
        writer.send(("error", f"cannot start math-verify: {type(e).__name__}: {e}"))
        return
    writer.send(("ready", os.getpid()))
    while True:
        try:
            op, args, budget = reader.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        reply: tuple
        try:
            _armed = True
            if budget and budget > 0:
                signal.setitimer(signal.ITIMER_REAL, budget)
            try:
                if op == "verify":
                    value = engine.verify(*args)
                elif op == "describe":
                    value = engine.describe(*args)
                elif op == "ping":
                    value = True
                elif op == "_uninterruptible_sleep":  # for tests: work a signal cannot stop
                    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
                    try:
                        time.sleep(float(args[0]))
                    finally:
                        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
                    value = True
                else:
                    raise ValueError(f"unknown op {op!r}")
            finally:
                _armed = False
                signal.setitimer(signal.ITIMER_REAL, 0)
            reply = ("ok", value)
        except _Budget:
            reply = ("timeout", None)
        except MemoryError:
            reply = ("error", "MemoryError")
        except RecursionError:
            reply = ("error", "RecursionError")
        except Exception as e:  # noqa: BLE001 - any failure is a wrong answer, reported
            reply = ("error", f"{type(e).__name__}: {str(e)[:300]}")
        try:
            writer.send(reply)
        except (OSError, ValueError):
            return


def main(argv: list[str]) -> None:
    from multiprocessing.connection import Connection

    read_fd, write_fd = int(argv[1]), int(argv[2])
    serve(Connection(read_fd, writable=False), Connection(write_fd, readable=False))


if __name__ == "__main__":
    import sys

    main(sys.argv)
