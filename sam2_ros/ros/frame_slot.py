"""Newest-frame-wins hand-over between the subscription callbacks and the model.

SAM 2 is usually slower than the camera. A queue would make the output lag further and
further behind; instead each camera has one slot: a frame that arrives while the model is
busy replaces the one waiting there (which is counted as dropped). A worker thread, when
free, takes the newest waiting frame of each camera that has one and that no other worker
is tracking, the cameras served longest ago first, so a camera whose frames stop, or come
ten times faster, changes nothing for the others, and under overload every camera with
frames gets the same share. With one worker that is every waiting camera each cycle;
with several (a CPU's cores each tracking its own cameras) each takes its share of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Counts:
    """Frames of one camera: received, processed, dropped."""

    def __init__(self) -> None:
        self.received = self.processed = self.dropped = 0


class FrameSlots(Generic[T]):
    """A slot per key (camera) plus worker threads that call ``process([(key, item), ...])``
    with waiting items, each key on one worker at a time, in key order of arrival.

    Args:
        process: tracks a batch (on a worker thread; several at once when ``workers`` > 1).
        on_error: gets what ``process`` raised (the worker goes on).
        name: the worker threads' name.
        workers: threads; each cycle one takes at most ``cameras // workers`` keys (at
            least one), so the cameras rotate fairly among the workers.
        on_start: run once on each worker thread before its first batch (e.g. its torch
            threads).
    """

    def __init__(
        self,
        process: Callable[[list[tuple[Hashable, T]]], None],
        on_error: Callable[[Exception], None] | None = None,
        name: str = "frame-worker",
        workers: int = 1,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._on_start = on_start
        self._workers = max(1, workers)
        self._cond = threading.Condition()
        self._waiting: dict[Hashable, T] = {}
        self._counts: dict[Hashable, _Counts] = {}
        self._taken_at: dict[Hashable, int] = {}  # the cycle each key was last taken in
        self._cycles = 0
        self._running: set[Hashable] = set()
        self._stopped = False
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}" if i else name,
                                          daemon=True) for i in range(self._workers)]
        for thread in self._threads:
            thread.start()

    def put(self, key: Hashable, item: T) -> bool:
        """Offer a camera's frame; True when it replaced one waiting (which is dropped)."""
        with self._cond:
            if self._stopped:
                return False
            counts = self._counts.setdefault(key, _Counts())
            replaced = key in self._waiting
            counts.received += 1
            if replaced:
                counts.dropped += 1
            self._waiting[key] = item
            self._cond.notify_all()  # notify() could wake a wait_idle() caller, not a worker
            return replaced

    @property
    def workers(self) -> int:
        """How many worker threads take frames."""
        return self._workers

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._running)

    def counts(self, key: Hashable | None = None) -> tuple[int, int, int]:
        """(received, processed, dropped) of one camera, or of all (key None)."""
        with self._cond:
            chosen = [self._counts[key]] if key in self._counts else (
                list(self._counts.values()) if key is None else [])
            return (sum(c.received for c in chosen), sum(c.processed for c in chosen),
                    sum(c.dropped for c in chosen))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is waiting or running (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._waiting or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop taking frames; the ones being processed finish (within ``timeout``), the
        waiting ones are dropped. Returns whether the workers ended in time."""
        with self._cond:
            self._stopped = True
            for key in self._waiting:
                self._counts[key].dropped += 1
            self._waiting.clear()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        others = [t for t in self._threads if t is not threading.current_thread()]
        for thread in others:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in others)

    def _take(self) -> list[tuple[Hashable, T]]:
        """The batch a free worker takes (under the lock): the waiting keys no worker
        holds, served longest ago first, at most its share; in order of arrival."""
        free = [k for k in self._waiting if k not in self._running]
        share = max(1, len(self._counts) // self._workers)
        chosen = set(sorted(free, key=lambda k: self._taken_at.get(k, -1))[:share])
        self._cycles += 1
        batch = [(k, self._waiting.pop(k)) for k in free if k in chosen]
        for key, _ in batch:
            self._taken_at[key] = self._cycles
            self._running.add(key)
        return batch

    def _run(self) -> None:
        if self._on_start is not None:
            try:
                self._on_start()
            except Exception as exc:  # e.g. a thread setting refused: work on without it
                if self._on_error is not None:
                    self._on_error(exc)
        while True:
            with self._cond:
                while not self._stopped and not any(k not in self._running
                                                    for k in self._waiting):
                    self._cond.wait()
                if self._stopped:
                    return
                batch = self._take()
            try:
                self._process(batch)
            except Exception as exc:  # the worker must survive any frame
                if self._on_error is not None:
                    self._on_error(exc)
            finally:
                with self._cond:
                    for key, _ in batch:
                        self._running.discard(key)
                        self._counts[key].processed += 1
                    self._cond.notify_all()


class FrameSlot(FrameSlots[T]):
    """One camera's slot: ``process(item)`` for each item taken."""

    def __init__(
        self,
        process: Callable[[T], None],
        on_error: Callable[[Exception], None] | None = None,
        name: str = "frame-worker",
    ) -> None:
        super().__init__(lambda batch: process(batch[0][1]), on_error, name)

    def put(self, item: T) -> bool:  # type: ignore[override]
        """Offer a frame; returns True when it replaced a waiting one (which is dropped)."""
        return super().put("", item)
