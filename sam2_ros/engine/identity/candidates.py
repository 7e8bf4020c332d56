"""Choosing among SAM 2's multimask candidates by predicted IoU and motion (SAMURAI).

SAM 2 takes the candidate with the highest predicted IoU. When a look-alike crosses the
object, the candidate on the look-alike can score as high; the candidate whose box agrees
with where the object's motion says it is breaks the tie:
``score = (1 - weight) * predicted IoU + weight * IoU(candidate box, predicted box)``.
"""

from __future__ import annotations

import numpy as np
import torch


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (x0, y0, x1, y1) boxes; 0 when either is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return float(inter / union) if union > 0 else 0.0


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight (x0, y0, x1, y1) box of a boolean mask (pixel edges), None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], float)


def choose_candidate(
    predicted_ious: np.ndarray, boxes: list[np.ndarray | None],
    predicted_box: np.ndarray | None, weight: float,
) -> tuple[int, float]:
    """Index of the chosen candidate and its motion agreement (IoU with the predicted box;
    1.0 when there is no prediction). Without a prediction (or weight 0) this is SAM 2's
    choice, the highest predicted IoU (first on ties, like ``torch.argmax``)."""
    ious = np.asarray(predicted_ious, float)
    if predicted_box is None or weight <= 0.0:
        return int(np.argmax(ious)), 1.0
    motion = np.array([box_iou(b, predicted_box) if b is not None else 0.0 for b in boxes])
    score = (1.0 - weight) * ious + weight * motion
    best = int(np.argmax(score))
    return best, float(motion[best])


def mask_boxes(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``mask_box`` of boolean masks [..., H, W] on their device, without a host wait:
    boxes [..., 4] (float64, zeros when empty) and whether each mask has a pixel."""
    rows, cols = masks.any(dim=-1), masks.any(dim=-2)
    height, width = rows.shape[-1], cols.shape[-1]
    y0 = rows.int().argmax(dim=-1)
    y1 = height - rows.flip(-1).int().argmax(dim=-1)
    x0 = cols.int().argmax(dim=-1)
    x1 = width - cols.flip(-1).int().argmax(dim=-1)
    nonempty = rows.any(dim=-1)
    boxes = torch.stack([x0, y0, x1, y1], dim=-1).double() * nonempty[..., None]
    return boxes, nonempty


def box_ious(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``box_iou`` of (x0, y0, x1, y1) boxes [..., 4] (broadcast), on their device, in the
    same operations and order, so float64 gives the same numbers as ``box_iou``."""
    zero = torch.zeros((), dtype=a.dtype, device=a.device)
    def side(lo: int, hi: int) -> torch.Tensor:  # overlap along one axis
        return torch.maximum(zero, torch.minimum(a[..., hi], b[..., hi])
                             - torch.maximum(a[..., lo], b[..., lo]))

    def area(box: torch.Tensor) -> torch.Tensor:
        return (torch.maximum(zero, box[..., 2] - box[..., 0])
                * torch.maximum(zero, box[..., 3] - box[..., 1]))

    inter = side(0, 2) * side(1, 3)
    area_a, area_b = area(a), area(b)
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, 1.0), zero)
