"""Depth and camera_info paired with camera frames, without ever holding a frame back.

Why not message_filters: an approximate-time synchroniser releases an image only with a
depth image and a camera_info; when depth stops, lags or is mis-remapped, no frame is
tracked at all. Here every camera frame is tracked; recent depth and camera_info messages
are kept, and a frame gets the pair whose stamp matches its own (within ``slop``) when one
is at hand, else no 3D positions and a state that says why. The state also says why a
paired depth image gave no position (nothing valid in it, an uncalibrated camera_info, no
valid depth inside the objects' masks), for /diagnostics.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from sam2_ros.engine.results import ObjectResult
from sam2_ros.imaging.codec import depth_msg_to_metres
from sam2_ros.messages import stamp_to_ns
from sam2_ros.ros.outputs import Position, depth_positions


class DepthPairing:
    """The last few depth and camera_info messages, matched to camera frames by stamp."""

    def __init__(self, slop_s: float, keep: int = 10) -> None:
        self.slop_ns = int(slop_s * 1e9)
        self._lock = threading.Lock()
        self._depth: deque[Any] = deque(maxlen=keep)
        self._info: deque[Any] = deque(maxlen=keep)
        self.state = "no depth received yet"

    def add_depth(self, msg: Any) -> None:
        with self._lock:
            self._depth.append(msg)

    def add_info(self, msg: Any) -> None:
        with self._lock:
            self._info.append(msg)

    def _closest(self, messages: deque, stamp: int) -> tuple[Any, int] | tuple[None, None]:
        if not messages:
            return None, None
        best = min(messages, key=lambda m: abs(stamp_to_ns(m.header.stamp) - stamp))
        return best, abs(stamp_to_ns(best.header.stamp) - stamp)

    def match(self, image_header: Any) -> tuple[Any, Any, str]:
        """(depth, camera_info, "ok") for this frame, or (None, None, why not)."""
        stamp = stamp_to_ns(image_header.stamp)
        with self._lock:
            depth, depth_gap = self._closest(self._depth, stamp)
            info, info_gap = self._closest(self._info, stamp)
        if depth is None:
            state = "no depth received"
        elif info is None:
            state = "no camera_info received"
        elif depth_gap > self.slop_ns:
            state = f"stale: nearest depth {depth_gap / 1e6:.0f} ms from the image (slop " \
                    f"{self.slop_ns / 1e6:.0f} ms)"
        elif info_gap > self.slop_ns:
            state = f"stale: nearest camera_info {info_gap / 1e6:.0f} ms from the image"
        elif depth.header.frame_id != image_header.frame_id:
            state = (f"depth frame_id '{depth.header.frame_id}' differs from the image's "
                     f"'{image_header.frame_id}' (depth must be registered to the colour image)")
        else:
            self.state = "ok"
            return depth, info, "ok"
        self.state = state
        return None, None, state

    def positions(
        self, image_header: Any, objects: Sequence[ObjectResult], depth_scale: float
    ) -> dict[int, Position]:
        """3D positions of this frame's visible objects from its paired depth, if any.

        Raises ImageDecodeError / ValueError for a depth image or camera_info that gives no
        position at all (the caller warns); ``state`` says why in each case."""
        depth_msg, info_msg, _state = self.match(image_header)
        if depth_msg is None:
            return {}
        try:
            depth = depth_msg_to_metres(depth_msg, depth_scale)
            positions = depth_positions(
                objects, depth, info_msg.k, (info_msg.width, info_msg.height))
        except ValueError as exc:  # ImageDecodeError and CameraInfoError are ValueErrors
            self.state = f"no positions: {exc}"
            raise
        missing = [r.object_id for r in objects
                   if r.visible and r.area > 0 and r.object_id not in positions]
        if missing:
            self.state = (f"no position for visible objects {missing}: too few valid depth "
                          "pixels inside their masks")
        return positions
