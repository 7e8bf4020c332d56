"""Newest-frame-wins hand-over between the subscription callbacks and the model.

SAM 2 is usually slower than the camera. A queue would make the output lag further and
further behind; instead each camera has one slot: a frame that arrives while the model is
busy replaces the one waiting there (which is counted as dropped). One worker thread, when
free, takes the newest waiting frame of every camera that has one, so a camera whose
frames stop, or come ten times faster, changes nothing for the others, and under overload
every camera with frames gets one processed per cycle (a fair share).
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
    """A slot per key (camera) plus one worker thread that calls
    ``process([(key, item), ...])`` with the waiting item of each key, in key order of
    first arrival."""

    def __init__(
        self,
        process: Callable[[list[tuple[Hashable, T]]], None],
        on_error: Callable[[Exception], None] | None = None,
        name: str = "frame-worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._cond = threading.Condition()
        self._waiting: dict[Hashable, T] = {}
        self._counts: dict[Hashable, _Counts] = {}
        self._stopped = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

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
            self._cond.notify_all()  # notify() could wake a wait_idle() caller, not the worker
            return replaced

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy

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
            while self._waiting or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop taking frames; the ones being processed finish (within ``timeout``), the
        waiting ones are dropped. Returns whether the worker ended in time."""
        with self._cond:
            self._stopped = True
            for key in self._waiting:
                self._counts[key].dropped += 1
            self._waiting.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                batch, self._waiting = list(self._waiting.items()), {}
                self._busy = True
            try:
                self._process(batch)
            except Exception as exc:  # the worker must survive any frame
                if self._on_error is not None:
                    self._on_error(exc)
            finally:
                with self._cond:
                    self._busy = False
                    for key, _ in batch:
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
