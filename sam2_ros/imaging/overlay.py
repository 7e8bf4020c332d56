"""Debug overlay of tracked objects for RViz (published as bgr8).

Colours are derived from the object id alone, so an object keeps its colour across
frames and node restarts, which is what makes a debug view readable.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import cv2
import numpy as np

from sam2_ros.imaging.masks import interior_point

_GOLDEN_RATIO_CONJUGATE = 0.618033988749895
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.5
_SMALL_FONT_SCALE = 0.35
_FONT_THICKNESS = 1
_PAD = 2  # pixels between a caption's text and the edge of its box
_CAPTION_SHADE = 0.3  # the image under a caption keeps this share of its brightness
_MAX_CAPTION_SHIFTS = 4  # tries up and down (in caption heights) to clear other captions


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


def _font_scale(image_hw: tuple[int, int]) -> float:
    """Caption size: the usual 0.5 from VGA-ish frames up, smaller on thumbnails so a caption
    does not cover the object it names."""
    return _FONT_SCALE if min(image_hw) >= 200 else _SMALL_FONT_SCALE


def caption_size(text: str, image_hw: tuple[int, int]) -> tuple[int, int]:
    """(width, height) in pixels of a caption's box, text and padding, on such an image."""
    (tw, th), baseline = cv2.getTextSize(text, _FONT, _font_scale(image_hw), _FONT_THICKNESS)
    return tw + 2 * _PAD, th + baseline + 2 * _PAD


def place_captions(
    sizes: Sequence[tuple[int, int]],
    anchors: Sequence[tuple[float, float]],
    image_hw: tuple[int, int],
) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) for captions of the given sizes, each centred on its anchor
    (a point inside its mask), kept inside the image, and moved up or down by whole caption
    heights when it would cover a caption placed before it (where masks meet, their
    interior points are close). A caption with no free place keeps its centred box."""
    height, width = image_hw
    placed: list[tuple[int, int, int, int]] = []
    for (w, h), (ax, ay) in zip(sizes, anchors, strict=True):
        candidates = []
        for step in range(2 * _MAX_CAPTION_SHIFTS + 1):
            dy = (step + 1) // 2 * (h + 1) * (1 if step % 2 else -1)
            x0 = round(min(max(ax - w / 2, 0), max(width - w, 0)))
            y0 = round(min(max(ay - h / 2 + dy, 0), max(height - h, 0)))
            candidates.append((x0, y0, x0 + w, y0 + h))
        free = (c for c in candidates if not any(_overlap(c, p) for p in placed))
        placed.append(next(free, candidates[0]))
    return placed


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _draw_caption(
    image: np.ndarray, text: str, box: tuple[int, int, int, int], color: tuple[int, int, int]
) -> None:
    """The caption in its object's colour on a darkened box, readable on any mask."""
    x0, y0, x1, y1 = box
    patch = image[y0:y1, x0:x1]
    patch[:] = (patch.astype(np.float32) * _CAPTION_SHADE).astype(np.uint8)
    scale = _font_scale(image.shape[:2])
    (_, th), _ = cv2.getTextSize(text, _FONT, scale, _FONT_THICKNESS)
    cv2.putText(
        image,
        text,
        (x0 + _PAD, y0 + _PAD + th),
        _FONT,
        scale,
        color,
        _FONT_THICKNESS,
        cv2.LINE_AA,
    )


def draw_overlay(
    rgb: np.ndarray,
    objects: Iterable[OverlayObject | tuple[int, str, np.ndarray, bool, float]],
    alpha: float = 0.5,
) -> np.ndarray:
    """Return a new BGR uint8 image with visible objects' masks blended in.

    Each visible, non-empty mask is tinted with its id colour (weight ``alpha``), outlined,
    and captioned "id label score" on a point inside it (see ``place_captions``). Blending,
    outlines and captions are drawn in separate passes so a later mask never hides an
    earlier caption. The input is not modified.
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

    texts = [f"{obj.id} {obj.label} {obj.score:.2f}" for obj, _, _ in drawn]
    boxes = place_captions(
        [caption_size(text, out.shape[:2]) for text in texts],
        [interior_point(mask) for _, mask, _ in drawn],
        out.shape[:2],
    )
    for text, box, (_, _, color) in zip(texts, boxes, drawn, strict=True):
        _draw_caption(out, text, box, color)
    return out
