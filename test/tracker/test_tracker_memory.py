"""Bounded memory on an endless stream, and the cap on prompted (conditioning) frames."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np
import torch

from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.streaming_tracker import StreamingTracker

LONG_STREAM = 2_000
CHECKPOINT_FRAME = 200
MAX_RSS_GROWTH_MB = 30.0


def _rss_mb() -> float:
    """Resident set size of this process (Linux /proc; psutil is not a dependency)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0  # kB
    raise AssertionError("no VmRSS line in /proc/self/status")


def _live_tensors() -> int:
    gc.collect()
    # type(), not isinstance(): some module proxies warn when asked for __class__.
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def test_memory_is_bounded_on_a_long_stream(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    prompt_history, max_prompt_frames = 8, 4
    # SAM 2's window (tracking_mode motion keeps admitted frames beyond it, bounded too:
    # test_tracking_modes.py).
    tracker = StreamingTracker(
        tiny_model, prompt_history=prompt_history, max_prompt_frames=max_prompt_frames,
        tracking_mode="sam2",
    )
    model = tiny_model.model
    max_non_cond = prompt_history + model.max_obj_ptrs_in_encoder
    # Spatial memories SAM 2 attends to: num_maskmem - 1 recent frames (stride 1 here),
    # kept for the newest frame and for a prompt on the oldest ring frame.
    assert model.memory_temporal_stride_for_eval == 1
    max_maskmem = prompt_history + model.num_maskmem
    counts: dict[str, int] = {}
    rss: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(LONG_STREAM):
        result = tracker.track(frames[i % len(frames)])
        if i == 0:
            tracker.add_prompt(points=[[20, 24]], labels=[1])
        if i == 5:
            tracker.add_prompt(box=[30, 8, 60, 40])
        expected = [] if i == 0 else [1] if i < 6 else [1, 2]  # prompts come after track()
        assert [o.object_id for o in result.objects] == expected
        for obj in tracker.memories.values():
            assert len(obj.cond) <= max_prompt_frames
            assert len(obj.non_cond) <= max_non_cond, (i, obj.object_id, len(obj.non_cond))
            outputs = [*obj.cond.values(), *obj.non_cond.values()]
            kept_masks = sum(o.pred_masks is not None for o in obj.non_cond.values())
            kept_mem = sum(o.maskmem_features is not None for o in outputs)
            assert kept_masks <= prompt_history
            assert kept_mem <= max_maskmem + max_prompt_frames
        if i + 1 == CHECKPOINT_FRAME:
            counts["early"], rss["early"] = _live_tensors(), _rss_mb()
    elapsed = time.perf_counter() - started
    del result
    counts["end"], rss["end"] = _live_tensors(), _rss_mb()
    growth = rss["end"] - rss["early"]
    print(
        f"\n{LONG_STREAM} frames, 2 objects: {elapsed:.1f} s "
        f"({1000 * elapsed / LONG_STREAM:.1f} ms/frame); live tensors at frame "
        f"{CHECKPOINT_FRAME}: {counts['early']}, at the end: {counts['end']}; RSS "
        f"{rss['early']:.1f} MB -> {rss['end']:.1f} MB ({growth:+.1f} MB)"
    )
    # Once both objects have a full memory window (after ~20 frames) every frame adds one
    # output per object and pruning releases one: the set of live tensors is the same.
    assert counts["end"] == counts["early"]
    assert growth < MAX_RSS_GROWTH_MB
    assert tracker.ring_stamps() == list(range(LONG_STREAM - prompt_history, LONG_STREAM))


def test_max_prompt_frames_keeps_the_newest_prompted_frames(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    # add_all_frames_to_correct_as_cond: every prompted frame becomes a conditioning
    # frame (by default a prompt on a frame the object was already tracked on is an
    # ordinary frame refinement, as in SAM 2; see the second half).
    tracker = StreamingTracker(
        tiny_model, max_prompt_frames=3, add_all_frames_to_correct_as_cond=True
    )
    for i in range(6):
        tracker.track(frames[i])
        tracker.add_prompt(object_id=1 if i else None, points=[[20 + i, 24]], labels=[1])
        obj = tracker.memories[1]
        assert sorted(obj.cond) == list(range(max(0, i - 2), i + 1))
    obj = tracker.memories[1]
    assert sorted(obj.cond) == [3, 4, 5]
    # The dropped prompted frames stay attendable as ordinary frames, prompt and all.
    for index in (0, 1, 2):
        assert index in obj.non_cond and obj.non_cond[index].prompted
    frame = tracker.track(frames[6])
    assert sorted(obj.cond) == [3, 4, 5] and frame.objects[0].frames_since_prompt == 1

    default = StreamingTracker(tiny_model, max_prompt_frames=3)
    for i in range(6):
        default.track(frames[i])
        default.add_prompt(object_id=1 if i else None, points=[[20 + i, 24]], labels=[1])
    obj = default.memories[1]
    assert sorted(obj.cond) == [0]
    assert all(obj.non_cond[i].prompted for i in range(1, 6))


def test_the_prompt_just_given_is_never_the_one_dropped(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """At the cap, a prompt on a past frame older than every prompted frame stays prompted;
    the oldest of the others becomes an ordinary frame (SAM 2.1 attends to all prompted
    frames, max_cond_frames_in_attn -1: the cap is this project's bound, so it must not
    throw away what the user just said)."""
    tracker = StreamingTracker(tiny_model, max_prompt_frames=2,
                               add_all_frames_to_correct_as_cond=True)
    for i in range(5):
        tracker.track(frames[i], 100 + i)
    tracker.add_prompt(points=[[20, 24]], labels=[1], stamp=103)  # new object on frame 3
    tracker.add_prompt(object_id=1, points=[[22, 24]], labels=[1], stamp=104)
    result = tracker.add_prompt(object_id=1, points=[[18, 24]], labels=[1], stamp=101)
    obj = tracker.memories[1]
    assert result.frame_index == 1
    assert sorted(obj.cond) == [1, 4]  # frame 1 (just prompted) kept, frame 3 moved out
    assert obj.non_cond[3].prompted
