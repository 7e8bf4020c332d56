"""The camera frames the node received recently, tracked or not, by stamp.

The node tracks only some camera frames (newest frame wins), but a planner clicks on the
frames it saw. Keeping recent messages (references, no copies) lets a prompt name any of
them: a tracked one is prompted directly, a dropped one is decoded and prompted on demand.

Bounded twice: by a count, and by the bytes of the messages' image data (the
``received_frames_mb`` parameter), since a count alone holds gigabytes of large images
(2,560 1080p rgb8 messages are 16 GB). The newest message is always kept.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any


def message_bytes(msg: Any) -> int:
    """The bytes a kept message holds: its image data (Image and CompressedImage alike)."""
    data = getattr(msg, "data", None)
    return len(data) if data is not None else 0


class ReceivedFrames:
    """Recently received camera messages by stamp, at most ``capacity`` of them and at most
    ``max_bytes`` of image data (but always the newest); waits on news."""

    def __init__(self, capacity: int, max_bytes: int | None = None) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._frames: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._cond = threading.Condition()

    @property
    def bytes(self) -> int:
        """Image bytes held now."""
        with self._cond:
            return self._bytes

    def __len__(self) -> int:
        with self._cond:
            return len(self._frames)

    def _over(self) -> bool:
        if len(self._frames) > self.capacity:
            return True
        return self.max_bytes is not None and self._bytes > self.max_bytes \
            and len(self._frames) > 1

    def _drop(self, stamp: int) -> None:
        _msg, size = self._frames.pop(stamp)
        self._bytes -= size

    def add(self, stamp: int, msg: Any) -> None:
        with self._cond:
            if stamp in self._frames:
                self._drop(stamp)
            size = message_bytes(msg)
            self._frames[stamp] = (msg, size)
            self._bytes += size
            while self._over():
                self._drop(next(iter(self._frames)))
            self._cond.notify_all()

    def newest(self) -> int | None:
        with self._cond:
            return next(reversed(self._frames)) if self._frames else None

    def get(self, stamp: int) -> Any | None:
        with self._cond:
            kept = self._frames.get(stamp)
            return kept[0] if kept is not None else None

    def forget_before(self, stamp: int) -> None:
        """Drop frames older than ``stamp`` (no longer promptable)."""
        with self._cond:
            for old in [s for s in self._frames if s < stamp]:
                self._drop(old)

    def clear(self) -> None:
        with self._cond:
            self._frames.clear()
            self._bytes = 0

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
