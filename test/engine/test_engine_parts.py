"""The engine's parts on their own: the frame ring, object batching, post-processing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sam2_ros.engine.frame_ring import FrameRing, RingFrame
from sam2_ros.engine.memory_bank import FrameOutput, Memory, ObjectMemory
from sam2_ros.engine.steps.batching import split_outputs
from sam2_ros.engine.steps.memory_attention import group_by_layout
from sam2_ros.engine.steps.postprocessing import (
    ObjectOnFrame,
    fill_holes,
    frame_results,
    label_image_of,
)
from sam2_ros.engine.steps.sam2_steps import Decoded
from sam2_ros.errors import NoFrameError, StampError
from sam2_ros.imaging.masks import label_image, mask_stats


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
    frame = FrameOutput(obj_ptr=torch.zeros(1, 8), object_score_logits=torch.zeros(1, 1),
                        pred_masks=None, maskmem_features=None, iou=torch.zeros(1))

    def memory(frames: int, pointers: int) -> Memory:
        return Memory([(frame, 0)] * frames, torch.zeros(pointers, 1, 8),
                      torch.zeros(pointers, 1, 8))

    memories = [memory(3, 2), memory(4, 2), memory(3, 2), memory(3, 3)]
    assert group_by_layout(memories) == [[0, 2], [1], [3]]


def test_a_batch_splits_into_independent_outputs() -> None:
    decoded = Decoded(
        pred_masks=torch.randn(2, 1, 4, 4), high_res_masks=torch.randn(2, 1, 16, 16),
        ious=torch.tensor([0.5, 0.9]), obj_ptr=torch.randn(2, 8),
        object_score_logits=torch.tensor([[1.0], [-1.0]]),
    )
    maskmem = torch.randn(2, 4, 2, 2)
    first, second = split_outputs(decoded, decoded.pred_masks, maskmem)
    assert (float(first.iou), float(second.iou)) == (0.5, pytest.approx(0.9))
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


def _output(logits: torch.Tensor, score: float, iou: float) -> FrameOutput:
    return FrameOutput(obj_ptr=torch.zeros(1, 4), object_score_logits=torch.tensor([[score]]),
                       pred_masks=logits[None, None], maskmem_features=None,
                       iou=torch.tensor([iou]))


def test_the_batched_frame_path_matches_per_object_arithmetic() -> None:
    """Upsampling, thresholds, boxes, centroids and the label index of a whole frame in one
    batched step agree with doing each object alone; one host copy of uint8 data."""
    gen = torch.Generator().manual_seed(3)
    hw = (37, 53)  # odd camera size: scaling must not be square
    low = [torch.randn(16, 16, generator=gen) * 4 for _ in range(3)]
    low[1][:, :] = -5.0
    low[1][4:9, 2:6] = 6.0  # a small object overlapping object 1's random blobs
    outputs = [_output(low[0], 2.0, 0.7), _output(low[1], 1.0, 0.9), None,
               _output(low[2], -3.0, 0.2)]  # object 3 has no output, object 4 is hidden
    items = [ObjectOnFrame(ObjectMemory(i + 1), out, i) for i, out in enumerate(outputs)]
    results, transfer = frame_results(items, hw, 0.5, torch.device("cpu"))
    assert [r.object_id for r in results] == [1, 2, 3, 4]
    for r, out in zip(results, outputs, strict=True):
        if out is None:
            assert not r.visible and r.area == 0 and not r.mask.any()
            assert (r.logits == -1024.0).all()
            continue
        want = F.interpolate(out.pred_masks, size=hw, mode="bilinear",
                             align_corners=False)[0, 0].numpy()
        np.testing.assert_array_equal(r.logits, want)
        np.testing.assert_array_equal(r.mask, want > 0.5)
        stats = mask_stats(want > 0.5)
        assert (r.bbox, r.area) == (stats.bbox, stats.area)
        assert r.centroid == pytest.approx(stats.centroid, abs=1e-9)
        assert r.visible == (float(out.object_score_logits) > 0)
        assert r.score == pytest.approx(float(out.iou))
    visible = [r for r in results if r.visible and r.area > 0]
    want_labels = label_image([r.logits for r in visible], [r.object_id for r in visible],
                              0.5, shape=hw)
    assert set(np.unique(want_labels)) == {0, 1, 2}  # the case is not trivial
    np.testing.assert_array_equal(label_image_of(results, hw, 0.5), want_labels)
    # A subset (an object removed since) or another threshold merges from the logits.
    np.testing.assert_array_equal(
        label_image_of(results[1:], hw, 0.5),
        label_image([results[1].logits], [2], 0.5, shape=hw))
    np.testing.assert_array_equal(
        label_image_of(results, hw, 3.0),
        label_image([r.logits for r in visible], [r.object_id for r in visible], 3.0,
                    shape=hw))
    h, w = hw
    assert transfer.syncs == 1
    assert transfer.bytes == 3 * h * w + h * w + 3 * 7 * 8 + 3 * 2 * 4 + 3


@pytest.mark.parametrize("score_elements", [1 << 24, 1000])
def test_bf16_attention_kernel_matches_the_fused_kernel(
    monkeypatch: pytest.MonkeyPatch, score_elements: int
) -> None:
    """engine.memory_attention.attend (two matrix products and a softmax on the CPU in bf16,
    in blocks of query rows when the scores would be large) gives the fused kernel's
    attention to bf16 accuracy; fp32 goes to the fused kernel unchanged."""
    from sam2_ros.engine.steps import memory_attention

    monkeypatch.setattr(memory_attention, "SCORE_ELEMENTS", score_elements)
    monkeypatch.setattr(memory_attention, "BF16_PRODUCTS", True)  # on any CPU
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 1, n, 32, generator=gen) for n in (64, 200, 200))
    reference = F.scaled_dot_product_attention(q, k, v)
    got = memory_attention.attend(q.bfloat16(), k.bfloat16(), v.bfloat16())
    fused = F.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert got.dtype == torch.bfloat16 and got.shape == reference.shape
    err, fused_err = (got.float() - reference).abs(), (fused.float() - reference).abs()
    assert float(err.max()) < 0.05 and float(err.mean()) < 3 * float(fused_err.mean()) + 1e-3
    assert torch.equal(memory_attention.attend(q, k, v), reference)
