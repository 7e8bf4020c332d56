"""The ring of recent frames a prompt may name: image features kept per frame, by stamp.

Why a ring: a planner clicks on a frame it saw a moment ago, while newer frames are being
tracked. Keeping the last ``prompt_history`` frames' image features (and nothing older)
lets such a prompt be applied where it was meant, with memory that stays bounded.
"""

from __future__ import annotations

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
