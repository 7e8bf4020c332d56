"""Objects that know about each other on one frame.

``exclusive_logits`` is SAM 2's non-overlap constraint (the semantics of Meta's
``SAM2VideoPredictor._apply_non_overlapping_constraints``): on every pixel only the object
with the highest logit keeps its score; the others' logits there are clamped to at most
-10, so no pixel ends up in two masks. ``claim_losers`` decides whole-object conflicts
first: when two visible objects claim one region (the overlap covers most of the smaller
mask), the one with the weaker claim (``claim_strength``: predicted IoU, motion agreement
and whether it was seen on its previous frame) is judged hidden behind the other, rather
than given the other's mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: Share of the smaller mask two masks must share to claim one region.
CLAIM_OVERLAP = 0.5
#: Share of a mask inside another's that makes it the hidden one of the two.
CONTAINED = 0.8
#: Share of a hidden object's predicted box under other objects' masks that explains why
#: it is unseen: it is behind them (occluded), not gone. Below a half because the box the
#: filter coasts on grows while the object is unseen (measured: docs/identity.md).
COVERED = 0.35


def claim_strength(predicted_iou: float, motion: float, weight: float,
                   seen_before: bool, continuity: float) -> float:
    """How strongly an object claims its mask's region: ``(1 - weight) * predicted_iou +
    weight * motion``, plus ``continuity`` when it was reported visible on its previous
    frame. The bonus settles near-ties for the object that held the region: when a hidden
    object's decoder draws it on its occluder, the two masks and their predicted IoUs are
    alike (training crossing scene 202, a larger look-alike sweeping over resting ones: a
    resting object hidden for 6 frames claimed 0.68 against its occluder's 0.65, took its
    region and held it for several frames)."""
    claim = (1.0 - weight) * float(predicted_iou) + weight * float(motion)
    return claim + (continuity if seen_before else 0.0)


def exclusive_logits(logits: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] mask logits of the objects of one frame, each pixel left to the object
    with the highest logit (others clamped to <= -10)."""
    if logits.size(0) <= 1:
        return logits
    # ``max`` gives the first maximal index on ties, as Meta's ``argmax`` does, and is far
    # faster on a CPU (docs/identity.md). Clamp all, then put each pixel's winner back.
    best, winner = logits.max(dim=0, keepdim=True)
    return torch.clamp(logits, max=-10.0).scatter_(0, winner, best)


def claim_losers(masks: Sequence[np.ndarray], exclusive: Sequence[np.ndarray],
                 visible: Sequence[bool], claims: Sequence[float],
                 overlap: float = CLAIM_OVERLAP) -> set[int]:
    """Indices of objects that lose a region to another and are to be reported hidden.

    ``masks`` are the objects' masks as decoded, ``exclusive`` the same after the per-pixel
    constraint. Two visible masks sharing more than ``overlap`` of the smaller one claim
    one region. A mask lying almost wholly inside the other's while the other is not
    inside it (``CONTAINED`` against ``overlap``) is an object hidden behind the other that
    the decoder drew on the occluder's visible part: it loses. Otherwise, when the
    per-pixel split leaves each at least ``overlap`` of its own mask (two look-alikes drawn
    together), the split stands; failing that the lower claim loses (first on ties keeps
    it). Strongest claims are served first and a loser loses once.
    """
    order = sorted(range(len(masks)), key=lambda i: -claims[i])
    areas = [int(m.sum()) for m in masks]
    kept = [int(e.sum()) / a if a else 0.0 for e, a in zip(exclusive, areas, strict=True)]
    losers: set[int] = set()
    for rank, a in enumerate(order):
        if a in losers or not visible[a] or not areas[a]:
            continue
        for b in order[rank + 1:]:
            if b in losers or not visible[b] or not areas[b]:
                continue
            shared = int(np.logical_and(masks[a], masks[b]).sum())
            if shared <= overlap * min(areas[a], areas[b]):
                continue
            inside_a, inside_b = shared / areas[a], shared / areas[b]
            if inside_a >= CONTAINED and inside_b < overlap:
                losers.add(a)
                break
            if (inside_b >= CONTAINED and inside_a < overlap) or min(kept[a], kept[b]) < overlap:
                losers.add(b)
    return losers


def box_covered(box: Sequence[float], others: np.ndarray, share: float = COVERED) -> bool:
    """Whether at least ``share`` of the pixels of ``box`` (x0, y0, x1, y1, pixel edges, in
    the grid of ``others``) are covered by ``others``, the union of the other objects'
    masks; a box wholly outside the grid is not covered."""
    x0, y0, x1, y1 = box_cells(box, *others.shape)
    if x1 <= x0 or y1 <= y0:
        return False
    return float(others[y0:y1, x0:x1].mean()) >= share


def box_cells(box: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """The grid cells a box (x0, y0, x1, y1, pixel edges) touches, clipped to the grid:
    (x0, y0, x1, y1) as slice bounds (empty when x1 <= x0 or y1 <= y0)."""
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    return x0, y0, x1, y1
