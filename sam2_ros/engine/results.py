"""Plain result records of the streaming tracker (numpy only, so any caller can use them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class StageTiming:
    """Seconds spent per stage on one call; for diagnostics and the benchmarks."""

    encoder: float = 0.0
    memory_attention: float = 0.0
    decoder: float = 0.0
    memory_encoder: float = 0.0
    total: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "encoder": self.encoder,
            "memory_attention": self.memory_attention,
            "decoder": self.decoder,
            "memory_encoder": self.memory_encoder,
            "total": self.total,
        }


@dataclass
class ObjectResult:
    """One object on one frame, at the frame's full resolution."""

    object_id: int
    label: str
    visible: bool  # SAM 2's occlusion head: object score logit > 0
    presence: float  # sigmoid of the object score logit
    score: float  # SAM 2's predicted IoU of the mask
    mask: np.ndarray  # HxW bool (logits > mask_threshold)
    logits: np.ndarray  # HxW float32 mask logits
    bbox: tuple[int, int, int, int]  # x, y, width, height of the mask (zeros when empty)
    centroid: tuple[float, float]  # x, y in pixels
    area: int
    frames_since_prompt: int
    tracked: bool = True  # False while the object waits for a prompt after a reset


@dataclass
class FrameResult:
    """Everything the tracker says about one frame."""

    frame_index: int
    stamp: int  # nanoseconds, as given to track()
    image_hw: tuple[int, int]
    objects: list[ObjectResult] = field(default_factory=list)
    timing: StageTiming = field(default_factory=StageTiming)

    def by_id(self) -> dict[int, ObjectResult]:
        return {o.object_id: o for o in self.objects}


@dataclass
class PromptResult:
    """What a prompt produced on the frame it was applied to."""

    object_id: int
    stamp: int
    frame_index: int
    result: ObjectResult
    retracked_frames: int  # frames re-tracked forward to the newest one
    timing: StageTiming = field(default_factory=StageTiming)

    @property
    def score(self) -> float:
        return self.result.score

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return self.result.bbox
