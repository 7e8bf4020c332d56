"""Thread safety: one thread tracks frames while three others prompt, remove and reset.

Remove and reset are called with ``wait=False``, as the node's services call them: they
never wait for a frame or a prompt in progress, and take effect when it ends.

Every public call must either succeed or raise a TrackerError (an unknown id because
another thread removed it, too many objects, a stamp that left the ring...), and every
frame result must describe a consistent set of objects: only ids that existed while that
frame was tracked, each with a complete result.

"While that frame was tracked" is bracketed with ``latest_stamp`` reads around each call:
a frame whose stamp was already the newest before a call started was finished before it,
and a frame newer than the newest stamp read after a call returned was tracked after it.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.results import FrameResult
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import TrackerError

NUM_FRAMES = 40
NUM_PROMPT_THREADS = 3
OPS_PER_FRAME = 2  # per prompt thread, started after each tracked frame
MAX_OBJECTS = 4
JOIN_TIMEOUT_S = 300.0
NEVER = float("inf")


def _stamp(i: int) -> int:
    return 1_000 + i


@dataclass
class Lifetime:
    """Newest stamps read around the calls that created and removed one object."""

    created_before: float  # frames with stamp <= this cannot list the object
    created_after: float  # frames with stamp > this must list it (until removed)
    removed_before: float = NEVER  # frames with stamp <= this (and > created_after): listed
    removed_after: float = NEVER  # frames with stamp > this cannot list it


@dataclass
class Shared:
    lock: threading.Lock = field(default_factory=threading.Lock)
    lifetimes: dict[int, Lifetime] = field(default_factory=dict)
    # (newest stamp before, after) a successful remove; kept apart from lifetimes because
    # another thread may remove an object before its creator has recorded it.
    removals: dict[int, tuple[float, float]] = field(default_factory=dict)
    ok: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    unexpected: list[BaseException] = field(default_factory=list)


def _newest(tracker: StreamingTracker) -> float:
    stamp = tracker.latest_stamp
    return -1.0 if stamp is None else float(stamp)


def _prompt_ops(tracker: StreamingTracker, shared: Shared, rng: np.random.Generator) -> None:
    """One random operation; TrackerErrors are counted, anything else propagates."""
    op = str(rng.choice(["new", "new", "refine", "refine", "past", "remove", "reset"]))
    ids = tracker.object_ids
    if not ids:
        op = "new"
    object_id = int(rng.choice(ids)) if ids else 0
    point = [[float(rng.integers(0, 64)), float(rng.integers(0, 48))]]
    label = [int(rng.integers(0, 2))]
    try:
        if op == "new":
            before = _newest(tracker)
            result = tracker.add_prompt(points=point, labels=[1], label=f"obj{rng.integers(99)}")
            after = _newest(tracker)
            with shared.lock:
                assert result.object_id not in shared.lifetimes, "an object id was reused"
                shared.lifetimes[result.object_id] = Lifetime(before, after)
        elif op == "refine":
            result = tracker.add_prompt(object_id=object_id, points=point, labels=label)
            assert result.object_id == object_id
        elif op == "past":
            stamps = tracker.ring_stamps()
            stamp = int(rng.choice(stamps)) if stamps else None
            result = tracker.add_prompt(
                object_id=object_id, points=point, labels=label, stamp=stamp
            )
            assert result.stamp == stamp and result.result.tracked
        elif op == "remove":
            before = _newest(tracker)
            remaining = tracker.remove([object_id], wait=False)  # as the node calls it
            after = _newest(tracker)
            assert object_id not in remaining
            with shared.lock:
                assert object_id not in shared.removals, "an object was removed twice"
                shared.removals[object_id] = (before, after)
        else:
            applied = tracker.reset([object_id], wait=False)
            if not applied:
                op = "reset queued"  # a frame or prompt held the tracker: applied when it ends
        with shared.lock:
            shared.ok[op] += 1
    except TrackerError as exc:
        with shared.lock:
            shared.refused[type(exc).__name__] += 1


def _check_frame(frame: FrameResult, lifetimes: dict[int, Lifetime]) -> None:
    ids = [o.object_id for o in frame.objects]
    assert ids == sorted(set(ids)), f"frame {frame.stamp}: ids {ids}"
    for obj in frame.objects:
        assert obj.object_id in lifetimes, f"frame {frame.stamp}: unknown object {obj.object_id}"
        assert obj.mask.shape == frame.image_hw and obj.logits.shape == frame.image_hw
        if not obj.tracked:
            assert not obj.visible and obj.area == 0 and not obj.mask.any()
    for object_id, life in lifetimes.items():
        listed = object_id in ids
        if frame.stamp <= life.created_before or frame.stamp > life.removed_after:
            assert not listed, f"frame {frame.stamp} lists object {object_id}: {life}"
        if life.created_after < frame.stamp <= life.removed_before:
            assert listed, f"frame {frame.stamp} misses object {object_id}: {life}"


def test_tracking_while_prompting_from_other_threads(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    tracker = StreamingTracker(tiny_model, max_objects=MAX_OBJECTS, prompt_history=4)
    shared = Shared()
    barrier = threading.Barrier(1 + NUM_PROMPT_THREADS)
    progress = threading.Condition()
    state = {"tracked": 0, "finished": False}
    results: list[FrameResult] = []

    def tracking() -> None:
        try:
            barrier.wait()
            for i in range(NUM_FRAMES):
                results.append(tracker.track(frames[i % len(frames)], _stamp(i)))
                with progress:
                    state["tracked"] += 1
                    progress.notify_all()
        except BaseException as exc:
            shared.unexpected.append(exc)
        finally:
            with progress:
                state["finished"] = True
                progress.notify_all()

    def prompting(seed: int) -> None:
        rng = np.random.default_rng(seed)
        seen = 0
        try:
            barrier.wait()
            _prompt_ops(tracker, shared, rng)  # may come before the first frame
            while True:
                # A few operations per tracked frame, while the next one is being encoded
                # and then waits for the lock (no busy loop starving the tracking thread).
                with progress:
                    progress.wait_for(lambda n=seen: state["tracked"] > n or state["finished"])
                    if state["finished"]:
                        return
                    seen = state["tracked"]
                for _ in range(OPS_PER_FRAME):
                    _prompt_ops(tracker, shared, rng)
        except BaseException as exc:
            shared.unexpected.append(exc)

    threads = [threading.Thread(target=tracking, name="tracking")]
    threads += [
        threading.Thread(target=prompting, args=(seed,), name=f"prompt-{seed}")
        for seed in range(NUM_PROMPT_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
        assert not thread.is_alive(), f"{thread.name} did not finish"

    print(f"\nsucceeded: {dict(shared.ok)}; refused: {dict(shared.refused)}")
    assert not shared.unexpected, repr(shared.unexpected)
    assert len(results) == NUM_FRAMES
    assert [r.stamp for r in results] == [_stamp(i) for i in range(NUM_FRAMES)]
    assert [r.frame_index for r in results] == list(range(NUM_FRAMES))
    assert shared.ok["new"] > 0 and sum(shared.ok.values()) >= NUM_FRAMES
    assert set(shared.refused) <= {
        "UnknownObjectError",
        "TooManyObjectsError",
        "StampError",
        "NoFrameError",
    }

    assert set(shared.removals) <= set(shared.lifetimes)
    for object_id, (before, after) in shared.removals.items():
        shared.lifetimes[object_id].removed_before = before
        shared.lifetimes[object_id].removed_after = after

    # The final ids are exactly the objects created and not removed.
    alive = sorted(i for i, life in shared.lifetimes.items() if life.removed_after == NEVER)
    assert tracker.object_ids == alive
    assert len(alive) <= MAX_OBJECTS
    assert set(tracker.labels()) == set(alive)
    assert {r.object_id for r in tracker.latest_results()} <= set(alive)

    for frame in results:
        _check_frame(frame, shared.lifetimes)
    # Each object is listed on one unbroken run of frames (created once, removed once).
    for object_id in shared.lifetimes:
        listed = [i for i, r in enumerate(results) if object_id in r.by_id()]
        assert listed == list(range(listed[0], listed[-1] + 1)) if listed else True

    # The tracker is still fully usable, and consistent, afterwards.
    last = tracker.track(frames[0], _stamp(NUM_FRAMES))
    assert [o.object_id for o in last.objects] == alive
    assert [r.object_id for r in tracker.latest_results()] == alive
