"""DAVIS video object segmentation metrics: region similarity J and contour accuracy F.

We report the same numbers as the DAVIS 2017 toolkit so results on our bags
can be compared with published SAM 2 figures.  J (IoU) rewards getting the
area right; F rewards getting the outline right within a small tolerance, so a
mask one pixel too thin keeps a high F while losing a little J.  Re-implemented
on numpy/OpenCV to avoid a scikit-image dependency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

#: Boundary tolerance as a fraction of the image diagonal (DAVIS 2017 default).
BOUND_TH = 0.008


def _as_bool(mask: np.ndarray | None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if mask is None:
        if shape is None:
            raise ValueError("a missing mask needs a reference shape")
        return np.zeros(shape, dtype=bool)
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"masks must be 2-D, got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """J: intersection over union.  Both empty scores 1 (correctly predicted absence)."""
    p, g = _as_bool(pred), _as_bool(gt)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {g.shape}")
    union = np.count_nonzero(p | g)
    if union == 0:
        return 1.0
    return np.count_nonzero(p & g) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary: pixels that differ from their E, S or SE neighbour.

    Same construction as DAVIS' ``seg2bmap`` for same-size maps, so F values
    match the toolkit rather than depending on a particular edge detector.
    """
    m = _as_bool(mask)
    e = np.zeros_like(m)
    s = np.zeros_like(m)
    se = np.zeros_like(m)
    e[:, :-1] = m[:, 1:]
    s[:-1, :] = m[1:, :]
    se[:-1, :-1] = m[1:, 1:]
    b = (m ^ e) | (m ^ s) | (m ^ se)
    b[-1, :] = m[-1, :] ^ e[-1, :]
    b[:, -1] = m[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def _disk(radius: int) -> np.ndarray:
    """Structuring element {x^2 + y^2 <= r^2}, like skimage.morphology.disk."""
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy <= r * r).astype(np.uint8)


def contour_accuracy(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F: boundary F-measure with a tolerance of ``bound_th`` * image diagonal pixels.

    ``bound_th >= 1`` is taken as an absolute pixel radius, as in the toolkit.
    Both empty scores 1; exactly one empty scores 0.
    """
    p, g = _as_bool(pred), _as_bool(gt)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {g.shape}")
    radius = bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*p.shape))
    pb, gb = boundary_map(p), boundary_map(g)
    n_p, n_g = np.count_nonzero(pb), np.count_nonzero(gb)
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    kernel = _disk(int(radius))
    p_dil = cv2.dilate(pb.astype(np.uint8), kernel).astype(bool)
    g_dil = cv2.dilate(gb.astype(np.uint8), kernel).astype(bool)
    precision = np.count_nonzero(pb & g_dil) / n_p
    recall = np.count_nonzero(gb & p_dil) / n_g
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class SequenceScores:
    """Per-object mean J and F over a sequence, and the DAVIS summary numbers.

    ``j_mean``/``f_mean`` average the per-object means, so every object weighs
    the same whatever its size or lifetime; ``jf_mean`` is DAVIS' headline J&F.
    Plain fields (not properties) so ``dataclasses.asdict`` gives a full report.
    """

    j_per_object: dict[int, float] = field(default_factory=dict)
    f_per_object: dict[int, float] = field(default_factory=dict)
    j_mean: float = 0.0
    f_mean: float = 0.0
    jf_mean: float = 0.0


def evaluate_sequence(
    pred: Mapping[int, Sequence[np.ndarray | None]],
    gt: Mapping[int, Sequence[np.ndarray]],
    bound_th: float = BOUND_TH,
    exclude_first_last: bool = False,
) -> SequenceScores:
    """Score predicted masks against ground truth, object by object.

    Objects are those of ``gt``; predictions for other ids are ignored and a
    missing object or a None frame counts as an empty mask (so a lost object
    is penalised, not skipped).  ``exclude_first_last`` drops the first and
    last frames as the DAVIS 2017 semi-supervised protocol does, since the
    first frame's mask is given to the method.
    """
    j_obj: dict[int, float] = {}
    f_obj: dict[int, float] = {}
    for oid, gt_masks in gt.items():
        n = len(gt_masks)
        pred_masks = list(pred.get(oid, [None] * n))
        if len(pred_masks) != n:
            raise ValueError(
                f"object {oid}: {len(pred_masks)} predicted frames, {n} in ground truth")
        frames = range(1, n - 1) if exclude_first_last and n > 2 else range(n)
        js, fs = [], []
        for i in frames:
            g = _as_bool(gt_masks[i])
            p = _as_bool(pred_masks[i], g.shape)
            js.append(region_similarity(p, g))
            fs.append(contour_accuracy(p, g, bound_th))
        j_obj[oid] = float(np.mean(js)) if js else 0.0
        f_obj[oid] = float(np.mean(fs)) if fs else 0.0
    j_mean = float(np.mean(list(j_obj.values()))) if j_obj else 0.0
    f_mean = float(np.mean(list(f_obj.values()))) if f_obj else 0.0
    return SequenceScores(j_obj, f_obj, j_mean, f_mean, (j_mean + f_mean) / 2.0)
