"""Frame stamps and track states without a node: the stamp policy the tracker and the node
share, the tracker's generation of full resets, the track-state bookkeeping, and a prompt's
wait for a frame, which must never hold up the camera thread."""

from __future__ import annotations

import threading
import time

import pytest
from geometry_msgs.msg import Point
from sam2_ros.srv import AddPrompt

from sam2_ros.engine.stamp_policy import LATE_RUN_RESTART, StampPolicy, Verdict
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import StampError, TrackerError
from sam2_ros.ros.received_frames import ReceivedFrames
from sam2_ros.ros.services import TrackerServices
from sam2_ros.track_state import LOST, OCCLUDED, TRACKING, TrackStates

S = 1_000_000_000


# ---------------------------------------------------------------------- stamp policy
def test_stamp_policy_tells_late_frames_from_time_jumps():
    policy = StampPolicy.with_threshold(1.0)
    assert policy.judge(5 * S) is Verdict.NEW  # first frame
    policy.accept(5 * S)
    assert policy.judge(5 * S + 1) is Verdict.NEW
    assert policy.judge(5 * S) is Verdict.REPEAT
    assert policy.judge(5 * S - 1) is Verdict.LATE  # 1 ns before: reordered, dropped
    assert policy.judge(5 * S - S // 2) is Verdict.LATE
    assert policy.judge(4 * S) is Verdict.JUMP_BACK  # the threshold back: a new stream
    assert "0.500 s before the previous frame's" in policy.explain(5 * S - S // 2, Verdict.LATE)
    policy.forget()
    assert policy.judge(0) is Verdict.NEW
    assert StampPolicy.with_threshold(0.0).judge(0) is Verdict.NEW
    zero = StampPolicy.with_threshold(0.0)
    zero.accept(10)
    assert zero.judge(9) is Verdict.JUMP_BACK  # 0: every earlier stamp restarts
    with pytest.raises(ValueError, match="time_jump_reset must be >= 0"):
        StampPolicy.with_threshold(-1.0)


def test_a_run_of_late_frames_is_a_jump_back():
    """A bag shorter than the threshold, looping: every frame is a little late, forever."""
    policy = StampPolicy.with_threshold(10.0)
    policy.accept(3 * S)
    for _ in range(LATE_RUN_RESTART - 1):
        assert policy.judge(2 * S) is Verdict.LATE
        policy.note_late()
    assert policy.judge(2 * S) is Verdict.JUMP_BACK
    assert f"the {LATE_RUN_RESTART}th late frame in a row" in policy.explain(
        2 * S, Verdict.JUMP_BACK
    )
    policy.accept(3 * S + 1)  # a new frame in between: reordering, not a loop
    assert policy.judge(2 * S) is Verdict.LATE


def test_the_tracker_uses_its_policy_and_counts_full_resets(tiny_model, frames):
    policy = StampPolicy.with_threshold(1.0)
    tracker = StreamingTracker(tiny_model, stamps=policy)
    first = tracker.track(frames[0], 10 * S)
    assert policy.last == 10 * S and first.generation == tracker.generation == 0
    with pytest.raises(StampError, match="is not after the previous frame's"):
        tracker.track(frames[1], 10 * S - 1)
    tracker.add_prompt(points=[[20, 20]], labels=[1])
    tracker.reset([1])  # one object: not a new generation
    assert tracker.generation == 0
    tracker.reset()
    assert policy.last is None and tracker.generation == 1
    assert tracker.track(frames[1], 1).generation == 1  # any stamp after a full reset


def test_a_queued_full_reset_starts_a_new_stream_at_once(tiny_model, frames):
    """A reset of everything that waits for the frame in progress: the frames after it are
    a new stream already (not judged against the old stream's last stamp)."""
    policy = StampPolicy.with_threshold(1.0)
    tracker = StreamingTracker(tiny_model, stamps=policy)
    tracker.track(frames[0], 10 * S)
    answers = []
    with tracker._lock:  # a frame in progress
        other = threading.Thread(target=lambda: answers.append(tracker.reset(wait=False)))
        other.start()
        other.join(30)
        assert answers == [False]  # queued
        assert policy.judge(8 * S) is Verdict.NEW  # not a jump back
    result = tracker.track(frames[1], 8 * S)
    assert result.generation == 1 and result.objects == []


# ---------------------------------------------------------------------- track states
def test_ids_reused_after_a_full_reset_start_a_new_track():
    states = TrackStates(occluded_frames=2)
    for k in range(4):
        now = states.update(k * S, {1: k == 0}, generation=0)
    assert now[1] == (LOST, 3.0)
    # Reset everything; the next object gets id 1 again and is first reported unseen.
    after = states.update(4 * S, {1: False}, generation=1)
    assert after[1] == (OCCLUDED, 0.0)  # one frame unseen, counted from its first frame
    assert states.update(5 * S, {1: True}, generation=1)[1] == (TRACKING, 0.0)


def test_an_object_never_seen_is_lost_and_removed_in_time():
    states = TrackStates(occluded_frames=1)
    states.update(0, {7: False})
    now = states.update(2 * S, {7: False})
    assert now[7] == (LOST, 2.0)  # seconds since its first frame
    assert states.lost_for(1.5, now) == [7]


# ---------------------------------------------------------------------- waits
class _Log:
    def info(self, text: str) -> None:
        pass

    error = info


class _BusyTracker:
    """What a prompt's wait may touch of a tracker while a frame runs: its lock is held."""

    def __init__(self, stamps: list[int]) -> None:
        self.lock = threading.Lock()
        self.stamps = stamps

    def ring_stamps(self) -> list[int]:
        with self.lock:
            return list(self.stamps)

    @property
    def latest_stamp(self) -> int | None:
        with self.lock:
            return self.stamps[-1]

    def add_prompt(self, **kwargs):
        raise TrackerError("not needed here")


class _NotedCondition(threading.Condition):
    """A condition that says when someone first waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.set()
        return super().wait(timeout)


def test_a_waiting_prompt_never_blocks_the_camera_thread():
    received = ReceivedFrames(capacity=100)
    received._cond = _NotedCondition()  # to know when the prompt waits
    tracker = _BusyTracker([1 * S])
    received.add(1 * S, "frame 1")
    received.add(2 * S, "frame 2")  # received, not tracked yet
    services = TrackerServices(lambda: tracker, _Log(), received, lambda msg: msg, 60.0)
    request = AddPrompt.Request(points=[Point(x=1.0, y=1.0)], point_labels=[1])
    request.stamp.sec = 2
    answers = []
    prompt = threading.Thread(
        target=lambda: answers.append(services.add_prompt(request, AddPrompt.Response()))
    )
    prompt.start()
    assert received._cond.waited.wait(30), "the prompt did not wait for frame 2"
    camera_done = threading.Event()

    def camera() -> None:
        for k in range(3, 103):  # a 1 kHz camera; each frame wakes the waiting prompt
            received.add(k * S, f"frame {k}")
            time.sleep(0.001)
        camera_done.set()

    with tracker.lock:  # a frame is being tracked
        threading.Thread(target=camera, daemon=True).start()
        assert camera_done.wait(30), "the camera thread waited for the frame in progress"
        tracker.stamps.append(2 * S)
    received.tracked(2 * S)
    prompt.join(30)
    assert not answers[0].success and "not needed here" in answers[0].message
