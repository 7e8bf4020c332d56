"""From SAM 2's low-resolution logits to what a caller gets at camera resolution.

Hole filling is SAM 2's video post-processing (Meta's predictor does it with a CUDA op;
OpenCV does the same here so it also runs on CPU installs). ``object_result`` brings one
object's logits to the camera's size and measures the mask.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.engine.memory_bank import FrameOutput, ObjectMemory
from sam2_ros.engine.results import ObjectResult
from sam2_ros.imaging.masks import mask_stats


def fill_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """Background specks of area <= max_area become foreground (score 0.1), as SAM 2 does."""
    if max_area <= 0:
        return logits
    background = (logits <= 0).cpu().numpy().astype(np.uint8)
    filled = logits.clone()
    for b in range(background.shape[0]):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(background[b, 0], connectivity=8)
        if count <= 1:
            continue
        small = stats[:, cv2.CC_STAT_AREA] <= max_area
        small[0] = False  # label 0 is the foreground here
        if small.any():
            hole = torch.from_numpy(small[labels]).to(logits.device)
            filled[b, 0] = torch.where(hole, torch.full_like(filled[b, 0], 0.1), filled[b, 0])
    return filled


def object_result(
    obj: ObjectMemory,
    out: FrameOutput | None,
    image_hw: tuple[int, int],
    frames_since_prompt: int,
    mask_threshold: float,
    device: torch.device,
) -> ObjectResult:
    """One object's result at camera resolution (an empty, invisible one without output)."""
    height, width = image_hw
    if out is None or out.pred_masks is None:
        return ObjectResult(
            obj.object_id, obj.label, False, 0.0, 0.0,
            np.zeros((height, width), dtype=bool),
            np.full((height, width), -1024.0, dtype=np.float32),
            (0, 0, 0, 0), (0.0, 0.0), 0, frames_since_prompt, tracked=obj.is_tracked,
        )
    logits = (
        F.interpolate(
            out.pred_masks.to(device), size=(height, width), mode="bilinear", align_corners=False
        )[0, 0]
        .float()
        .cpu()
        .numpy()
    )
    score_logit = float(out.object_score_logits.reshape(-1)[0])
    mask = logits > mask_threshold
    stats = mask_stats(mask)
    return ObjectResult(
        object_id=obj.object_id,
        label=obj.label,
        visible=score_logit > 0,
        presence=float(1.0 / (1.0 + np.exp(-score_logit))),
        score=out.iou,
        mask=mask,
        logits=logits,
        bbox=stats.bbox,
        centroid=stats.centroid,
        area=stats.area,
        frames_since_prompt=frames_since_prompt,
        tracked=obj.is_tracked,
    )
