"""The synthetic scene every engine tracks, written as JPEGs and decoded back.

Meta's predictor reads a JPEG folder; ours gets the same decoded pixels, so both see
exactly the same frames and clicks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Scene:
    """Frames on disk as JPEGs plus the decoded pixels and one click per object."""

    jpeg_dir: Path
    frames: list[np.ndarray]  # decoded JPEG pixels, HxWx3 uint8 RGB
    stamps: list[int]  # nanoseconds
    points: list[tuple[float, float]]  # one positive click per object on frame 0

    @property
    def height(self) -> int:
        return int(self.frames[0].shape[0])

    @property
    def width(self) -> int:
        return int(self.frames[0].shape[1])


def write_scene(
    out_dir: Path,
    num_frames: int,
    width: int,
    height: int,
    num_objects: int,
    seed: int = 0,
    keep_pixels: bool = True,
) -> Scene:
    """Render the synthetic scene, write it as a JPEG folder (Meta's loader reads
    ``<index>.jpg``) and decode those JPEGs back, so every engine sees the same pixels."""
    from PIL import Image

    from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene
    from sam2_ros.imaging.masks import interior_point

    fps = 30.0
    cfg = SceneConfig(
        width=width,
        height=height,
        fps=fps,
        duration_s=num_frames / fps,
        num_objects=max(1, num_objects),
        seed=seed,
        with_depth=False,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    frames: list[np.ndarray] = []
    stamps: list[int] = []
    points: list[tuple[float, float]] = []
    for frame in render_scene(cfg):
        if frame.index >= num_frames:
            break
        path = out_dir / f"{frame.index:05d}.jpg"
        Image.fromarray(frame.rgb).save(path, quality=95)
        if keep_pixels:
            with Image.open(path) as img:
                frames.append(np.array(img.convert("RGB")))
        stamps.append(frame.stamp_ns)
        if frame.index == 0:
            for k in range(1, num_objects + 1):
                mask = frame.labels == k
                point = interior_point(mask) if mask.any() else None
                if point is None:  # object not on frame 0: click on a fixed grid spot
                    point = (width * (0.15 + 0.7 * ((k * 0.37) % 1)), height * 0.5)
                points.append(point)
    return Scene(out_dir, frames, stamps, points)

