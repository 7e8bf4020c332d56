"""How a batch of objects' SAM 2 outputs come apart into one FrameOutput per object.

All tracked objects of a frame share one batched decode and memory-encoder call; memory
attention inside it groups them by memory layout (``memory_attention.group_by_layout``).
"""

from __future__ import annotations

import torch

from sam2_ros.engine.memory_bank import FrameOutput
from sam2_ros.engine.steps.sam2_steps import Decoded


def split_outputs(
    decoded: Decoded, pred_masks: torch.Tensor, maskmem: torch.Tensor
) -> list[FrameOutput]:
    """One FrameOutput per object of a batch (copies, so no batch tensor is kept alive)."""
    ious = decoded.ious.float()
    return [
        FrameOutput(
            obj_ptr=decoded.obj_ptr[i : i + 1].clone(),
            object_score_logits=decoded.object_score_logits[i : i + 1].float().clone(),
            pred_masks=pred_masks[i : i + 1].clone(),
            maskmem_features=maskmem[i : i + 1].clone(),
            iou=ious[i : i + 1].clone(),
        )
        for i in range(len(ious))
    ]
