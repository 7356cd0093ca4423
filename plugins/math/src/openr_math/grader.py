"""Answer equivalence with math-verify, under a hard time limit.

math-verify's own time limit uses ``signal.alarm``: whole seconds only, main thread only, and
it cannot interrupt long C-level work (a huge integer power) because Python runs signal
handlers between bytecodes. So :class:`Grader` never runs math-verify in the calling process:

1. **Fast paths, in process** (no math-verify): two answers that are the same string after
   removing spacing (except after commas), ``\\left``/``\\right`` and ``\\dfrac``/``\\tfrac``
   spellings are equal; two plain integers (``1,234`` allowed) are compared as integers.
2. **Guards, in process**: an input nested more than ``max_nesting`` brackets deep (real
   answers stay below 10) or longer than ``max_chars`` is wrong at once.
3. **Everything else goes to one long-lived worker process** (shared by all graders of the
   process) that runs ``math_verify.parse``/``verify``. The worker stops a computation after
   ``timeout`` seconds with its own timer; the parent also waits at most ``timeout + grace``
   and then kills the worker (SIGKILL) and starts another one. Either way the comparison is
   wrong, and a warning names the problem.

The worker is a plain subprocess (``python -m openr_math._worker``), not a multiprocessing
child, so the caller's ``__main__`` is never re-imported and its threads do not matter.
Results are cached per (gold, pred, options). Model text is only parsed, never evaluated.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

import attrs

logger = logging.getLogger("openr_math.grader")

TARGETS = ("latex", "expr")
_DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed|\\fbox|\\begin\{(?:equation|align)")
_INT = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)")
_COMMA_SPACE = re.compile(r",(?:\s|\\[!,;: ])+")
_SPACING = re.compile(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\[!,;: ]|\s+|\\displaystyle")


@attrs.frozen
class Verdict:
    """The outcome of one comparison: ``status`` is ``equal``, ``different``, ``timeout`` or ``error``."""

    equal: bool
    status: str
    detail: str = ""
    seconds: float = 0.0

    def __bool__(self) -> bool:
        return self.equal


def has_math_delimiters(text: str) -> bool:
    """Whether ``text`` marks its math (``$``, ``\\(``, ``\\[``, ``\\boxed``); else it is a bare answer."""
    return bool(_DELIMITED.search(text))


def normalize(answer: str) -> str:
    """A conservative spelling normalisation: equal results mean the answers are equal.

    Spacing goes, except after a comma: math-verify reads ``1,100`` as a number and ``1, 100``
    as a list, so those must not collapse into one spelling.
    """
    s = answer.strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$" and not s.endswith("\\$"):
        s = s.strip("$")
    s = _COMMA_SPACE.sub(",\x00", s)
    s = _SPACING.sub("", s).replace(",\x00", ", ")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return s.rstrip(".")


def max_nesting(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch in ")]}" and depth:
            depth -= 1
    return deepest


def as_int(answer: str) -> int | None:
    """The integer a plain integer answer (``42``, ``-7``, ``1,234``) spells, else None."""
    s = answer.strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s[1:-1].strip()
    s = s.rstrip(".")
    if len(s) > 60 or not _INT.fullmatch(s):
        return None
    return int(s.replace(",", ""))


# -- the worker --------------------------------------------------------------------------------


class _Worker:
    """One worker subprocess (``python -m openr_math._worker``) and its two pipes."""

    def __init__(self):
        from multiprocessing.connection import Connection

        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        # make sure the child imports this very copy of openr_math (source checkouts too)
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "openr_math._worker", str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            os.close(to_child_w)
            os.close(from_child_r)
            raise
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.writer = Connection(to_child_w, readable=False)
        self.reader = Connection(from_child_r, writable=False)
        self.ready = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        if not self.reader.poll(timeout):
            raise RuntimeError(f"grading worker did not start within {timeout:.0f} s")
        status, value = self.reader.recv()
        if status != "ready":
            raise RuntimeError(f"grading worker failed to start: {value}")
        self.ready = True

    def kill(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for conn in (self.writer, self.reader):
            try:
                conn.close()
            except OSError:
                pass


class WorkerPool:
    """The process-wide grading worker (one; requests are serialised by a lock).

    Once a worker has had to be killed, the pool also keeps a spare one warming up, so the
    next request after a kill does not wait for math-verify to import again (~0.5 s).
    """

    STARTUP_TIMEOUT = 120.0
    GRACE = 0.5

    def __init__(self):
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._spare: _Worker | None = None
        self.kills = 0
        self.starts = 0

    def _new(self) -> _Worker:
        self.starts += 1
        return _Worker()

    def _ensure(self) -> _Worker:
        worker = self._worker
        if worker is None or not worker.alive():
            if worker is not None:
                worker.kill()
            spare, self._spare = self._spare, None
            worker = self._worker = spare if spare is not None and spare.alive() else self._new()
        try:
            worker.wait_ready(self.STARTUP_TIMEOUT)
        except BaseException:
            worker.kill()
            self._worker = None
            raise
        return worker

    def _replace(self) -> None:
        """Kill the current worker; the spare takes over and a new spare starts warming up."""
        if self._worker is not None:
            self._worker.kill()
            self.kills += 1
        self._worker = None
        try:
            if self._spare is None or not self._spare.alive():
                self._spare = self._new()
            self._worker, self._spare = self._spare, self._new()
        except Exception:  # noqa: BLE001 - the next request retries
            pass

    def warm_up(self) -> None:
        """Start the worker now and wait until it is ready (optional; the first request does it)."""
        with self._lock:
            self._ensure()

    def request(self, op: str, args: tuple, timeout: float) -> tuple[str, object]:
        """Run ``op`` in the worker; ``("ok", value)``, ``("timeout", None)`` or ``("error", msg)``."""
        with self._lock:
            try:
                worker = self._ensure()
            except Exception as e:  # noqa: BLE001
                return "error", f"grading worker unavailable: {type(e).__name__}: {e}"
            try:
                worker.writer.send((op, args, timeout))
                if worker.reader.poll(timeout + self.GRACE):
                    return worker.reader.recv()
            except (EOFError, OSError) as e:
                self._replace()
                return "error", f"grading worker died ({type(e).__name__})"
            self._replace()
            return "timeout", None

    def close(self) -> None:
        with self._lock:
            for worker in (self._worker, self._spare):
                if worker is not None:
                    worker.kill()
            self._worker = self._spare = None


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> WorkerPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WorkerPool()
            atexit.register(_pool.close)
        return _pool


def shutdown() -> None:
    """Stop the grading worker (a later comparison starts a new one)."""
    if _pool is not None:
        _pool.close()


# -- the grader --------------------------------------------------------------------------------


class Grader:
    """Decides whether a predicted answer equals a gold answer (see the module docstring).

    ``gold`` and ``pred`` are either bare answers (``\\frac{1}{2}``, ``5 \\text{ cm}``), which are
    wrapped in ``\\boxed{}`` before parsing so the whole string is the answer, or texts that mark
    their math with ``$``/``\\(``/``\\[``/``\\boxed``, which math-verify's extraction reads as they are.
    """

    def __init__(
        self,
        timeout: float = 5.0,
        *,
        targets: Sequence[str] = TARGETS,
        float_rounding: int = 6,
        strict: bool = True,
        allow_set_relation_comp: bool = False,
        max_nesting: int = 40,
        max_chars: int = 50_000,
        cache_size: int = 100_000,
    ):
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        bad = [t for t in targets if t not in TARGETS]
        if bad or not targets:
            raise ValueError(f"targets must be a non-empty subset of {TARGETS}, got {list(targets)}")
        self.timeout = float(timeout)
        self.options = {
            "targets": tuple(targets),
            "float_rounding": float_rounding,
            "strict": strict,
            "allow_set_relation_comp": allow_set_relation_comp,
        }
        self.max_nesting = max_nesting
        self.max_chars = max_chars
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    # -- public API ------------------------------------------------------------------------------

    def equivalent(self, gold: str, pred: str, *, key: str | None = None) -> bool:
        """Whether ``pred`` equals ``gold``; failures and timeouts are False (and logged)."""
        return self.compare(gold, pred, key=key).equal

    def compare(self, gold: str, pred: str, *, key: str | None = None, **options) -> Verdict:
        """Full verdict for one comparison. ``options`` override this grader's math-verify settings
        for this call (``targets``, ``float_rounding``, ``strict``, ``allow_set_relation_comp``)."""
        start = time.perf_counter()
        if gold is None or pred is None:
            return Verdict(False, "different", "missing answer")
        gold, pred = str(gold), str(pred)
        opts = {**self.options, **options}
        if "targets" in options:
            opts["targets"] = tuple(options["targets"])
        fast = self._fast(gold, pred)
        if fast is not None:
            return attrs.evolve(fast, seconds=time.perf_counter() - start)
        guard = self._guard(gold) or self._guard(pred)
        if guard:
            self._log(key, "rejected", guard)
            return Verdict(False, "error", guard, time.perf_counter() - start)
        cache_key = (gold, pred, tuple(sorted(opts.items())))
        with self._cache_lock:
            cached = self._cache.get(cache_key)
        if cached is not None:
            return attrs.evolve(cached, seconds=time.perf_counter() - start)
        wrap = "latex" in opts["targets"]
        args = (self._prepare(gold, wrap), self._prepare(pred, wrap), opts)
        status, value = get_pool().request("verify", args, self.timeout)
        elapsed = time.perf_counter() - start
        if status == "ok":
            verdict = Verdict(bool(value), "equal" if value else "different", "", elapsed)
        elif status == "timeout":
            verdict = Verdict(False, "timeout", f"no verdict within {self.timeout:g} s", elapsed)
            self._log(key, "timed out", verdict.detail, gold, pred)
        else:
            verdict = Verdict(False, "error", str(value), elapsed)
            self._log(key, "failed", str(value), gold, pred)
        with self._cache_lock:
            self._cache[cache_key] = verdict
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return verdict

    def parse(self, answer: str, **options) -> list[tuple[str, str]] | None:
        """What math-verify reads from ``answer``: ``[(sympy type or "str", text)]``; None on timeout/failure."""
        opts = {**self.options, **options}
        if self._guard(answer):
            return None
        status, value = get_pool().request(
            "describe", (self._prepare(answer, "latex" in opts["targets"]), opts), self.timeout
        )
        return value if status == "ok" else None

    def parses(self, answer: str) -> bool:
        """Whether math-verify turns ``answer`` into a math object (not just a string fallback)."""
        parsed = self.parse(answer)
        return bool(parsed) and parsed[0][0] != "str"

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _prepare(answer: str, wrap: bool) -> str:
        s = answer.strip()
        if wrap and not has_math_delimiters(s):
            return "\\boxed{" + s + "}"
        return s

    @staticmethod
    def _fast(gold: str, pred: str) -> Verdict | None:
        if has_math_delimiters(gold) or has_math_delimiters(pred):
            return None  # texts: math-verify extracts the answers
        g, p = normalize(gold), normalize(pred)
        if g and g == p:
            return Verdict(True, "equal", "same string")
        gi, pi = as_int(gold), as_int(pred)
        if gi is not None and pi is not None:
            return Verdict(gi == pi, "equal" if gi == pi else "different", "integers")
        return None

    def _guard(self, text: str) -> str:
        if len(text) > self.max_chars:
            return f"input longer than {self.max_chars} characters"
        depth = max_nesting(text)
        if depth > self.max_nesting:
            return f"input nested {depth} brackets deep (limit {self.max_nesting})"
        return ""

    @staticmethod
    def _log(key, what, detail, gold=None, pred=None) -> None:
        shown = ""
        if gold is not None:
            shown = f" (gold {_short(gold)!r}, predicted {_short(pred)!r})"
        logger.warning("grading %s %s: %s%s", key if key is not None else "(no id)", what, detail, shown)


def _short(text: str, n: int = 80) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 3] + "..."


__all__ = ["Grader", "Verdict", "WorkerPool", "get_pool", "has_math_delimiters", "normalize", "shutdown"]
