"""What a frame makes the host wait for, counted where it happens (issue 23 point 10).

On a GPU every copy to the host, every blocking copy to the device and every explicit
synchronisation stalls the device's queue. These run on the CPU, where nothing stalls, and
check that the tracker does on any device only what a GPU would pay for, and counts it.
"""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pytest
import torch

from sam2_ros.engine.memory_bank import FrameOutput, ObjectMemory, assemble_memory
from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.results import StageTiming
from sam2_ros.engine.steps.memory_attention import ATTENTION_TOKENS, MemoryAttentionRunner
from sam2_ros.engine.steps.postprocessing import ObjectOnFrame, fill_holes, frame_results
from sam2_ros.engine.steps.preprocessing import frame_to_tensor
from sam2_ros.engine.steps.sam2_steps import Sam2Steps
from sam2_ros.engine.streaming_tracker import StreamingTracker

CLICKS = ([[20.0, 24.0]], [[44.0, 30.0]])


def _two_objects(tracker: StreamingTracker, frames: list[np.ndarray]) -> None:
    tracker.track(frames[0], 100)
    for click in CLICKS:
        tracker.add_prompt(points=click, labels=[1])


@pytest.mark.parametrize(("fill_hole_area", "profile", "syncs"), [
    (0, False, 1),  # the results' one copy to the host
    (8, False, 2),  # and hole filling's copy (one for both objects: one decode batch)
    (8, True, 9),  # and 7 stage syncs: encoder 2, attention + decoder 3, memory encoder 2
])
def test_a_frame_counts_every_host_wait(
    tiny_model: LoadedModel, frames: list[np.ndarray], fill_hole_area: int, profile: bool,
    syncs: int,
) -> None:
    tracker = StreamingTracker(tiny_model, fill_hole_area=fill_hole_area,
                               profile_stages=profile)
    _two_objects(tracker, frames)
    result = tracker.track(frames[1], 101)
    assert len(result.objects) == 2
    assert result.transfer.syncs == syncs
    assert result.transfer is result.timing.transfer


def test_stage_syncs_only_when_profiling(
    tiny_model: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CUDA device Sam2Steps waits for the device only when profiling stages."""
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: calls.append(1))
    on_gpu = dataclasses.replace(tiny_model, device=torch.device("cuda"))
    for profile, waits in ((False, 0), (True, 2)):
        steps = Sam2Steps(on_gpu, profile_stages=profile)
        timing = StageTiming()
        steps.sync(timing)
        steps.sync(timing)
        assert len(calls) == waits and timing.transfer.syncs == waits
        calls.clear()


def test_attention_budget_is_per_device(tiny_model: LoadedModel) -> None:
    """The token budget was measured on 2 CPU cores; on a GPU one call per object would
    leave the device idle, so there every object of a layout shares one call."""
    model = tiny_model.model
    assert MemoryAttentionRunner(model, torch.device("cpu")).attention_tokens == ATTENTION_TOKENS
    assert MemoryAttentionRunner(model, torch.device("cuda")).attention_tokens == 0


def test_copies_to_the_device_do_not_block(
    tiny_model: LoadedModel, frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-frame copies from the host to the device (the image, the object-pointer
    positions, hole masks) are non-blocking: a blocking one waits for the GPU's queue
    first. Inside these three functions every ``.to(device)`` is such a copy."""
    tracker = StreamingTracker(tiny_model)
    _two_objects(tracker, frames)
    tracker.track(frames[1], 101)
    copies = []
    original = torch.Tensor.to

    def recording_to(self, *args, **kwargs):
        target = kwargs.get("device", args[0] if args else None)
        if isinstance(target, torch.device | str):
            copies.append(bool(kwargs.get("non_blocking", False)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", recording_to)
    device = tiny_model.device
    frame_to_tensor(frames[2], tiny_model.image_size, device)
    assemble_memory(tiny_model.model, tracker.memories[1], 2, device)
    logits = torch.full((1, 1, 16, 16), 5.0)
    logits[0, 0, 4, 4] = -5.0  # a one-pixel hole
    assert fill_holes(logits, 8)[0, 0, 4, 4] == pytest.approx(0.1)
    assert len(copies) == 3 and all(copies), copies


def test_results_do_not_keep_camera_size_logits(tiny_model: LoadedModel) -> None:
    """A frame's results live until the next frame; they must not hold every object's
    camera-size float logits on the device meanwhile (they are made again on request)."""
    hw = (37, 53)
    gen = torch.Generator().manual_seed(1)
    outs = [FrameOutput(obj_ptr=torch.zeros(1, 4), object_score_logits=torch.ones(1, 1),
                        pred_masks=torch.randn(1, 1, 16, 16, generator=gen),
                        maskmem_features=None, iou=torch.tensor([0.5])) for _ in range(3)]
    items = [ObjectOnFrame(ObjectMemory(i + 1), out, 0) for i, out in enumerate(outs)]
    results, _ = frame_results(items, hw, 0.0, torch.device("cpu"))
    gc.collect()
    camera_size = [o for o in gc.get_objects()
                   if issubclass(type(o), torch.Tensor) and tuple(o.shape[-2:]) == hw]
    assert camera_size == []
    assert results[1].logits.shape == hw  # still there on request
