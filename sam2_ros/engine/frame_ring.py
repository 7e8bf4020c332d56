"""The ring of recent frames a prompt may name: image features kept per frame, by stamp.

Why a ring: a planner clicks on a frame it saw a moment ago, while newer frames are being
tracked. Keeping the last ``prompt_history`` frames' image features (and nothing older)
lets such a prompt be applied where it was meant, with memory that stays bounded. A frame
the tracker dropped (the model was busy) joins the ring, in stamp order, when a prompt names
it (``insert``), so it is tracked and corrected like any other frame.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from sam2_ros.errors import NoFrameError, StampError


@dataclass
class RingFrame:
    """Image features of one recent frame, kept so prompts can name it."""

    index: int
    stamp: int
    image_hw: tuple[int, int]
    backbone_fpn: list[torch.Tensor]


class FrameRing:
    """The newest ``capacity`` frames, oldest first; lookup by stamp with clear errors."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"prompt_history must be >= 1, got {capacity}")
        self._frames: deque[RingFrame] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[RingFrame]:
        return iter(list(self._frames))

    def __bool__(self) -> bool:
        return bool(self._frames)

    def append(self, frame: RingFrame) -> None:
        """Add the newest frame; the oldest drops out when full."""
        self._frames.append(frame)

    def check_insert(self, stamp: int) -> None:
        """Raise a StampError unless a frame with this stamp can be inserted: it must lie
        after the oldest kept frame and before the newest, and not be kept already."""
        if not self._frames:
            raise StampError("no frame has been tracked yet: a prompt needs a tracked frame")
        oldest, newest = self._frames[0].stamp, self._frames[-1].stamp
        if stamp < oldest:
            raise StampError(
                f"stamp {stamp} is older than the oldest kept frame ({oldest}); raise "
                "prompt_history to prompt further back"
            )
        if stamp > newest:
            raise StampError(f"stamp {stamp} is newer than the newest tracked frame ({newest})")
        if stamp in self.stamps():
            raise StampError(f"a frame with stamp {stamp} is kept already")

    def insert(self, stamp: int, image_hw: tuple[int, int],
               backbone_fpn: list[torch.Tensor]) -> RingFrame:
        """Place a frame that was not tracked between the kept frames, by stamp (see
        ``check_insert``). It takes the index after the frame before it; later frames move
        up one index (the caller moves the objects' memories the same way). When the ring is
        full the oldest frame drops out, as on ``append``."""
        self.check_insert(stamp)
        position = bisect_left(self.stamps(), stamp)
        frame = RingFrame(self._frames[position - 1].index + 1, stamp, image_hw, backbone_fpn)
        for later in list(self._frames)[position:]:
            later.index += 1
        if len(self._frames) == self._frames.maxlen:
            self._frames.popleft()
            position -= 1
        self._frames.insert(position, frame)
        return frame

    def clear(self) -> None:
        self._frames.clear()

    @property
    def newest(self) -> RingFrame:
        return self._frames[-1]

    @property
    def oldest(self) -> RingFrame:
        return self._frames[0]

    def stamps(self) -> list[int]:
        return [f.stamp for f in self._frames]

    def find(self, stamp: int | None) -> RingFrame:
        """The frame with this stamp (None or 0: the newest), or a StampError saying why not."""
        if not self._frames:
            raise NoFrameError("no frame has been tracked yet: a prompt needs a frame")
        if stamp is None or stamp == 0:
            return self._frames[-1]
        for frame in self._frames:
            if frame.stamp == stamp:
                return frame
        oldest, newest = self._frames[0].stamp, self._frames[-1].stamp
        if stamp < oldest:
            raise StampError(
                f"stamp {stamp} is older than the {len(self._frames)} frames kept for prompts "
                f"(oldest {oldest}); raise prompt_history to prompt further back"
            )
        if stamp > newest:
            raise StampError(f"stamp {stamp} is newer than the newest frame ({newest})")
        raise StampError(f"no kept frame has stamp {stamp} (kept: {oldest} .. {newest})")
