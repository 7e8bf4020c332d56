"""Plain result records of the streaming tracker (numpy only, so any caller can use them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class HostTransfer:
    """What one call costs in host waits for the device and copies between host and device
    (counted on CPU too, where they are free, so the number a GPU would pay is visible
    anywhere). Counted where they happen (``host_sync``): every read of a device tensor by
    the host, every explicit synchronisation of stage profiling, every copy to the device
    (all non-blocking, so they wait for nothing)."""

    bytes: int = 0  # bytes brought to the host
    syncs: int = 0  # host waits for the device
    uploads: int = 0  # copies to the device
    upload_bytes: int = 0  # bytes copied to the device

    def add(self, other: HostTransfer) -> None:
        self.bytes += other.bytes
        self.syncs += other.syncs
        self.uploads += other.uploads
        self.upload_bytes += other.upload_bytes


@dataclass
class StageTiming:
    """Seconds spent per stage on one call; for diagnostics and the benchmarks.

    On a GPU the stage times are the host's time to queue the work unless the tracker
    profiles its stages (``profile_stages``: a synchronisation around each stage, which
    costs throughput); ``total`` is always the whole call. ``transfer`` counts the call's
    host waits and copies to the host.
    """

    encoder: float = 0.0
    memory_attention: float = 0.0
    decoder: float = 0.0
    memory_encoder: float = 0.0
    postprocess: float = 0.0
    total: float = 0.0
    transfer: HostTransfer = field(default_factory=HostTransfer)

    def as_dict(self) -> dict[str, float]:
        return {
            "encoder": self.encoder,
            "memory_attention": self.memory_attention,
            "decoder": self.decoder,
            "memory_encoder": self.memory_encoder,
            "postprocess": self.postprocess,
            "total": self.total,
        }


@dataclass(frozen=True)
class FrameMaps:
    """The label index of one batched postprocessing call, shared by its results.

    ``index`` holds, per pixel, 0 for background or k for the k-th entry of ``ids`` (the
    visible object with the highest logit above ``threshold`` there); ``all_ids`` are every
    object of the call, so a caller can tell whether a set of results is exactly this call.
    """

    index: np.ndarray  # HxW uint8 (int32 from 255 objects on)
    ids: tuple[int, ...]
    all_ids: frozenset[int]
    threshold: float

    def labels(self) -> np.ndarray:
        """HxW uint16 label image of object ids (0 = no object)."""
        lut = np.asarray((0, *self.ids), dtype=np.uint16)
        return lut[self.index]


@dataclass
class ObjectResult:
    """One object on one frame, at the frame's full resolution."""

    object_id: int
    label: str
    visible: bool  # SAM 2's occlusion head: object score logit > 0
    presence: float  # sigmoid of the object score logit
    score: float  # SAM 2's predicted IoU of the mask
    mask: np.ndarray  # HxW bool (logits > mask_threshold)
    bbox: tuple[int, int, int, int]  # x, y, width, height of the mask (zeros when empty)
    centroid: tuple[float, float]  # x, y in pixels
    area: int
    frames_since_prompt: int
    tracked: bool = True  # False while the object waits for a prompt after a reset
    # Not visible: where the identity policy's motion filter predicts the object (x, y,
    # width, height in pixels, clipped to the image); None without a prediction (sam2 mode).
    predicted_box: tuple[int, int, int, int] | None = None
    covered: bool = False  # the policy judges the predicted box hidden behind other objects
    # The HxW float32 logits are copied to the host only when asked for (``logits``): the
    # node publishes masks and the label index, which come in the frame's one uint8 copy.
    logits_source: Callable[[], np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )
    frame_maps: FrameMaps | None = field(default=None, repr=False, compare=False)

    @property
    def shown(self) -> bool:
        """Whether outputs show this object (the label image, a TrackedObject's mask and box,
        the overlay): SAM 2 says it is visible and its mask has pixels at camera size."""
        return bool(self.visible and self.area > 0)

    @property
    def logits(self) -> np.ndarray:
        """HxW float32 mask logits at camera resolution (-1024 where there is no output)."""
        if self.logits_source is None:
            return np.full(self.mask.shape, -1024.0, dtype=np.float32)
        return self.logits_source()


@dataclass
class FrameResult:
    """Everything the tracker says about one frame."""

    frame_index: int
    stamp: int  # nanoseconds, as given to track()
    image_hw: tuple[int, int]
    objects: list[ObjectResult] = field(default_factory=list)
    timing: StageTiming = field(default_factory=StageTiming)
    transfer: HostTransfer = field(default_factory=HostTransfer)
    generation: int = 0  # the tracker's full resets before this frame (see its generation)

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
