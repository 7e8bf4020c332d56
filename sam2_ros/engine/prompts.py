"""Check prompts (clicks, a box, a mask) and convert them to SAM 2's inputs.

All checks run before the tracker touches its state, so a bad prompt changes nothing.
The conversions follow the official video predictor: a box becomes two leading points
labelled 2 and 3, pixel coordinates are scaled to the model's square input, and a mask is
resized with antialiasing and re-binarised at 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.engine.hardware import host_sync
from sam2_ros.errors import PromptError

#: What callers may give for a prompt's parts (checked and converted by ``check_prompt``).
PointsLike = Sequence[Sequence[float]] | np.ndarray  # (N, 2) pixels, x y
LabelsLike = Sequence[int] | np.ndarray  # (N,) 1 positive, 0 negative
BoxLike = Sequence[float] | np.ndarray  # (4,) pixels, x0 y0 x1 y1
MaskLike = np.ndarray  # (H, W) at the frame's size, nonzero = object


@dataclass(frozen=True)
class Prompt:
    """A checked prompt in image pixels: points with labels, a box, or a mask."""

    points: np.ndarray | None = None  # (N, 2) float32, x y
    labels: np.ndarray | None = None  # (N,) int32, 1 positive / 0 negative
    box: np.ndarray | None = None  # (4,) float32, x0 y0 x1 y1
    mask: np.ndarray | None = None  # (H, W) bool

    @property
    def is_mask(self) -> bool:
        return self.mask is not None


def check_prompt(
    image_hw: tuple[int, int],
    points: PointsLike | None = None,
    labels: LabelsLike | None = None,
    box: BoxLike | None = None,
    mask: MaskLike | None = None,
) -> Prompt:
    """Validate a prompt against the size of the frame it applies to."""
    height, width = image_hw
    has_points = points is not None and len(points) > 0
    has_labels = labels is not None and len(labels) > 0
    if mask is not None and (has_points or box is not None):
        raise PromptError("give either a mask or points/box in one prompt, not both")
    if mask is not None:
        return Prompt(mask=_check_mask(mask, height, width))
    if not has_points and not has_labels and box is None:
        raise PromptError("empty prompt: give points with labels, a box, or a mask")
    pts = lbl = None
    if has_points or has_labels:
        pts = np.asarray(points if points is not None else [], dtype=np.float32).reshape(-1, 2)
        lbl = np.asarray(labels if labels is not None else [], dtype=np.int32).reshape(-1)
        if len(pts) != len(lbl):
            raise PromptError(f"{len(pts)} points but {len(lbl)} labels: give one label per point")
        if not np.all(np.isfinite(pts)):
            raise PromptError("points contain NaN or infinite coordinates")
        bad = np.flatnonzero(~np.isin(lbl, (0, 1)))
        if bad.size:
            raise PromptError(
                f"point labels must be 1 (positive) or 0 (negative); got {lbl[bad[0]]}"
            )
        outside = np.flatnonzero(
            (pts[:, 0] < 0) | (pts[:, 0] > width - 1) | (pts[:, 1] < 0) | (pts[:, 1] > height - 1)
        )
        if outside.size:
            x, y = pts[outside[0]]
            raise PromptError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
    bx = None
    if box is not None:
        bx = np.asarray(box, dtype=np.float32).reshape(-1)
        if bx.size != 4 or not np.all(np.isfinite(bx)):
            raise PromptError(f"box must be 4 finite numbers x0 y0 x1 y1, got {box!r}")
        x0, y0, x1, y1 = bx
        if x1 <= x0 or y1 <= y0:
            raise PromptError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is inverted or empty")
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise PromptError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the image")
    return Prompt(points=pts, labels=lbl, box=bx)


def _check_mask(mask: object, height: int, width: int) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise PromptError(f"mask must be 2-D (H x W), got shape {arr.shape}")
    if arr.shape != (height, width):
        raise PromptError(
            f"mask is {arr.shape[1]}x{arr.shape[0]} but the frame is {width}x{height}"
        )
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise PromptError("mask contains NaN or infinite values")
    binary = arr != 0
    if not binary.any():
        raise PromptError("mask is all zero: it marks no object pixel")
    return binary


def point_inputs(
    prompt: Prompt, image_hw: tuple[int, int], image_size: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """SAM 2 point inputs (box corners first) in the model's input coordinates."""
    height, width = image_hw
    coords = []
    labels = []
    if prompt.box is not None:
        coords.append(prompt.box.reshape(2, 2))
        labels.append(np.array([2, 3], dtype=np.int32))
    if prompt.points is not None:
        coords.append(prompt.points)
        labels.append(prompt.labels)
    pts = torch.from_numpy(np.concatenate(coords, axis=0).astype(np.float32))[None]
    lbl = torch.from_numpy(np.concatenate(labels, axis=0).astype(np.int32))[None]
    pts = pts / torch.tensor([width, height]) * image_size
    return {"point_coords": host_sync.upload(pts, device),
            "point_labels": host_sync.upload(lbl, device)}


def concat_point_inputs(
    old: dict[str, torch.Tensor] | None, new: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Append new clicks after earlier ones on the same frame (SAM 2's refinement)."""
    if old is None:
        return new
    return {
        "point_coords": torch.cat([old["point_coords"], new["point_coords"]], dim=1),
        "point_labels": torch.cat([old["point_labels"], new["point_labels"]], dim=1),
    }


def mask_inputs(mask: np.ndarray, image_size: int, device: torch.device) -> torch.Tensor:
    """A full-resolution binary mask as SAM 2's 1x1xSxS mask input."""
    tensor = host_sync.upload(torch.tensor(mask, dtype=torch.float32)[None, None], device)
    if tensor.shape[-2:] == (image_size, image_size):
        return tensor
    resized = F.interpolate(
        tensor, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
    )
    return (resized >= 0.5).float()
