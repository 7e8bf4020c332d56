"""Run the bag labellers as a pool of Ray actors: embedded local Ray or an existing cluster.

Each actor loads the model once and labels one bag after another; the driver hands a bag to
whichever actor is idle. An actor whose process dies is restarted by Ray and its bag handed
to another (``retries`` more times at most). Progress comes through a small board actor the
workers write to and the driver polls. Ray is imported here only, and only when called.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sam2_ros.bags.replay import ReplayOptions
from sam2_ros.fleet.bag_list import BagJob
from sam2_ros.fleet.labeller import BagLabeller, completed
from sam2_ros.settings import TrackerSettings

NEEDS_RAY = "sam2_ros label needs Ray: pip install 'sam2_ros[fleet]' (or ray==2.60.0)"
POLL_S = 0.5
#: (event, data): "ready" (worker records), "frames" (worker -> (bag, done, total)),
#: "bag" (a finished bag's record). A callback may raise KeyboardInterrupt to stop the run.
EventCallback = Callable[[str, object], None]


class FleetError(RuntimeError):
    """The run cannot start or go on (no Ray, no workers, model fails to load)."""


@dataclass
class PoolConfig:
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    address: str | None = None  # None: an embedded local Ray for this run
    retries: int = 1  # further tries of a bag whose worker died
    start_timeout_s: float = 600.0  # for the workers to be placed and load the model


@dataclass
class FleetResult:
    records: list[dict]  # one per bag, in the order given
    workers: list[dict] = field(default_factory=list)
    interrupted: bool = False
    wall_s: float = 0.0
    workers_start_s: float = 0.0  # from placing the actors to all of them ready


def require_ray():
    """The ray module, or FleetError with one line on how to install it."""
    try:
        import ray
    except ImportError:
        raise FleetError(NEEDS_RAY) from None
    return ray


@contextmanager
def ray_session(pool: PoolConfig) -> Iterator[object]:
    """Ray for one run: the one already initialised in this process, a cluster at
    ``pool.address``, or a local instance started now and stopped at the end."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if pool.address:
        ray.init(address=pool.address, **quiet)
    else:
        ray.init(address="local", num_cpus=max(1, math.ceil(pool.workers * pool.cpus_per_worker)),
                 include_dashboard=False, object_store_memory=128 * 1024**2, **quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


class ProgressBoard:
    """Where each worker is: worker -> (bag, frames done, frames in it)."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[str, int, int]] = {}

    def update(self, worker: str, bag: str, done: int, total: int) -> None:
        self.state[worker] = (bag, done, total)

    def snapshot(self) -> dict[str, tuple[str, int, int]]:
        return dict(self.state)


class RayLabeller(BagLabeller):
    """A BagLabeller that reports its frames to the progress board."""

    def label_reporting(self, job: BagJob, board) -> dict:
        def progress(done: int, total: int) -> None:
            board.update.remote(self.worker, job.name, done, total)

        return self.label(job, progress)


def label_bags(jobs: list[BagJob], out_root: Path, settings: TrackerSettings,
               options: ReplayOptions, pool: PoolConfig,
               on_event: EventCallback | None = None) -> FleetResult:
    """Label every bag not finished before; Ctrl-C stops with what is done.

    Args:
        jobs: the bags, each with its prompts file (if any).
        out_root: each bag's outputs go to ``out_root/<bag name>/``.
        settings: the tracker's parameters, the same for every worker.
        options: the replay options of every bag.
        pool: Ray's address (None: embedded), workers and their CPUs and GPUs.
        on_event: called with each bag's record and each worker's progress.
    Returns:
        One record per bag: done, skipped (finished earlier), failed (with its reason) or
        interrupted.
    Raises:
        FleetError: Ray is missing, or the workers cannot start or load the model.
    """
    started = time.perf_counter()
    out_root.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    todo = []
    for job in jobs:
        earlier = completed(out_root, job.name)
        if earlier is not None:
            records[job.name] = {**earlier, "status": "skipped", "reason": "done earlier"}
            (on_event or _ignore)("bag", records[job.name])
        else:
            todo.append(job)
    result = FleetResult([])
    if todo:
        with ray_session(pool) as ray:
            run = _PoolRun(ray, pool, settings, options, out_root, on_event or _ignore)
            try:
                placed = time.perf_counter()
                result.workers = run.start(min(pool.workers, len(todo)))
                result.workers_start_s = time.perf_counter() - placed
                run.label(todo, records)
            except KeyboardInterrupt:
                result.interrupted = True
            finally:
                run.stop()
    for job in jobs:
        records.setdefault(job.name, {"name": job.name, "bag": str(job.bag),
                                      "status": "interrupted", "reason": "stopped by Ctrl-C"})
    result.records = [records[job.name] for job in jobs]
    result.wall_s = time.perf_counter() - started
    return result


def _ignore(event: str, data: object) -> None:
    pass


class _PoolRun:
    """The actors of one run and the loop handing them bags."""

    def __init__(self, ray, pool: PoolConfig, settings: TrackerSettings,
                 options: ReplayOptions, out_root: Path, on_event: EventCallback) -> None:
        self.ray, self.pool, self.on_event = ray, pool, on_event
        self.args = (settings, options, out_root)
        self.actors: list = []
        self.workers: list[dict] = []  # ready records, restarted workers too
        self.board = None

    def start(self, count: int) -> list[dict]:
        """Place ``count`` actors, each loading the model; their ready records."""
        ray, pool = self.ray, self.pool
        if not pool.address and pool.gpus_per_worker > ray.cluster_resources().get("GPU", 0):
            raise FleetError(f"--gpus-per-worker {pool.gpus_per_worker}: this machine's Ray "
                             "sees no GPU")
        self.board = ray.remote(num_cpus=0)(ProgressBoard).remote()
        actor = ray.remote(RayLabeller).options(
            num_cpus=pool.cpus_per_worker, num_gpus=pool.gpus_per_worker,
            max_restarts=max(1, pool.retries) * count, max_task_retries=0)
        self.actors = [actor.remote(*self.args) for _ in range(count)]
        try:
            ready = ray.get([a.ready.remote() for a in self.actors],
                            timeout=pool.start_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise FleetError(
                f"{count} workers ({pool.cpus_per_worker} CPU, {pool.gpus_per_worker} GPU "
                f"each) not ready within {pool.start_timeout_s:.0f} s: does Ray have room "
                "for them?") from None
        errors = {r["error"] for r in ready if r["error"]}
        if errors:
            raise FleetError(f"a worker could not load the model: {'; '.join(sorted(errors))}")
        self.on_event("ready", ready)
        self.workers += ready
        return self.workers

    def label(self, todo: list[BagJob], records: dict[str, dict]) -> None:
        """Hand out bags until all are done; a bag whose worker died goes to another, once
        that one answers again (Ray restarts dead actors: a probe says when it is back)."""
        ray = self.ray
        self.pending = deque((job, -1) for job in todo)  # (job, slot it died on)
        self.attempts = {job.name: 0 for job in todo}
        self.idle = list(range(len(self.actors)))
        self.running: dict = {}  # task -> (job, slot)
        self.probing: dict = {}  # ready() probe -> slot of a restarting actor
        while self.pending or self.running:
            self._hand_out()
            if not self.running and not self.probing:
                for job, _ in self.pending:  # every worker is gone for good
                    records[job.name] = {"name": job.name, "bag": str(job.bag),
                                         "status": "failed", "reason": "no worker left"}
                return
            waiting = [*self.running, *self.probing]
            ready, _ = ray.wait(waiting, num_returns=1, timeout=POLL_S)
            self.on_event("frames", ray.get(self.board.snapshot.remote()))
            for ref in ready:
                if ref in self.probing:
                    self._probed(ref)
                    continue
                job, slot = self.running.pop(ref)
                record = self._outcome(ref, job, self.attempts[job.name])
                if record is None:
                    self.pending.appendleft((job, slot))
                    self.probing[self.actors[slot].ready.remote()] = slot
                    continue
                self.idle.append(slot)
                records[job.name] = record
                self.on_event("bag", record)

    def _hand_out(self) -> None:
        """Each idle worker gets the next bag (a retried bag not the worker it died on)."""
        while self.pending and self.idle:
            job, avoid = self.pending.popleft()
            slot = next((i for i in self.idle if i != avoid), self.idle[0])
            self.idle.remove(slot)
            self.attempts[job.name] += 1
            self.running[self.actors[slot].label_reporting.remote(job, self.board)] = (job, slot)

    def _probed(self, ref) -> None:
        """A restarting worker answered: idle again, or probed again a little later."""
        ray = self.ray
        slot = self.probing.pop(ref)
        try:
            answer = ray.get(ref)
        except ray.exceptions.ActorDiedError:
            return  # out of restarts: the pool goes on without it
        except ray.exceptions.RayActorError:
            time.sleep(POLL_S / 5)
            self.probing[self.actors[slot].ready.remote()] = slot
            return
        if not answer["error"]:
            self.workers.append(answer)
            self.idle.append(slot)

    def _outcome(self, ref, job: BagJob, attempt: int) -> dict | None:
        """The bag's record; None to try it again (its worker died)."""
        ray = self.ray
        try:
            record = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            if attempt <= self.pool.retries:
                logging.getLogger(__name__).warning(
                    "worker died labelling %s; trying it again on another", job.name)
                return None
            record = {"name": job.name, "bag": str(job.bag), "status": "failed",
                      "reason": f"its worker died {attempt} times: {type(exc).__name__}"}
        except ray.exceptions.RayError as exc:
            record = {"name": job.name, "bag": str(job.bag), "status": "failed",
                      "reason": " ".join(str(exc).split())[-300:]}
        record["attempts"] = attempt
        return record

    def stop(self) -> None:
        """Kill this run's actors (their unfinished bags stay unmarked, redone next time)."""
        for actor in [*self.actors, self.board]:
            if actor is not None:
                self.ray.kill(actor, no_restart=True)
