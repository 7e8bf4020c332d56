"""Prompts on camera frames the tracker never tracked, and object ids on an endless stream."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.streaming_tracker import MAX_OBJECT_ID, StreamingTracker
from sam2_ros.errors import StampError, UnknownObjectError

CLICK = [[40.0, 30.0]]


def _stamp(i: int) -> int:
    return 1_000 + 10 * i


def test_prompt_on_a_dropped_frame_uses_that_frame(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """Frames 0, 2, 4 are tracked; 3 was dropped. A click naming frame 3's stamp, with its
    image, is decoded on frame 3 itself: the same mask as a click on frame 3 tracked alone
    (a new object starts from the prompt alone, as in SAM 2), reported at its stamp; frame 3
    joins the kept frames in stamp order."""
    tracker = StreamingTracker(tiny_model, prompt_history=8)
    for i in (0, 2, 4):
        tracker.track(frames[i], _stamp(i))
    result = tracker.add_prompt(points=CLICK, labels=[1], stamp=_stamp(3), frame=frames[3])
    assert result.stamp == _stamp(3)
    assert result.frame_index == 2  # inserted after frame 2 (index 1); frame 4 moved to 3
    assert result.retracked_frames == 1  # frame 4 re-tracked with the new memory
    assert tracker.ring_stamps() == [_stamp(i) for i in (0, 2, 3, 4)]

    alone = StreamingTracker(tiny_model)
    alone.track(frames[3], _stamp(3))
    expected = alone.add_prompt(points=CLICK, labels=[1])
    np.testing.assert_allclose(result.result.logits, expected.result.logits, atol=1e-5)

    # The object is tracked from then on.
    after = tracker.track(frames[5], _stamp(5))
    assert [o.object_id for o in after.objects] == [result.object_id]
    assert after.objects[0].tracked


def test_dropped_frame_prompt_needs_a_stamp_inside_the_kept_frames(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    tracker = StreamingTracker(tiny_model, prompt_history=2)
    for i in (1, 3, 5):
        tracker.track(frames[i], _stamp(i))  # keeps frames 3 and 5
    with pytest.raises(StampError, match="older than the oldest kept frame"):
        tracker.add_prompt(points=CLICK, labels=[1], stamp=_stamp(2), frame=frames[2])
    with pytest.raises(StampError, match="newer than the newest tracked frame"):
        tracker.add_prompt(points=CLICK, labels=[1], stamp=_stamp(6), frame=frames[6])
    assert tracker.object_ids == []  # nothing half-applied
    # A tracked stamp ignores the image given with it.
    result = tracker.add_prompt(points=CLICK, labels=[1], stamp=_stamp(3), frame=frames[0])
    assert result.frame_index == 1 and result.stamp == _stamp(3)


def test_object_ids_stay_within_the_label_image(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    tracker = StreamingTracker(tiny_model, max_objects=3)
    tracker.track(frames[0], _stamp(0))
    first = tracker.add_prompt(points=CLICK, labels=[1]).object_id
    assert first == 1
    tracker._next_id = MAX_OBJECT_ID  # as after 65,534 objects created and removed
    last = tracker.add_prompt(points=CLICK, labels=[1]).object_id
    wrapped = tracker.add_prompt(points=CLICK, labels=[1]).object_id
    assert last == MAX_OBJECT_ID
    assert wrapped == 2  # the smallest id not in use
    assert len(set(tracker.object_ids)) == 3
    tracker.reset()
    tracker.track(frames[1], _stamp(1))
    assert tracker.add_prompt(points=CLICK, labels=[1]).object_id == 1  # reused after reset


@contextlib.contextmanager
def _frame_in_progress(tracker: StreamingTracker) -> Iterator[None]:
    """Another thread holds the tracker, as a frame in progress does, until the block ends
    (without the frame's end, which applies what was queued)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with tracker.lock:
            held.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        worker.join(10)


def _two_objects(tracker: StreamingTracker, frame: np.ndarray) -> tuple[int, int]:
    tracker.track(frame, _stamp(0))
    one = tracker.add_prompt(points=CLICK, labels=[1]).object_id
    return one, tracker.add_prompt(points=[[10.0, 10.0]], labels=[1]).object_id


def test_reset_and_remove_do_not_wait_for_a_frame_in_progress(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """While another thread holds the tracker (a frame in progress), reset and remove answer
    at once; they take effect when that frame ends."""
    tracker = StreamingTracker(tiny_model)
    one, two = _two_objects(tracker, frames[0])
    with _frame_in_progress(tracker):
        assert tracker.remove([one], wait=False) == [two]
        assert tracker.reset([two], wait=False) is False  # queued, not applied yet
        with pytest.raises(Exception, match="unknown object id 99"):
            tracker.remove([99], wait=False)
        # Requests queued behind the frame meet the ids as the queue before them leaves them.
        with pytest.raises(UnknownObjectError, match=f"unknown object id {one}"):
            tracker.reset([one], wait=False)
        with pytest.raises(UnknownObjectError, match=f"unknown object id {one}"):
            tracker.remove([one], wait=False)  # its removal is queued: not twice
    # What was queued holds for every later read, even before the next frame.
    assert tracker.object_ids == [two] and tracker.labels() == {two: ""}
    result = tracker.track(frames[1], _stamp(1))
    assert [o.object_id for o in result.objects] == [two]
    assert not result.objects[0].tracked  # its memory was cleared at the end of the frame


def test_a_removal_queued_behind_a_frame_counts_for_the_next_caller(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """A removal queued while a frame ran, and not yet applied when it ended, is applied
    before the next remove or reset: an id is never removed twice."""
    tracker = StreamingTracker(tiny_model)
    one, two = _two_objects(tracker, frames[0])
    with _frame_in_progress(tracker):
        assert tracker.remove([one], wait=False) == [two]
    with pytest.raises(UnknownObjectError, match=f"unknown object id {one}"):
        tracker.remove([one])
    with pytest.raises(UnknownObjectError, match=f"unknown object id {one}"):
        tracker.reset([one])
    assert tracker.remove([two]) == []


def test_track_states() -> None:
    from sam2_ros.track_state import LOST, OCCLUDED, TRACKING, TrackStates

    states = TrackStates(occluded_frames=2)
    seen = {1: True, 2: True}
    assert states.update(0, seen) == {1: (TRACKING, 0.0), 2: (TRACKING, 0.0)}
    assert states.update(10**9, {1: False, 2: True})[1] == (OCCLUDED, 1.0)
    assert states.update(2 * 10**9, {1: False, 2: True})[1] == (OCCLUDED, 2.0)
    now = states.update(3 * 10**9, {1: False, 2: True})
    assert now[1] == (LOST, 3.0) and now[2] == (TRACKING, 0.0)
    assert states.lost_for(2.5, now) == [1] and states.lost_for(5.0, now) == []
    assert states.update(4 * 10**9, {2: True}) == {2: (TRACKING, 0.0)}  # 1 was removed


NEGATIVE = [[44.0, 30.0]]
SECOND_NEGATIVE = [[36.0, 26.0]]


def _correct_twice(tracker: StreamingTracker, stamp: int, frame: np.ndarray | None) -> list:
    """Two negative clicks, one after the other, on object 1 at ``stamp``."""
    return [
        tracker.add_prompt(object_id=1, points=clicks, labels=[0], stamp=stamp, frame=frame)
        for clicks in (NEGATIVE, SECOND_NEGATIVE)
    ]


def test_correction_on_a_dropped_frame_equals_it_on_a_tracked_frame(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """An existing object corrected on a dropped frame: the frame is first tracked with the
    object's memory, then the clicks refine that mask as on any tracked frame (SAM 2's
    refinement, not a re-initialisation from the clicks alone). Same masks as when frame 3
    had been tracked, for both clicks, and frame 4 then tracked from the corrected memory."""
    in_time = StreamingTracker(tiny_model)
    for i in range(4):
        in_time.track(frames[i], _stamp(i))
        if i == 0:
            in_time.add_prompt(points=CLICK, labels=[1])
    want = _correct_twice(in_time, _stamp(3), None)
    want_next = in_time.track(frames[4], _stamp(4)).objects

    dropped = StreamingTracker(tiny_model)
    for i in (0, 1, 2, 4):  # frame 3 dropped: the model was busy
        dropped.track(frames[i], _stamp(i))
        if i == 0:
            dropped.add_prompt(points=CLICK, labels=[1])
    got = _correct_twice(dropped, _stamp(3), frames[3])

    for g, w in zip(got, want, strict=True):
        assert g.stamp == _stamp(3) and g.object_id == 1
        np.testing.assert_allclose(g.result.logits, w.result.logits, atol=1e-5)
        assert g.result.area == w.result.area
    assert got[0].retracked_frames == 1  # frame 4, from the corrected memory
    np.testing.assert_allclose(dropped.latest_results()[0].logits, want_next[0].logits,
                               atol=1e-5)
    assert dropped.ring_stamps() == [_stamp(i) for i in range(5)]  # frame 3 kept, in order


def test_correction_on_a_dropped_frame_keeps_the_prompted_frames(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """Object 1 prompted on frame 2, frame 3 dropped, a correction named on frame 3: frame
    2's prompt stays as it was (it used to be replaced by the correction); object 2, also
    tracked then, gets its output on frame 3 and keeps everything it had."""
    tracker = StreamingTracker(tiny_model)
    for i in (0, 2):
        tracker.track(frames[i], _stamp(i))
    tracker.add_prompt(points=[[20.0, 24.0]], labels=[1])  # object 1 on frame 2
    tracker.add_prompt(points=CLICK, labels=[1])  # object 2 on frame 2
    tracker.track(frames[4], _stamp(4))
    one, two = tracker.memories[1], tracker.memories[2]
    prompted = one.cond[1]
    two_before = dict(two.cond), dict(two.non_cond)
    result = tracker.add_prompt(object_id=1, points=NEGATIVE, labels=[0], stamp=_stamp(3),
                                frame=frames[3])
    assert result.frame_index == 2  # between frame 2 (index 1) and frame 4 (now index 3)
    assert one.cond == {1: prompted}
    assert one.non_cond[2].refined and one.non_cond[2].prompted
    assert two.cond == two_before[0]
    assert two.non_cond[3] is two_before[1][2]  # frame 4 moved up one index, unchanged
    assert 2 in two.non_cond and not two.non_cond[2].prompted  # tracked on frame 3
