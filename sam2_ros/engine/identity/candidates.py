"""Choosing among SAM 2's multimask candidates by predicted IoU and motion (SAMURAI).

SAM 2 takes the candidate with the highest predicted IoU. When a look-alike crosses the
object, the candidate on the look-alike can score as high; the candidate whose box agrees
with where the object's motion says it is breaks the tie:
``score = (1 - weight) * predicted IoU + weight * IoU(candidate box, predicted box)``.
"""

from __future__ import annotations

import numpy as np


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
