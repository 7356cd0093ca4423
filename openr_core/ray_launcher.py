"""The ``ray`` launcher: a job's batches on Ray actors, each building its components once.

Importing this module does not import Ray (``openr validate`` reads the Config only); Ray is the
optional extra ``openr-core[ray]``. See docs/scaling.md for clusters, GPUs and failures.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from openr_core.errors import OpenrError
from openr_core.interfaces import NoConfig, RewardModel
from openr_core.launchers import Compute, Launcher, component_specs

if TYPE_CHECKING:
    from openr_core.runs import Run

HOST_PORT = re.compile(r"^(ray://)?[A-Za-z0-9.\-]+:(\d{1,5})$")


def _workers(instance, attribute, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"workers must be an integer >= 1, got {value!r}")


def _address(instance, attribute, value):
    if value is None or value == "auto":
        return
    match = HOST_PORT.match(value) if isinstance(value, str) else None
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"address must be null (Ray's default), 'auto' (the cluster on this machine), "
                         f"'HOST:PORT' or 'ray://HOST:PORT', got {value!r}")


def _resources(instance, attribute, value):
    for name, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise ValueError(f"worker_resources.{name} must be a number >= 0, got {amount!r}")


def _retries(instance, attribute, value):
    if value < -1:
        raise ValueError(f"retries must be >= 0 (or -1: without limit), got {value}")


class RewardModelServer:
    """One Ray actor holding the run's reward model, scoring for every worker (``shared_reward_model``)."""

    def __init__(self, spec: Any, cwd: str):
        if os.path.isdir(cwd):
            os.chdir(cwd)
        self.error: Exception | None = None
        self.calls = self.requests = 0
        try:
            self.reward_model = spec.build()
        except Exception as e:  # raised by ready(), as ShardWorker does
            self.error = e

    def ready(self) -> dict:
        if self.error is not None:
            raise self.error
        return {"pid": os.getpid()}

    def score(self, requests: list) -> list:
        self.calls, self.requests = self.calls + 1, self.requests + len(requests)
        return self.reward_model.score(requests)

    def served(self) -> dict:
        return {"calls": self.calls, "requests": self.requests}


class SharedRewardModel(RewardModel):
    """A worker's stand-in for the reward model: each ``score`` call is served by the shared actor."""

    def __init__(self, server: Any):
        super().__init__(NoConfig())
        self.server = server

    def score(self, requests):
        import ray

        return ray.get(self.server.score.remote(list(requests)))


class ShardWorker:
    """One Ray actor: builds the run's components once, then computes the batches it is sent."""

    def __init__(self, config: Any, output_dir: str, cwd: str, reward_model_server: Any = None):
        from openr_core.runs import Run, seed_everything

        t0 = time.perf_counter()
        if os.path.isdir(cwd):  # relative paths in the config mean what they mean to the driver
            os.chdir(cwd)
        seed_everything(getattr(config, "seed", 0))
        self.run = Run(config, output_dir)
        if reward_model_server is not None:
            self.run.provide(config.reward_model, SharedRewardModel(reward_model_server))
        self.error: Exception | None = None
        try:
            for spec in component_specs(config):
                self.run.build(spec)
        except Exception as e:  # kept for ready(), which raises it as it is (Ray would wrap it in prose)
            self.error = e
        self.build_seconds = time.perf_counter() - t0

    def ready(self) -> dict:
        if self.error is not None:
            raise self.error
        return self.stats()

    def stats(self) -> dict:
        """Its pid, the seconds its components took to build, the CPU seconds it has used so far."""
        return {"pid": os.getpid(), "build_seconds": self.build_seconds, "cpu_seconds": time.process_time()}

    def compute(self, compute: Compute, batch: list) -> Any:
        return compute(self.run, batch)


class RayLauncher(Launcher):
    """Computes batches on Ray actors (one per worker), retried on failure; see docs/scaling.md."""

    @attrs.frozen(kw_only=True)
    class Config:
        workers: int = attrs.field(default=1, validator=_workers)
        address: str | None = attrs.field(default=None, validator=_address)
        worker_resources: dict[str, float] = attrs.field(factory=lambda: {"CPU": 1.0}, validator=_resources)
        retries: int = attrs.field(default=3, validator=_retries)
        shared_reward_model: dict[str, float] | None = attrs.field(default=None, validator=attrs.validators.optional(_resources))

    def __init__(self, config: Any = None, **fields: Any):
        super().__init__(config, **fields)
        self.workers: list = []  # the ShardWorker actors that are alive
        self.actors: list = []  # every actor this launcher started (workers, shared reward model)
        self.server = None  # the shared reward model's actor
        self.initialized_ray = False
        self.startup: list[dict] = []  # per worker: pid, build_seconds, cpu_seconds, ready_seconds

    # -- workers -----------------------------------------------------------------------------

    def _connect(self):
        import ray

        if not ray.is_initialized():
            ray.init(address=self.config.address, include_dashboard=False, logging_level="warning",
                     configure_logging=True, log_to_driver=True)
            self.initialized_ray = True  # so close() disconnects (and stops a Ray it started)
        return ray

    def _start(self, run: Run) -> None:
        ray = self._connect()
        self._check_fits(ray)
        t0 = time.perf_counter()
        server = None
        if self.config.shared_reward_model is not None and getattr(run.config, "reward_model", None) is not None:
            server = ray.remote(RewardModelServer).options(**_options(self.config.shared_reward_model, self.config.retries))
            server = server.remote(run.config.reward_model, os.getcwd())
            self.actors.append(server)  # closed with the workers
            self.server = server
        worker = ray.remote(ShardWorker).options(**_options(self.config.worker_resources, self.config.retries))
        self.workers = [worker.remote(run.config, str(run.output_dir), os.getcwd(), server)
                        for _ in range(self.config.workers)]
        self.actors += self.workers
        try:
            ready = ray.get([a.ready.remote() for a in self.actors])[-len(self.workers):]
        except ray.exceptions.RayTaskError as e:  # building a component raised
            raise _original(e) from None
        except ray.exceptions.RayError as e:
            raise OpenrError(f"launcher ray: a worker failed to start: {_first_line(e)}") from e
        seconds = time.perf_counter() - t0
        self.startup = [{**r, "ready_seconds": seconds} for r in ready]
        print(f"openr: ray: {len(ready)} workers ready in {seconds:.1f} s "
              f"(pids {', '.join(str(r['pid']) for r in ready)})", file=sys.stderr)

    def worker_stats(self) -> list[dict]:
        """:meth:`ShardWorker.stats` of every live worker (benchmarks/ray_scaling.py)."""
        import ray

        return ray.get([w.stats.remote() for w in self.workers])

    def _check_fits(self, ray) -> None:
        have = ray.cluster_resources()
        shared = self.config.shared_reward_model or {}
        for name in {*self.config.worker_resources, *shared}:
            amount = self.config.worker_resources.get(name, 0)
            if amount * self.config.workers + shared.get(name, 0) > have.get(name, 0) + 1e-9:
                extra = f" + the shared reward model's {name}={shared[name]:g}" if shared.get(name) else ""
                raise OpenrError(f"launcher ray: {self.config.workers} workers x {name}={amount:g}{extra} do not fit "
                                 f"the cluster's {name}={have.get(name, 0):g}; lower launcher.workers or "
                                 f"launcher.worker_resources.{name}, or add nodes")

    # -- batches -----------------------------------------------------------------------------

    def map(self, run: Run, compute: Compute, batches: Sequence[list]) -> Iterator[Any]:
        """Hand each idle worker the next batch; yield results in batch order as they complete.

        A worker whose process dies is restarted by Ray and its batch retried there (``retries``
        times); a worker that stays dead is dropped and its batch handed to another. Batches are
        handed out at most ``4 x workers`` ahead of the oldest unwritten one, so the results held
        back for ordering stay few."""
        if not self.workers:
            self._start(run)
        import ray

        queue = deque(range(len(batches)))
        idle = list(self.workers)
        running: dict[Any, tuple[int, Any]] = {}  # object ref -> (batch index, actor)
        finished: dict[int, Any] = {}
        next_out = 0
        while next_out < len(batches):
            while idle and queue and queue[0] < next_out + 4 * self.config.workers:
                i, actor = queue.popleft(), idle.pop(0)
                running[actor.compute.remote(compute, batches[i])] = (i, actor)
            if not running:
                raise OpenrError("launcher ray: every worker died; the batches written so far are kept, "
                                 "re-run to resume")
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                i, actor = running.pop(ref)
                try:
                    finished[i] = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # the computation raised: not retried
                    raise _original(e) from None
                except ray.exceptions.RayActorError as e:  # restarts used up: drop it, retry elsewhere
                    print(f"openr: ray: a worker is gone ({_first_line(e)}); its batch goes to another",
                          file=sys.stderr)
                    self.workers.remove(actor)
                    queue.appendleft(i)
                    continue
                idle.append(actor)
            while next_out in finished:
                yield finished.pop(next_out)
                next_out += 1

    def close(self) -> None:
        if not self.actors and not self.initialized_ray:
            return
        import ray

        if self.server is not None:
            try:
                served = ray.get(self.server.served.remote(), timeout=30)
            except (ray.exceptions.RayError, TimeoutError):
                served = {"requests": "?", "calls": "?"}
            print(f"openr: ray: the shared reward model scored {served['requests']} requests in "
                  f"{served['calls']} calls", file=sys.stderr)
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors, self.workers, self.server = [], [], None
        if self.initialized_ray:
            ray.shutdown()
            self.initialized_ray = False


def _options(resources: dict[str, float], retries: int) -> dict:
    """Ray actor options: reserve ``resources``; restart a dead actor and retry its task ``retries`` times."""
    custom = dict(resources)
    return {"num_cpus": custom.pop("CPU", 0), "num_gpus": custom.pop("GPU", 0), "resources": custom,
            "max_restarts": retries, "max_task_retries": retries}


def _original(error) -> BaseException:
    """What a worker raised: our own errors as they are (one line), others with Ray's traceback."""
    return error.cause if isinstance(error.cause, OpenrError) else error.as_instanceof_cause()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
