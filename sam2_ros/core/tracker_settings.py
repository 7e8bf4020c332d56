"""One description of how to build a tracker, shared by the node, replay, demo and benchmarks."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

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
    cpu_threads: int = -1  # -1: torch's default; 0: all cores but one; n: n threads

    def build(self) -> StreamingTracker:
        apply_cpu_threads(self.cpu_threads)
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


def apply_cpu_threads(requested: int) -> int:
    """Set torch's CPU thread count; returns the count in force.

    Why 0 means "all cores but one": a ROS node shares the CPU with DDS and its message
    callbacks. With torch's OpenMP workers on every core, those threads get no core and the
    workers wait on each other: measured on 2 cores, a frame took over 10x longer inside the
    node than alone. Leaving one core free keeps the node's latency at the model's speed.
    """
    if requested > 0:
        torch.set_num_threads(requested)
    elif requested == 0:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
    return torch.get_num_threads()
