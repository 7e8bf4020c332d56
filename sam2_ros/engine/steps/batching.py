"""Which objects share one batched SAM 2 call, and how a batch's outputs come apart.

Objects are batched when their assembled memories have the same layout (memory-frame count
and object-pointer count): SAM 2's memory attention then runs once for all of them on a
concatenated memory. Grouping by the memory actually assembled keeps SAM 2's frame
selection in one place (``memory_bank``).
"""

from __future__ import annotations

import torch

from sam2_ros.engine.memory_bank import FrameOutput, Memory
from sam2_ros.engine.steps.sam2_steps import Decoded


def group_by_layout(memories: list[Memory]) -> list[list[int]]:
    """Indices of the memories, grouped by (memory frames, object-pointer tokens)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, memory in enumerate(memories):
        groups.setdefault(memory.layout, []).append(i)
    return list(groups.values())


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
