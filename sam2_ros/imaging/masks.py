"""Per-mask statistics and compositing of several object masks into one label image.

These run once per tracked object per frame, so they avoid contour extraction and
per-pixel Python work: bounding box and centroid both come from the row/column
projections of the mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: Label 0 is background, so object ids must fit in the rest of the uint16 range.
MAX_LABEL_ID = int(np.iinfo(np.uint16).max)


@dataclass(frozen=True)
class MaskStats:
    """Summary of a binary mask in pixel coordinates.

    ``bbox`` is (x, y, width, height) and ``centroid`` is (x, y) with pixel centres at
    integer coordinates (the OpenCV convention). Both are all zero for an empty mask so
    that messages can be filled without special cases; check ``area`` to tell them apart.
    """

    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]
    area: int

    @property
    def empty(self) -> bool:
        """True when the mask has no pixels set."""
        return self.area == 0


def _as_bool_mask(mask: np.ndarray) -> np.ndarray:
    """Accept bool or 0/nonzero masks (e.g. uint8 0/255) but insist on a single plane."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (HxW), got shape {mask.shape}")
    return mask if mask.dtype == np.bool_ else mask != 0


def mask_stats(mask: np.ndarray) -> MaskStats:
    """Compute bbox, centroid and area of a 2-D mask from its row/column projections."""
    mask = _as_bool_mask(mask)
    col_counts = np.count_nonzero(mask, axis=0)
    area = int(col_counts.sum())
    if area == 0:
        return MaskStats(bbox=(0, 0, 0, 0), centroid=(0.0, 0.0), area=0)
    row_counts = np.count_nonzero(mask, axis=1)

    cols = np.flatnonzero(col_counts)
    rows = np.flatnonzero(row_counts)
    x0, x1 = int(cols[0]), int(cols[-1])
    y0, y1 = int(rows[0]), int(rows[-1])

    cx = float(np.dot(col_counts, np.arange(col_counts.size, dtype=np.float64)) / area)
    cy = float(np.dot(row_counts, np.arange(row_counts.size, dtype=np.float64)) / area)
    return MaskStats(bbox=(x0, y0, x1 - x0 + 1, y1 - y0 + 1), centroid=(cx, cy), area=area)


def crop_mask(mask: np.ndarray, bbox: Sequence[int]) -> np.ndarray:
    """Crop ``mask`` to ``bbox`` (x, y, w, h) as uint8 0/255, ready for mono8 messages.

    Publishing only the crop keeps per-object mask messages small; an empty bbox yields a
    (0, 0) array. A bbox reaching outside the mask is an error rather than silently
    clipped, since it means the bbox belongs to a different image.
    """
    mask = _as_bool_mask(mask)
    x, y, w, h = (int(v) for v in bbox)
    if w <= 0 or h <= 0:
        return np.zeros((0, 0), dtype=np.uint8)
    height, width = mask.shape
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"bbox {tuple(bbox)} lies outside the {width}x{height} mask")
    return mask[y : y + h, x : x + w].astype(np.uint8) * np.uint8(255)


def _as_plane(logit: np.ndarray) -> np.ndarray:
    """Drop leading singleton axes, since SAM 2 returns logits as (1, H, W) per object."""
    arr = np.asarray(logit)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"logits must be HxW (optionally with leading 1-axes), got {arr.shape}")
    return arr


def label_image(
    logits: Sequence[np.ndarray],
    ids: Sequence[int],
    threshold: float = 0.0,
    *,
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Merge per-object logits into one uint16 HxW label image (0 = background).

    SAM 2 predicts each object independently, so masks can overlap; a pixel goes to the
    object with the highest logit among those above ``threshold`` (ties go to the earlier
    object, NaN logits never win). ``shape`` is required when there are no objects so the
    node can still publish an all-background image.
    """
    if len(logits) != len(ids):
        raise ValueError(f"got {len(logits)} logit maps but {len(ids)} ids")
    for obj_id in ids:
        if not 1 <= int(obj_id) <= MAX_LABEL_ID:
            raise ValueError(f"object id {obj_id} outside 1..{MAX_LABEL_ID} (0 is background)")
    if not logits:
        if shape is None:
            raise ValueError("label_image needs shape= when there are no logits")
        return np.zeros(tuple(shape), dtype=np.uint16)

    planes = [_as_plane(lg) for lg in logits]
    hw = planes[0].shape
    if any(p.shape != hw for p in planes):
        raise ValueError(f"logit shapes differ: {[p.shape for p in planes]}")
    if shape is not None and tuple(shape) != hw:
        raise ValueError(f"shape={tuple(shape)} does not match logits of shape {hw}")

    stack = np.stack(planes).astype(np.float32, copy=False)
    above = stack > threshold  # False for NaN
    best = np.argmax(np.where(above, stack, -np.inf), axis=0)
    id_lut = np.asarray(ids, dtype=np.uint16)
    return np.where(above.any(axis=0), id_lut[best], np.uint16(0)).astype(np.uint16)


def interior_point(
    mask: np.ndarray, centre: tuple[float, float] | None = None
) -> tuple[float, float]:
    """The centroid (or ``centre``) if it lies on the object, else its most interior pixel.

    A partly occluded or ring-shaped object's centroid can fall outside its pixels: a
    positive click there would teach the tracker the wrong thing, and a caption there
    would name the wrong object. The mask must not be empty.
    """
    if centre is None:
        ys, xs = np.nonzero(mask)
        centre = (float(xs.mean()), float(ys.mean()))
    x, y = round(centre[0]), round(centre[1])
    if 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and mask[y, x]:
        return centre
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    iy, ix = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(ix), float(iy)
