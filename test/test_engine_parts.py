"""The engine's parts on their own: the frame ring, object batching, post-processing."""

from __future__ import annotations

import pytest
import torch

from sam2_ros.engine.batching import group_by_layout, split_outputs
from sam2_ros.engine.frame_ring import FrameRing, RingFrame
from sam2_ros.engine.postprocessing import fill_holes
from sam2_ros.engine.sam2_steps import Decoded
from sam2_ros.errors import NoFrameError, StampError


def _frame(index: int) -> RingFrame:
    return RingFrame(index, 100 + 10 * index, (4, 4), [])


def test_frame_ring_keeps_the_newest_and_explains_misses() -> None:
    ring = FrameRing(3)
    with pytest.raises(NoFrameError):
        ring.find(None)
    for i in range(5):
        ring.append(_frame(i))
    assert ring.stamps() == [120, 130, 140] and len(ring) == 3
    assert ring.find(None) is ring.newest and ring.find(0).index == 4
    assert ring.find(130).index == 3 and ring.oldest.index == 2
    with pytest.raises(StampError, match="older than the 3 frames kept"):
        ring.find(110)
    with pytest.raises(StampError, match="newer than the newest frame"):
        ring.find(150)
    with pytest.raises(StampError, match="no kept frame has stamp 125"):
        ring.find(125)
    with pytest.raises(ValueError, match="prompt_history"):
        FrameRing(0)


def test_objects_with_the_same_memory_layout_share_a_batch() -> None:
    def memory(tokens: int, pointers: int):
        return torch.zeros(tokens, 1, 8), torch.zeros(tokens, 1, 8), pointers

    memories = [memory(10, 2), memory(12, 2), memory(10, 2), memory(10, 3)]
    assert group_by_layout(memories) == [[0, 2], [1], [3]]


def test_a_batch_splits_into_independent_outputs() -> None:
    decoded = Decoded(
        pred_masks=torch.randn(2, 1, 4, 4), high_res_masks=torch.randn(2, 1, 16, 16),
        ious=torch.tensor([0.5, 0.9]), obj_ptr=torch.randn(2, 8),
        object_score_logits=torch.tensor([[1.0], [-1.0]]),
    )
    maskmem = torch.randn(2, 4, 2, 2)
    first, second = split_outputs(decoded, decoded.pred_masks, maskmem)
    assert (first.iou, second.iou) == (0.5, pytest.approx(0.9))
    assert torch.equal(second.maskmem_features, maskmem[1:2])
    decoded.pred_masks.zero_()  # outputs are copies: the batch may be reused
    assert first.pred_masks.abs().sum() > 0


def test_fill_holes_fills_only_small_background_specks() -> None:
    logits = torch.ones(1, 1, 12, 12)
    logits[0, 0, 2, 2] = -1.0  # a 1-pixel hole
    logits[0, 0, 6:12, 6:12] = -1.0  # a 36-pixel background region
    filled = fill_holes(logits, max_area=8)
    assert filled[0, 0, 2, 2] > 0 and (filled[0, 0, 6:12, 6:12] < 0).all()
    assert torch.equal(fill_holes(logits, max_area=0), logits)
