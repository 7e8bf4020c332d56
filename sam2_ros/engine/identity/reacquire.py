"""Finding a lost object again where its motion says it is: a box prompt from the filter.

When an object's memory no longer finds it (the decoder draws whatever now stands where
the object was, or nothing), SAM 2 has no way back: its memory only holds what it was
shown. The motion filter, fed only by frames that looked like the object, still knows
where the object should be. ``box_prompt_heads`` runs SAM 2's prompt encoder and mask
decoder once more (through ``Sam2Steps``) for that one object, on the frame's features
without memory (as on a first prompted frame), with the predicted box as a box prompt
(corner labels 2 and 3, as ``SAM2VideoPredictor.add_new_points_or_box`` encodes a box).
``accept`` says whether what it drew is the object: a confident mask, in front (object
score), agreeing with the predicted box and not lying on the other objects of the frame
(the policy checks its look too, ``appearance``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.identity.candidates import box_iou, mask_box

if TYPE_CHECKING:
    from sam2_ros.engine.steps.sam2_steps import Sam2Steps

#: Share of a re-acquired mask that may lie on the other objects' masks of the frame.
MAX_ON_OTHERS = 0.3
#: Share of the predicted box that must lie inside the image for a box prompt (an object
#: predicted beyond the border has left the view: prompting its clipped box would draw
#: whatever lies at the border).
MIN_INSIDE = 0.6


@dataclass
class BoxPromptOutput:
    """SAM 2's heads for one object with a box prompt (batch of one)."""

    low_res: torch.Tensor  # [1, 1, S/4, S/4] logits
    high_res: torch.Tensor  # [1, 1, S, S] logits
    iou: torch.Tensor  # [1] predicted IoU
    obj_ptr: torch.Tensor  # [1, C]
    object_score_logits: torch.Tensor  # [1, 1]
    # Read by the policy in one wait with the frame's other box prompts:
    box: np.ndarray | None = None  # the mask's box in the low-res grid
    mask: np.ndarray | None = None  # low_res > 0 on the host
    iou_value: float = 0.0
    score_value: float = 0.0

    def device_values(self) -> list[torch.Tensor]:
        """What the host reads of it: the mask, predicted IoU and object score logit."""
        return [self.low_res[0, 0] > 0, self.iou, self.object_score_logits]

    def take(self, values: list[np.ndarray]) -> None:
        """The read values of ``device_values``."""
        self.mask = values[0]
        self.iou_value, self.score_value = float(values[1][0]), float(values[2][0, 0])
        self.box = mask_box(self.mask)


def inside_share(box: np.ndarray, size: int) -> float:
    """Share of ``box`` (low-res grid) lying inside the ``size`` x ``size`` grid."""
    area = max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
    if area <= 0:
        return 0.0
    clipped = np.clip(box, 0, size)
    inside = max(0.0, clipped[2] - clipped[0]) * max(0.0, clipped[3] - clipped[1])
    return float(inside / area)


def box_prompt_heads(steps: Sam2Steps, decoded, box: np.ndarray) -> BoxPromptOutput:
    """SAM 2's heads on the frame of ``decoded`` (which must carry its features) without
    memory, as on a first prompted frame, with ``box`` (x0, y0, x1, y1 in the low-res grid)
    as a box prompt. Nothing is read here (``take`` gets the values)."""
    low_size = decoded.pred_masks.size(-1)
    scale = steps.facts.image_size / low_size
    corners = np.clip(np.asarray(box, float), 0, low_size) * scale
    features = decoded.plain_feat()
    device = features.device
    points = {
        "point_coords": host_sync.upload(corners.reshape(1, 2, 2), device, torch.float32),
        "point_labels": host_sync.upload(np.array([[2, 3]]), device, torch.int32),
    }
    high_res = (None if decoded.high_res_feats is None
                else [f[:1] for f in decoded.high_res_feats])
    _, _, ious, low_res, high_res_masks, obj_ptr, score_logits = steps.box_prompt_heads(
        features, points, high_res)
    return BoxPromptOutput(low_res, high_res_masks, ious[:, 0].float(), obj_ptr, score_logits)


def accept(out: BoxPromptOutput, predicted_box: np.ndarray, others: np.ndarray | None,
           min_iou: float, min_motion: float) -> bool:
    """Whether a box prompt's mask is the lost object: predicted IoU >= ``min_iou``, in front
    (object-score logit > 0), its box's IoU with the predicted box >= ``min_motion``, and
    at most ``MAX_ON_OTHERS`` of it on ``others`` (union of the other objects' masks).
    ``out`` must hold its read values (``take``)."""
    if out.box is None or out.iou_value < min_iou:
        return False
    if not out.score_value > 0:
        return False
    if box_iou(out.box, predicted_box) < min_motion:
        return False
    if others is None:
        return True
    mask = out.mask
    return float(np.logical_and(mask, others).sum()) <= MAX_ON_OTHERS * float(mask.sum())
