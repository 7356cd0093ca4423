"""Requests in, search rounds out: the batching queue behind ``openr serve`` (no HTTP here).

Requests wait in a bounded queue. One worker takes the oldest, gathers whatever else arrives
within ``window`` seconds (up to ``max_batch``), groups them by (searcher, budget) and runs one
``search`` call per group in a single worker thread: searchers batch across problems, so 64
concurrent requests cost about one search round, not 64. A problem's id is a hash of its
question, and every searcher seeds its samples per node from that id, so an answer does not
depend on what it was batched with.
"""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor

import attrs

from openr_core import Problem, SearchResult


class QueueFull(Exception):
    """The bounded queue is full (HTTP 429)."""


class BadRequest(ValueError):
    """A request the engine cannot run (HTTP 400); the message names the field."""


@attrs.frozen
class Job:
    question: str
    searcher: str
    n: int | None
    max_tokens: int | None


class SearchEngine:
    """Owns the task, generator, reward model and searchers of a search config."""

    def __init__(self, task, generator, reward_model, searchers: dict[str, object], *, window: float = 0.02,
                 max_batch: int = 64, queue_size: int = 256, max_n: int = 64):
        self.task, self.generator, self.reward_model = task, generator, reward_model
        self.specs = searchers  # label -> ComponentSpec, the first is the default
        self.window, self.max_batch, self.max_n = window, max_batch, max_n
        self.queue: asyncio.Queue = asyncio.Queue(queue_size)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="openr-search")
        self._worker: asyncio.Task | None = None
        self.rounds = 0  # search calls made (one per (searcher, budget) group of a gathered batch)
        self.answered = 0  # requests answered

    @property
    def default(self) -> str:
        return next(iter(self.specs))

    def resolve(self, name: str | None) -> str:
        """A searcher label (``beam@16``) or type (``beam``: its first label); None: the default."""
        if name is None or name in self.specs:
            return name or self.default
        for label, spec in self.specs.items():
            if spec.type == name:
                return label
        raise BadRequest(f"searcher: unknown '{name}'; available: {', '.join(self.specs)}")

    def job(self, question, searcher: str | None = None, n=None, max_tokens=None) -> Job:
        if not isinstance(question, str) or not question.strip():
            raise BadRequest("messages/prompt: the question is empty")
        label = self.resolve(searcher)
        for field, value, top in (("n", n, self.max_n), ("max_tokens", max_tokens, None)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1
                                      or (top is not None and value > top)):
                raise BadRequest(f"{field}: must be an integer in 1..{top or 'inf'}, got {value!r}")
        config = self.specs[label].config
        if n is not None and not hasattr(config, "n"):
            raise BadRequest(f"n: searcher '{label}' has no budget n")
        if max_tokens is not None and max_tokens > getattr(config, "max_tokens", 0):
            raise BadRequest(f"max_tokens: searcher '{label}' allows at most {getattr(config, 'max_tokens', 0)}, got {max_tokens}")
        return Job(question, label, n, max_tokens)

    def searcher(self, job: Job):
        """The searcher of ``job``'s label with its budget (cheap: a searcher holds only its config)."""
        spec = self.specs[job.searcher]
        fields = {k: v for k, v in (("n", job.n), ("max_tokens", job.max_tokens)) if v is not None}
        try:
            config = attrs.evolve(spec.config, **fields)
        except (ValueError, TypeError) as e:  # e.g. beam width > n
            raise BadRequest(f"{job.searcher}: {e}") from None
        return spec.entry.load()(config)

    async def submit(self, job: Job) -> tuple[SearchResult, int]:
        """Queue ``job``; its result and how many requests shared its search call. QueueFull at
        once when the queue is full."""
        self.searcher(job)  # a budget the searcher rejects fails here, before queueing
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((job, future))
        except asyncio.QueueFull:
            raise QueueFull(f"the queue is full ({self.queue.maxsize} requests waiting); retry later") from None
        return await future

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish every queued request, then stop the worker and release the models."""
        await self.queue.join()
        if self._worker:
            self._worker.cancel()
        self.executor.shutdown(wait=True)
        for component in (self.reward_model, self.generator, self.task):
            if component is not None:
                component.close()

    async def _gather(self) -> list:
        batch = [await self.queue.get()]
        deadline = asyncio.get_running_loop().time() + self.window
        while len(batch) < self.max_batch:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            groups: dict[tuple, list] = {}
            for job, future in batch:
                groups.setdefault((job.searcher, job.n, job.max_tokens), []).append((job, future))
            for items in groups.values():
                problems = [problem(job.question) for job, _ in items]
                searcher = self.searcher(items[0][0])
                try:
                    results = await loop.run_in_executor(self.executor, lambda: searcher.search(
                        problems, task=self.task, generator=self.generator, reward_model=self.reward_model))
                    self.rounds += 1
                except Exception as e:  # noqa: BLE001 - every waiting request gets the error, the server lives on
                    results = [e] * len(items)
                for (_, future), result in zip(items, results):
                    if future.done():  # the client went away
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result((result, len(items)))
                        self.answered += 1
            for _ in batch:
                self.queue.task_done()


def problem(question: str) -> Problem:
    return Problem("q-" + hashlib.sha256(question.encode()).hexdigest()[:16], question)
