"""What a frame makes the host wait for, counted where it happens (issue 23 point 10).

On a GPU every copy to the host, every blocking copy to the device and every explicit
synchronisation stalls the device's queue. These run on the CPU, where nothing stalls, and
check that the tracker does on any device only what a GPU would pay for, and counts it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.memory_bank import FrameOutput, ObjectMemory, assemble_memory
from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.prompts import check_prompt, mask_inputs, point_inputs
from sam2_ros.engine.results import HostTransfer, StageTiming
from sam2_ros.engine.steps.memory_attention import ATTENTION_TOKENS, MemoryAttentionRunner
from sam2_ros.engine.steps.postprocessing import (
    ObjectOnFrame,
    fill_holes,
    fill_holes_on_device,
    frame_results,
)
from sam2_ros.engine.steps.preprocessing import frame_to_tensor
from sam2_ros.engine.steps.sam2_steps import Sam2Steps
from sam2_ros.engine.streaming_tracker import StreamingTracker

CLICKS = ([[20.0, 24.0]], [[44.0, 30.0]], [[10.0, 10.0]], [[50.0, 10.0]])

#: Tensor methods through which the host reads a device tensor (each waits on a GPU).
HOST_READS = ("cpu", "item", "tolist", "__bool__", "__float__", "__int__", "__index__",
              "nonzero")


@contextlib.contextmanager
def observed_reads() -> Iterator[list[str]]:
    """Every host read of a tensor made in the block, by method name (on a CPU the
    tensors are host tensors, so this sees what a GPU would wait for)."""
    seen: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def recording(name):
        def method(self, *args, **kwargs):
            seen.append(name)
            return originals[name](self, *args, **kwargs)
        return method

    try:
        for name in HOST_READS:
            setattr(torch.Tensor, name, recording(name))
        yield seen
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def _objects(tracker: StreamingTracker, frames: list[np.ndarray], count: int = 2) -> None:
    tracker.track(frames[0], 100)
    for click in CLICKS[:count]:
        tracker.add_prompt(points=click, labels=[1])


def _two_objects(tracker: StreamingTracker, frames: list[np.ndarray]) -> None:
    _objects(tracker, frames, 2)


#: At most this many host waits per tracked frame, in any mode and at any object count.
MAX_WAITS = 3


@pytest.mark.parametrize(("mode", "count", "waits"), [
    ("sam2", 1, 1), ("sam2", 2, 1), ("sam2", 4, 1),
    # motion: the policy's numbers ride with the results' copy; from two objects on, one
    # more wait for their masks (and one more on a frame that prompts a lost object).
    ("motion", 1, 1), ("motion", 2, 2), ("motion", 4, 2),
])
def test_each_host_read_is_counted(
    tiny_model: LoadedModel, frames: list[np.ndarray], mode: str, count: int, waits: int
) -> None:
    """The tracker's own count of a frame's host waits is every read of a tensor it made
    (seen by wrapping torch's reading methods); no copy to the device blocks."""
    tracker = StreamingTracker(tiny_model, tracking_mode=mode)
    _objects(tracker, frames, count)
    for i in range(1, 4):
        tracker.track(frames[i], 100 + i)
    with observed_reads() as seen:
        result = tracker.track(frames[4], 104)
    assert len(result.objects) == count
    assert result.transfer.syncs == waits == len(seen), seen
    assert waits <= MAX_WAITS
    assert result.transfer.uploads >= 1  # the frame
    assert result.transfer.upload_bytes >= 3 * 64 * 64 * 4


def test_prompts_and_retracking_are_counted(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """A prompt on a past frame counts the re-tracked frames' waits too."""
    tracker = StreamingTracker(tiny_model, tracking_mode="motion")
    _objects(tracker, frames, 1)
    for i in range(1, 6):
        tracker.track(frames[i], 100 + i)
    with observed_reads() as seen:
        result = tracker.add_prompt(object_id=1, points=CLICKS[2], labels=[1], stamp=102)
    assert result.retracked_frames == 3
    # The prompt's own read, one per re-tracked frame, the newest frame's results and the
    # prompted frame's own result.
    assert len(seen) == result.timing.transfer.syncs == 1 + 3 + 2


@pytest.mark.parametrize(("fill_hole_area", "profile", "syncs"), [
    (0, False, 1),  # the results' one copy to the host
    (8, False, 1),  # hole filling runs where the logits are: no round trip
    (8, True, 8),  # and 7 stage syncs: encoder 2, attention + decoder 3, memory encoder 2
])
def test_a_frame_counts_every_host_wait(
    tiny_model: LoadedModel, frames: list[np.ndarray], fill_hole_area: int, profile: bool,
    syncs: int,
) -> None:
    tracker = StreamingTracker(tiny_model, fill_hole_area=fill_hole_area,
                               profile_stages=profile, tracking_mode="sam2")
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
    for device, tokens in (("cpu", ATTENTION_TOKENS), ("cuda", 0)):
        runner = MemoryAttentionRunner(model.memory_attention, model.maskmem_tpos_enc,
                                       torch.device(device))
        assert runner.attention_tokens == tokens


def test_copies_to_the_device_do_not_block(
    tiny_model: LoadedModel, frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copies from the host to the device (the image, the object-pointer positions,
    a click, a mask prompt) are non-blocking: a blocking one waits for the GPU's queue
    first. Inside these functions every ``.to(device)`` is such a copy."""
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
    assemble_memory(tiny_model.facts, tracker.memories[1], 2, device,
                    project=tracker._steps.project_pointer_pos)
    click = check_prompt((48, 64), [[20.0, 24.0]], [1])
    point_inputs(click, (48, 64), tiny_model.image_size, device)
    mask = np.zeros((48, 64), bool)
    mask[10:20, 10:20] = True
    mask_inputs(mask, tiny_model.image_size, device)
    assert len(copies) == 5 and all(copies), copies


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


@pytest.mark.parametrize("max_area", [1, 3, 8, 20])
def test_hole_filling_on_the_device_is_opencvs(max_area: int) -> None:
    """The device path (no host round trip) fills exactly the holes OpenCV's 8-connected
    components find, on random masks of every density, and reads nothing."""
    gen = torch.Generator().manual_seed(max_area)
    for density in (0.3, 0.5, 0.7, 0.85):
        noise = torch.randn(5, 1, 40, 33, generator=gen)
        logits = noise + 3.0 * (torch.rand(5, 1, 40, 33, generator=gen) < density) - 1.5
        transfer = HostTransfer()
        with host_sync.counting(transfer), observed_reads() as seen:
            on_device = fill_holes_on_device(logits, max_area)
        assert seen == [] and transfer.syncs == 0
        assert torch.equal(on_device, fill_holes(logits, max_area))
