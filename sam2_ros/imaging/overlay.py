"""Debug overlay of tracked objects for RViz (published as bgr8).

Colours are derived from the object id alone, so an object keeps its colour across
frames and node restarts, which is what makes a debug view readable.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable
from typing import NamedTuple

import cv2
import numpy as np

from sam2_ros.imaging.masks import mask_stats

_GOLDEN_RATIO_CONJUGATE = 0.618033988749895
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.5
_FONT_THICKNESS = 1


class OverlayObject(NamedTuple):
    """One object to draw; a plain 5-tuple in the same order works too."""

    id: int
    label: str
    mask: np.ndarray
    visible: bool
    score: float


def object_color(obj_id: int) -> tuple[int, int, int]:
    """Deterministic, well-separated (b, g, r) colour for an object id.

    Hues step by the golden ratio so consecutive ids land far apart on the colour wheel;
    unlike ``hash()`` this does not change between processes.
    """
    hue = (int(obj_id) * _GOLDEN_RATIO_CONJUGATE) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return round(b * 255), round(g * 255), round(r * 255)


def _put_label(image: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int]) -> None:
    """Draw ``text`` just above (x, y), or just below it at the top edge, with an outline."""
    (tw, th), baseline = cv2.getTextSize(text, _FONT, _FONT_SCALE, _FONT_THICKNESS)
    width = image.shape[1]
    x = max(0, min(x, width - tw))
    y = y - baseline - 1 if y - th - baseline - 1 >= 0 else y + th + 1
    cv2.putText(
        image, text, (x, y), _FONT, _FONT_SCALE, (0, 0, 0), _FONT_THICKNESS + 2, cv2.LINE_AA
    )
    cv2.putText(image, text, (x, y), _FONT, _FONT_SCALE, color, _FONT_THICKNESS, cv2.LINE_AA)


def draw_overlay(
    rgb: np.ndarray,
    objects: Iterable[OverlayObject | tuple[int, str, np.ndarray, bool, float]],
    alpha: float = 0.5,
) -> np.ndarray:
    """Return a new BGR uint8 image with visible objects' masks blended in.

    Each visible, non-empty mask is tinted with its id colour (weight ``alpha``), outlined,
    and captioned "id label score" at its top-left. Blending, outlines and captions are
    drawn in separate passes so a later mask never hides an earlier caption. The input
    is not modified.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    drawn: list[tuple[OverlayObject, np.ndarray, tuple[int, int, int]]] = []
    for item in objects:
        obj = OverlayObject(*item)
        if not obj.visible:
            continue
        mask = np.asarray(obj.mask)
        if mask.shape != rgb.shape[:2]:
            raise ValueError(
                f"mask of object {obj.id} has shape {mask.shape}, image is {rgb.shape[:2]}"
            )
        mask = mask if mask.dtype == np.bool_ else mask != 0
        if not mask.any():
            continue
        color = object_color(obj.id)
        tint = np.asarray(color, dtype=np.float32)
        blended = out[mask].astype(np.float32) * (1.0 - alpha) + tint * alpha
        out[mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        drawn.append((obj, mask, color))

    for _, mask, color in drawn:
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(out, contours, -1, color, 2)

    for obj, mask, color in drawn:
        x, y, _, _ = mask_stats(mask).bbox
        _put_label(out, f"{obj.id} {obj.label} {obj.score:.2f}", x, y, color)
    return out
