"""The camera frames the node received recently, tracked or not, by stamp.

The node tracks only some camera frames (newest frame wins), but a planner clicks on the
frames it saw. Keeping recent messages (references, no copies) lets a prompt name any of
them: a tracked one is prompted directly, a dropped one is decoded and prompted on demand.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any


class ReceivedFrames:
    """Recently received camera messages by stamp, at most ``capacity``; waits on news."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._frames: OrderedDict[int, Any] = OrderedDict()
        self._cond = threading.Condition()

    def add(self, stamp: int, msg: Any) -> None:
        with self._cond:
            self._frames[stamp] = msg
            while len(self._frames) > self.capacity:
                self._frames.popitem(last=False)
            self._cond.notify_all()

    def newest(self) -> int | None:
        with self._cond:
            return next(reversed(self._frames)) if self._frames else None

    def get(self, stamp: int) -> Any | None:
        with self._cond:
            return self._frames.get(stamp)

    def forget_before(self, stamp: int) -> None:
        """Drop frames older than ``stamp`` (no longer promptable)."""
        with self._cond:
            for old in [s for s in self._frames if s < stamp]:
                del self._frames[old]

    def clear(self) -> None:
        with self._cond:
            self._frames.clear()

    def notify(self) -> None:
        """Wake waiters (called after each processed frame)."""
        with self._cond:
            self._cond.notify_all()

    def wait_until(self, predicate, timeout: float) -> bool:
        """Wait until ``predicate()`` holds (checked after each processed frame)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True
