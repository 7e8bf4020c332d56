"""One description of how to build a tracker, shared by the node, replay, demo and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

from sam2_ros.core.model_loading import build_model
from sam2_ros.core.streaming_tracker import StreamingTracker


@dataclass
class TrackerSettings:
    """Model and tracker options (names as the node's parameters)."""

    model: str = "sam2.1_hiera_t"
    checkpoint: str = ""
    device: str = "auto"
    precision: str = "auto"
    image_size: int = 0  # 0 = the model config's own
    compile: bool = False
    max_objects: int = 16
    prompt_history: int = 8
    max_prompt_frames: int = 4
    mask_threshold: float = 0.0

    def build(self) -> StreamingTracker:
        loaded = build_model(
            self.model,
            self.checkpoint or None,
            device=self.device,
            precision=self.precision,
            image_size=self.image_size or None,
            compile_image_encoder=self.compile,
        )
        return StreamingTracker(
            loaded,
            max_objects=self.max_objects,
            prompt_history=self.prompt_history,
            max_cond_frames=self.max_prompt_frames,
            mask_threshold=self.mask_threshold,
        )
