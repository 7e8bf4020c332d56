"""Newest-frame-wins hand-over between the subscription callbacks and the model.

SAM 2 is usually slower than the camera. A queue would make the output lag further and
further behind; instead there is one slot: a frame that arrives while the model is busy
replaces the one waiting there (which is counted as dropped), and the worker thread always
takes the newest frame when it becomes free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameSlot(Generic[T]):
    """A single slot plus one worker thread that calls ``process(item)`` for each item."""

    def __init__(
        self,
        process: Callable[[T], None],
        on_error: Callable[[Exception], None] | None = None,
        name: str = "frame-worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._stopped = False
        self._busy = False
        self.received = 0
        self.dropped = 0
        self.processed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: T) -> bool:
        """Offer a frame; returns True when it replaced a waiting one (which is dropped)."""
        with self._cond:
            if self._stopped:
                return False
            replaced = self._has_item
            self.received += 1
            if replaced:
                self.dropped += 1
            self._item = item
            self._has_item = True
            self._cond.notify_all()  # notify() could wake a wait_idle() caller, not the worker
            return replaced

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy

    def counts(self) -> tuple[int, int, int]:
        """(received, processed, dropped) so far."""
        with self._cond:
            return self.received, self.processed, self.dropped

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is waiting or running (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._has_item or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop taking frames; the one being processed finishes (within ``timeout``), a
        waiting one is dropped. Returns whether the worker ended in time."""
        with self._cond:
            self._stopped = True
            if self._has_item:
                self._has_item = False
                self._item = None
                self.dropped += 1
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._has_item and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                item, self._item, self._has_item = self._item, None, False
                self._busy = True
            try:
                self._process(item)  # type: ignore[arg-type]
            except Exception as exc:  # the worker must survive any frame
                if self._on_error is not None:
                    self._on_error(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self.processed += 1
                    self._cond.notify_all()
