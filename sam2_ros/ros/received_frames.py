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
    ``max_bytes`` of image data (but always the newest); waits on news.

    Everything a waiting prompt needs to know is kept here (the frames received, the
    newest stamp tracked), so a wait never asks the tracker, whose lock is held while a
    frame is tracked: the camera thread, which adds frames under the same condition,
    never waits for a frame in progress.
    """

    def __init__(self, capacity: int, max_bytes: int | None = None) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._frames: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._newest: int | None = None
        self._tracked: int | None = None
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
            if self._newest is None or stamp > self._newest:
                self._newest = stamp
            self._cond.notify_all()

    def newest(self) -> int | None:
        """The latest stamp received (frames may arrive out of order)."""
        with self._cond:
            return self._newest

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
        """A new stream (reset, time jump, stop): nothing received or tracked yet."""
        with self._cond:
            self._frames.clear()
            self._bytes = 0
            self._newest = self._tracked = None
            self._cond.notify_all()

    def tracked(self, stamp: int | None) -> None:
        """The tracker's newest frame after a processed frame; wakes the waiters."""
        with self._cond:
            self._tracked = stamp
            self._cond.notify_all()

    def wait_received(self, stamp: int, timeout: float) -> Any | None:
        """The message of ``stamp``, waiting (at most ``timeout``) while no frame at or
        after it has arrived; None when it was not received."""
        with self._cond:
            self._wait(
                lambda: stamp in self._frames or (self._newest or -1) > stamp, timeout
            )
            kept = self._frames.get(stamp)
            return kept[0] if kept is not None else None

    def wait_tracked(self, stamp: int, timeout: float) -> bool:
        """Wait (at most ``timeout``) until the tracker has processed a frame at or after
        ``stamp``; returns whether it has."""
        with self._cond:
            return self._wait(lambda: (self._tracked or -1) >= stamp, timeout)

    def _wait(self, predicate, timeout: float) -> bool:
        """Called with the condition held; ``predicate`` reads only this object's state."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._cond.wait(left)
        return True
