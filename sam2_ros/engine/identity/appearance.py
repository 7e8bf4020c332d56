"""What an object looks like on a frame: the image encoder's finest features under its mask.

SAM 2's memory attends to where an object was as much as to what it looked like: with the
small demo model a mask can move onto a differently coloured object that now stands where
the tracked one was (measured on the designed demo scene, docs/identity.md). The finest
backbone level (stride 4, the grid of the low-resolution masks) keeps colour and texture:
averaged over a mask, one object against itself stays near cosine 1 while a mask on another
colour falls far below. ``MotionPolicy`` compares each tracked mask with the object's
prompted look before the frame may enter its memory, and a box prompt's mask before it is
taken as the object found again. Look-alikes (one colour) are not told apart by it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sam2_ros.engine.hardware import host_sync

#: Least mask weight (in feature cells) worth pooling; an emptier mask has no look.
MIN_WEIGHT = 1e-3


def pooled_on_device(features: torch.Tensor,
                     mask_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pooled`` without a host wait: the C-vector and the mask's weight (a look only
    where the weight is at least ``MIN_WEIGHT``)."""
    mask = (mask_logits.detach().float() > 0).float().reshape(1, 1, *mask_logits.shape[-2:])
    if tuple(mask.shape[-2:]) != tuple(features.shape[-2:]):
        mask = F.adaptive_avg_pool2d(mask, features.shape[-2:])
    weights = mask[0, 0].to(features.device)
    total = weights.sum()
    return (features[0].float() * weights).sum((1, 2)) / total, total


def pooled(features: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor | None:
    """A C-vector: ``features`` [1, C, h, w] averaged over the mask ``mask_logits > 0``
    ([..., H, W], area-resized to h x w when the grids differ); None for an empty mask
    (one counted host wait)."""
    vector, total = pooled_on_device(features, mask_logits)
    return None if host_sync.scalars(total)[0] < MIN_WEIGHT else vector


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of two flattened feature vectors, on their device."""
    return F.cosine_similarity(a.flatten().float(), b.flatten().float(), dim=0)


def similarity(a: torch.Tensor | None, b: torch.Tensor | None) -> float | None:
    """Cosine similarity of two feature vectors (flattened: pooled looks, object pointers);
    None when either is unknown."""
    if a is None or b is None:
        return None
    return host_sync.scalars(cosine(a, b))[0]
