"""Bad input to the streaming tracker: the right error, a useful message, and no state change.

Every case runs one scripted scenario on a fresh tracker with one bad call inserted, and
then compares the tracker with a twin that ran the same scenario without the bad call:
the next frame's logits of every object must be bit-identical (np.array_equal), and so
must everything else the tracker exposes (ids, labels, frame ring, frame index, the id a
new object gets). A call that fails half-way through and leaves anything behind shows up
here as a difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.results import FrameResult
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import (
    FrameError,
    NoFrameError,
    PromptError,
    StampError,
    TooManyObjectsError,
    TrackerError,
    UnknownObjectError,
)

# Scenario: max_objects=2, prompt_history=3; frames with stamps 100, 200, ...
MAX_OBJECTS = 2
PROMPT_HISTORY = 3
STAMP_STEP = 100


def _stamp(i: int) -> int:
    return (i + 1) * STAMP_STEP


@dataclass
class Snapshot:
    """Everything observable about a tracker after the scenario's last frame."""

    frame: FrameResult
    object_ids: list[int]
    labels: dict[int, str]
    ring: list[int]
    latest: dict[int, np.ndarray]
    new_id: int
    new_object_logits: np.ndarray
    after_new: FrameResult


BadCall = Callable[[StreamingTracker, list[np.ndarray]], Any]


def _scenario(
    model: LoadedModel,
    frames: list[np.ndarray],
    bad: BadCall | None = None,
    when: str = "end",
    expected: type[TrackerError] = TrackerError,
    match: str = "",
) -> Snapshot:
    """Run the scripted stream; insert ``bad`` at the start or the end if given."""
    tracker = StreamingTracker(model, max_objects=MAX_OBJECTS, prompt_history=PROMPT_HISTORY)

    def bad_call() -> None:
        if bad is not None:
            with pytest.raises(expected, match=match):
                bad(tracker, frames)

    if when == "start":
        bad_call()
    tracker.track(frames[0], _stamp(0))
    tracker.track(frames[1], _stamp(1))
    first = tracker.add_prompt(points=[[20, 20]], labels=[1], stamp=_stamp(1), label="one")
    assert first.object_id == 1
    for i in (2, 3, 4):
        tracker.track(frames[i], _stamp(i))
    second = tracker.add_prompt(box=[30, 10, 50, 30], label="two")
    assert second.object_id == 2
    # A click on the newest frame: object 1 now has point inputs there (a refinement).
    tracker.add_prompt(object_id=1, points=[[25, 22]], labels=[0])
    assert tracker.ring_stamps() == [_stamp(2), _stamp(3), _stamp(4)]
    if when == "end":
        bad_call()
    frame = tracker.track(frames[5], _stamp(5))
    snapshot_ids = tracker.object_ids
    labels = tracker.labels()
    ring = tracker.ring_stamps()
    latest = {r.object_id: r.logits for r in tracker.latest_results()}
    # Which id does the next new object get? (a failed new-object prompt must not use one)
    tracker.remove([2])
    new = tracker.add_prompt(points=[[40, 30]], labels=[1])
    after_new = tracker.track(frames[6], _stamp(6))
    return Snapshot(
        frame, snapshot_ids, labels, ring, latest, new.object_id, new.result.logits, after_new
    )


def _assert_same(got: Snapshot, want: Snapshot) -> None:
    assert got.frame.frame_index == want.frame.frame_index
    assert got.frame.stamp == want.frame.stamp
    assert got.object_ids == want.object_ids == [1, 2]
    assert got.labels == want.labels == {1: "one", 2: "two"}
    assert got.ring == want.ring
    assert [o.object_id for o in got.frame.objects] == [o.object_id for o in want.frame.objects]
    for g, w in zip(got.frame.objects, want.frame.objects, strict=True):
        assert np.array_equal(g.logits, w.logits), f"object {g.object_id} logits differ"
        assert g.score == w.score and g.visible == w.visible and g.tracked == w.tracked
        assert g.frames_since_prompt == w.frames_since_prompt
    assert got.latest.keys() == want.latest.keys()
    for object_id, logits in got.latest.items():
        assert np.array_equal(logits, want.latest[object_id])
    assert got.new_id == want.new_id == 3
    assert np.array_equal(got.new_object_logits, want.new_object_logits)
    for g, w in zip(got.after_new.objects, want.after_new.objects, strict=True):
        assert g.object_id == w.object_id
        assert np.array_equal(g.logits, w.logits), f"object {g.object_id} logits differ"


@pytest.fixture(scope="module")
def reference(tiny_model: LoadedModel, _scene_frames: tuple[np.ndarray, ...]) -> Snapshot:
    """The twin: the scenario without any bad call."""
    return _scenario(tiny_model, list(_scene_frames))


def test_scenario_is_deterministic(
    tiny_model: LoadedModel, frames: list[np.ndarray], reference: Snapshot
) -> None:
    """The twin comparison only means something if two clean runs are bit-identical."""
    _assert_same(_scenario(tiny_model, frames), reference)


def _frame(dtype: Any = np.uint8, shape: tuple[int, ...] = (48, 64, 3), fill: float = 0) -> Any:
    return np.full(shape, fill, dtype=dtype)


def _float_frame_with_nan(tracker: StreamingTracker, frames: list[np.ndarray]) -> None:
    frame = frames[5].astype(np.float32) / 255.0
    frame[3, 4, 1] = np.nan
    tracker.track(frame, _stamp(5))


def _float_frame_out_of_range(tracker: StreamingTracker, frames: list[np.ndarray]) -> None:
    frame = frames[5].astype(np.float32)  # 0..255 instead of 0..1
    tracker.track(frame, _stamp(5))


# (id, bad call, when, error class, regex the message must match)
CASES: list[tuple[str, BadCall, str, type[TrackerError], str]] = [
    # ---- frames
    (
        "frame_int32",
        lambda t, f: t.track(f[5].astype(np.int32), _stamp(5)),
        "end",
        FrameError,
        r"dtype must be uint8.*int32",
    ),
    (
        "frame_2d",
        lambda t, f: t.track(f[5][:, :, 0], _stamp(5)),
        "end",
        FrameError,
        r"HxWx3.*\(48, 64\)",
    ),
    (
        "frame_4_channels",
        lambda t, f: t.track(_frame(shape=(48, 64, 4)), _stamp(5)),
        "end",
        FrameError,
        r"3 channels.*got 4",
    ),
    (
        "frame_empty",
        lambda t, f: t.track(_frame(shape=(0, 64, 3)), _stamp(5)),
        "end",
        FrameError,
        r"empty",
    ),
    ("frame_float_nan", _float_frame_with_nan, "end", FrameError, r"NaN"),
    ("frame_float_out_of_range", _float_frame_out_of_range, "end", FrameError, r"\[0, 1\]"),
    (
        "frame_not_array",
        lambda t, f: t.track(f[5].tolist(), _stamp(5)),
        "end",
        FrameError,
        r"numpy array.*list",
    ),
    # ---- prompts
    (
        "point_outside_x",
        lambda t, f: t.add_prompt(object_id=1, points=[[10, 10], [64, 5]], labels=[1, 1]),
        "end",
        PromptError,
        r"point \(64, 5\) is outside the 64x48 image",
    ),
    (
        "point_outside_negative_y",
        lambda t, f: t.add_prompt(object_id=1, points=[[10, -1]], labels=[1]),
        "end",
        PromptError,
        r"point \(10, -1\) is outside",
    ),
    (
        "point_nan",
        lambda t, f: t.add_prompt(object_id=1, points=[[np.nan, 3]], labels=[1]),
        "end",
        PromptError,
        r"NaN",
    ),
    (
        "points_labels_length",
        lambda t, f: t.add_prompt(object_id=1, points=[[10, 10], [20, 20]], labels=[1]),
        "end",
        PromptError,
        r"2 points but 1 labels",
    ),
    (
        "labels_without_points",
        lambda t, f: t.add_prompt(object_id=1, labels=[1]),
        "end",
        PromptError,
        r"0 points but 1 labels",
    ),
    (
        "label_value_2",
        lambda t, f: t.add_prompt(object_id=1, points=[[10, 10], [20, 20]], labels=[1, 2]),
        "end",
        PromptError,
        r"labels must be 1 \(positive\) or 0 \(negative\); got 2",
    ),
    (
        "box_inverted",
        lambda t, f: t.add_prompt(object_id=2, box=[50, 30, 30, 10], clear_previous=True),
        "end",
        PromptError,
        r"box \(50, 30, 30, 10\) is inverted or empty",
    ),
    (
        "box_zero_area",
        lambda t, f: t.add_prompt(object_id=2, box=[10, 10, 10, 20], clear_previous=True),
        "end",
        PromptError,
        r"box \(10, 10, 10, 20\) is inverted or empty",
    ),
    (
        "box_outside",
        lambda t, f: t.add_prompt(object_id=2, box=[70, 10, 90, 20], clear_previous=True),
        "end",
        PromptError,
        r"lies outside the image",
    ),
    (
        "box_three_numbers",
        lambda t, f: t.add_prompt(object_id=2, box=[1, 2, 3], clear_previous=True),
        "end",
        PromptError,
        r"box must be 4 finite numbers",
    ),
    (
        "empty_prompt",
        lambda t, f: t.add_prompt(object_id=1),
        "end",
        PromptError,
        r"empty prompt",
    ),
    (
        "mask_wrong_size",
        lambda t, f: t.add_prompt(object_id=1, mask=np.ones((24, 32), bool)),
        "end",
        PromptError,
        r"mask is 32x24 but the frame is 64x48",
    ),
    (
        "mask_3d",
        lambda t, f: t.add_prompt(object_id=2, mask=np.ones((48, 64, 1), bool)),
        "end",
        PromptError,
        r"mask must be 2-D",
    ),
    (
        "mask_all_zero",
        lambda t, f: t.add_prompt(object_id=1, mask=np.zeros((48, 64), np.uint8)),
        "end",
        PromptError,
        r"all zero",
    ),
    (
        "mask_and_points",
        lambda t, f: t.add_prompt(
            object_id=1, mask=np.ones((48, 64), bool), points=[[5, 5]], labels=[1]
        ),
        "end",
        PromptError,
        r"either a mask or points/box",
    ),
    (
        "box_after_clicks",
        lambda t, f: t.add_prompt(object_id=1, box=[10, 10, 30, 30]),
        "end",
        PromptError,
        r"box must come before any click.*clear_previous",
    ),
    # ---- object ids
    (
        "unknown_id_add_prompt",
        lambda t, f: t.add_prompt(object_id=7, points=[[5, 5]], labels=[1]),
        "end",
        UnknownObjectError,
        r"unknown object id 7 \(known ids: \[1, 2\]\)",
    ),
    (
        "unknown_id_remove",
        lambda t, f: t.remove([7]),
        "end",
        UnknownObjectError,
        r"unknown object id 7",
    ),
    (
        "unknown_id_reset",
        lambda t, f: t.reset([7]),
        "end",
        UnknownObjectError,
        r"unknown object id 7",
    ),
    (
        "remove_known_and_unknown",
        lambda t, f: t.remove([1, 7, 2]),
        "end",
        UnknownObjectError,
        r"unknown object id 7",
    ),
    (
        "reset_known_and_unknown",
        lambda t, f: t.reset([2, 7]),
        "end",
        UnknownObjectError,
        r"unknown object id 7",
    ),
    (
        "too_many_objects",
        lambda t, f: t.add_prompt(points=[[5, 5]], labels=[1]),
        "end",
        TooManyObjectsError,
        r"already tracking 2 objects \(max_objects=2\)",
    ),
    # ---- stamps
    (
        "prompt_stamp_older_than_ring",
        lambda t, f: t.add_prompt(object_id=1, points=[[5, 5]], labels=[1], stamp=_stamp(0)),
        "end",
        StampError,
        r"stamp 100 is older than the 3 frames kept.*oldest 300.*prompt_history",
    ),
    (
        "prompt_stamp_not_kept",
        lambda t, f: t.add_prompt(object_id=1, points=[[5, 5]], labels=[1], stamp=350),
        "end",
        StampError,
        r"no kept frame has stamp 350 \(kept: 300 .. 500\)",
    ),
    (
        "prompt_stamp_newer_than_newest",
        lambda t, f: t.add_prompt(object_id=1, points=[[5, 5]], labels=[1], stamp=_stamp(5)),
        "end",
        StampError,
        r"stamp 600 is newer than the newest frame \(500\)",
    ),
    (
        "track_stamp_equal",
        lambda t, f: t.track(f[5], _stamp(4)),
        "end",
        StampError,
        r"frame stamp 500 is not after the previous frame's 500",
    ),
    (
        "track_stamp_older",
        lambda t, f: t.track(f[5], _stamp(1)),
        "end",
        StampError,
        r"frame stamp 200 is not after the previous frame's 500",
    ),
    (
        "prompt_before_any_frame",
        lambda t, f: t.add_prompt(points=[[5, 5]], labels=[1]),
        "start",
        NoFrameError,
        r"no frame has been tracked yet",
    ),
    (
        "unknown_id_before_any_frame",
        lambda t, f: t.remove([1]),
        "start",
        UnknownObjectError,
        r"unknown object id 1 \(known ids: none\)",
    ),
]


@pytest.mark.parametrize(
    ("bad", "when", "expected", "match"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_raises_and_changes_nothing(
    tiny_model: LoadedModel,
    frames: list[np.ndarray],
    reference: Snapshot,
    bad: BadCall,
    when: str,
    expected: type[TrackerError],
    match: str,
) -> None:
    got = _scenario(tiny_model, frames, bad, when, expected, match)
    _assert_same(got, reference)


def test_every_error_is_a_value_error() -> None:
    """Callers catch TrackerError (a ValueError) to turn bad input into a failed response."""
    for error in (
        FrameError,
        PromptError,
        UnknownObjectError,
        StampError,
        NoFrameError,
        TooManyObjectsError,
    ):
        assert issubclass(error, TrackerError) and issubclass(error, ValueError)


def test_remove_with_one_unknown_id_removes_nothing(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    tracker = StreamingTracker(tiny_model)
    tracker.track(frames[0])
    ids = [tracker.add_prompt(points=[[10 + 10 * i, 20]], labels=[1]).object_id for i in range(3)]
    assert ids == [1, 2, 3]
    with pytest.raises(UnknownObjectError, match="unknown object id 9"):
        tracker.remove([1, 9, 3])
    assert tracker.object_ids == [1, 2, 3]
    assert [r.object_id for r in tracker.latest_results()] == [1, 2, 3]
    assert [o.object_id for o in tracker.track(frames[1]).objects] == [1, 2, 3]
    with pytest.raises(UnknownObjectError):
        tracker.reset([2, 9])
    assert all(o.tracked for o in tracker.track(frames[2]).objects)
    # The same call with known ids only works.
    assert tracker.remove([1, 3]) == [2]


@pytest.mark.parametrize(
    "kwargs", [{"max_objects": 0}, {"prompt_history": 0}, {"max_prompt_frames": 1}]
)
def test_bad_constructor_arguments(tiny_model: LoadedModel, kwargs: dict[str, int]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        StreamingTracker(tiny_model, **kwargs)
