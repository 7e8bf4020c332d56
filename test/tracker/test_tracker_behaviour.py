"""Behaviour of the streaming tracker: object independence, prompts on past frames,
remove/reset, counters, timing, hole filling, frame sizes and click refinement.

Twin trackers share the tiny random-weight model; where objects may be batched
differently in the two (different batch sizes in one matmul), logits are compared with
np.allclose(atol=1e-5) instead of bit equality.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.results import FrameResult, ObjectResult
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import NoFrameError, UnknownObjectError

ATOL = 1e-5
BASE_STAMP = 1_000


def _stamp(i: int) -> int:
    """Explicit stamps: stamp 0 means "the newest frame" to add_prompt, so avoid it."""
    return BASE_STAMP + 10 * i


def _frame(frames: list[np.ndarray], i: int) -> np.ndarray:
    return frames[i % len(frames)]


def _num_clicks(tracker: StreamingTracker, object_id: int, index: int) -> list[int]:
    out = tracker.memories[object_id].output_at(index)
    assert out is not None and out.point_inputs is not None
    return out.point_inputs["point_labels"][0].tolist()


# -------------------------------------------------------------------------- object independence
def test_new_object_mid_stream_does_not_change_other_objects(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    # SAM 2 tracks each object on its own (tracking_mode motion lets objects of a frame
    # exclude each other, so there a new object may change the others on purpose).
    with_new = StreamingTracker(tiny_model, tracking_mode="sam2")
    without = StreamingTracker(tiny_model, tracking_mode="sam2")
    added_at, length = 5, 24
    for i in range(length):
        got = with_new.track(_frame(frames, i), _stamp(i))
        want = without.track(_frame(frames, i), _stamp(i))
        if i == 0:
            for tracker in (with_new, without):
                assert tracker.add_prompt(points=[[20, 24]], labels=[1]).object_id == 1
        if i == added_at:
            assert with_new.add_prompt(box=[30, 8, 60, 40], label="new").object_id == 2
        if i > added_at:
            assert [o.object_id for o in got.objects] == [1, 2]
            assert [o.object_id for o in want.objects] == [1]
            np.testing.assert_allclose(
                got.by_id()[1].logits, want.by_id()[1].logits, rtol=0, atol=ATOL
            )
            assert got.by_id()[1].score == pytest.approx(want.by_id()[1].score, abs=ATOL)
    # By the end both objects have memories of the same layout, so the last frames ran
    # them in one batch: the comparison above covered batched and unbatched tracking.
    objects = with_new.memories
    last = length - 1
    first, second = (with_new._steps.memory(objects[i], last) for i in (1, 2))
    assert first.layout == second.layout


# ----------------------------------------------------------------------- prompts on past frames
@pytest.mark.parametrize("kind", ["new_object", "refinement"])
def test_prompt_on_past_ring_frame_equals_prompt_in_time(
    tiny_model: LoadedModel, frames: list[np.ndarray], kind: str
) -> None:
    k, late = 4, 3  # prompt names frame k when frame k + 3 is the newest
    # SAM 2's mode: in tracking_mode motion a late new object is re-tracked alone, without
    # the other objects' exclusion it met in time (docs/identity.md, limits).
    late_tracker = StreamingTracker(tiny_model, tracking_mode="sam2")
    in_time = StreamingTracker(tiny_model, tracking_mode="sam2")
    for tracker in (late_tracker, in_time):
        tracker.track(_frame(frames, 0), _stamp(0))
        tracker.add_prompt(points=[[20, 24]], labels=[1])
    if kind == "new_object":
        prompt = {"points": [[45, 20], [10, 40]], "labels": [1, 0]}
        object_id = 2
    else:
        prompt = {"object_id": 1, "points": [[30, 30]], "labels": [0]}
        object_id = 1

    for i in range(1, k + late + 1):
        late_tracker.track(_frame(frames, i), _stamp(i))
    late_result = late_tracker.add_prompt(stamp=_stamp(k), **prompt)  # type: ignore[arg-type]

    for i in range(1, k + 1):
        in_time.track(_frame(frames, i), _stamp(i))
    in_time_result = in_time.add_prompt(**prompt)  # type: ignore[arg-type]
    for i in range(k + 1, k + late + 1):
        newest = in_time.track(_frame(frames, i), _stamp(i))

    assert late_result.object_id == in_time_result.object_id == object_id
    assert late_result.frame_index == k and late_result.stamp == _stamp(k)
    assert late_result.retracked_frames == late
    assert in_time_result.retracked_frames == 0
    # On the prompted frame itself.
    np.testing.assert_allclose(
        late_result.result.logits, in_time_result.result.logits, rtol=0, atol=ATOL
    )
    # On the newest frame: the late prompt was carried forward to it.
    late_latest = {r.object_id: r for r in late_tracker.latest_results()}
    for oid, want in newest.by_id().items():
        np.testing.assert_allclose(late_latest[oid].logits, want.logits, rtol=0, atol=ATOL)
    assert late_latest[object_id].frames_since_prompt == late
    # And on the next frame, tracked from the memory the late prompt left behind.
    nxt = k + late + 1
    got = late_tracker.track(_frame(frames, nxt), _stamp(nxt))
    want_next = in_time.track(_frame(frames, nxt), _stamp(nxt))
    assert [o.object_id for o in got.objects] == [o.object_id for o in want_next.objects]
    for g, w in zip(got.objects, want_next.objects, strict=True):
        np.testing.assert_allclose(g.logits, w.logits, rtol=0, atol=ATOL)
        assert g.frames_since_prompt == w.frames_since_prompt


def test_prompt_on_past_frame_leaves_other_objects_alone(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    tracker = StreamingTracker(tiny_model)
    tracker.track(_frame(frames, 0), _stamp(0))
    tracker.add_prompt(points=[[20, 24]], labels=[1])
    tracker.add_prompt(points=[[50, 10]], labels=[1])
    for i in range(1, 5):
        tracker.track(_frame(frames, i), _stamp(i))
    other = tracker.memories[2]
    before = {i: other.output_at(i) for i in (2, 3, 4)}
    before_logits = {r.object_id: r.logits.copy() for r in tracker.latest_results()}
    result = tracker.add_prompt(object_id=1, points=[[22, 22]], labels=[0], stamp=_stamp(2))
    assert result.retracked_frames == 2
    assert all(other.output_at(i) is before[i] for i in (2, 3, 4))
    latest = {r.object_id: r for r in tracker.latest_results()}
    assert np.array_equal(latest[2].logits, before_logits[2])
    assert not np.array_equal(latest[1].logits, before_logits[1])  # the prompt did something


def test_prompt_on_past_frame_keeps_later_refinements(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """A refinement click on frame 7 survives a later prompt on frame 5: it is applied
    again on the re-tracked mask, exactly as if the frame-5 prompt had come in time."""
    tracker = StreamingTracker(tiny_model)
    for i in range(8):
        tracker.track(_frame(frames, i), _stamp(i))
        if i == 0:
            tracker.add_prompt(points=[[20, 24]], labels=[1])
    tracker.add_prompt(object_id=1, points=[[30, 30]], labels=[0])  # refine the newest (7)
    assert _num_clicks(tracker, 1, 7) == [0]
    late = tracker.add_prompt(object_id=1, points=[[25, 25]], labels=[1], stamp=_stamp(5))
    assert late.retracked_frames == 2
    out = tracker.memories[1].output_at(7)
    assert out is not None and out.prompted and out.refined
    assert _num_clicks(tracker, 1, 7) == [0]

    in_time = StreamingTracker(tiny_model)
    for i in range(8):
        in_time.track(_frame(frames, i), _stamp(i))
        if i == 0:
            in_time.add_prompt(points=[[20, 24]], labels=[1])
        if i == 5:
            in_time.add_prompt(object_id=1, points=[[25, 25]], labels=[1])
    in_time.add_prompt(object_id=1, points=[[30, 30]], labels=[0])
    expected = in_time.latest_results()[0].logits
    np.testing.assert_allclose(tracker.latest_results()[0].logits, expected, atol=1e-5)


# ----------------------------------------------------------------------------- remove and reset
def test_remove_drops_object(tiny_model: LoadedModel, frames: list[np.ndarray]) -> None:
    tracker = StreamingTracker(tiny_model)
    tracker.track(frames[0])
    tracker.add_prompt(points=[[20, 24]], labels=[1], label="a")
    tracker.add_prompt(points=[[50, 10]], labels=[1], label="b")
    assert [o.object_id for o in tracker.track(frames[1]).objects] == [1, 2]
    assert tracker.remove([1]) == [2]
    assert tracker.object_ids == [2]
    assert tracker.labels() == {2: "b"}
    assert [r.object_id for r in tracker.latest_results()] == [2]
    assert [o.object_id for o in tracker.track(frames[2]).objects] == [2]
    with pytest.raises(UnknownObjectError):
        tracker.add_prompt(object_id=1, points=[[5, 5]], labels=[1])
    # Ids are never reused.
    assert tracker.add_prompt(points=[[20, 24]], labels=[1]).object_id == 3


def _assert_untracked(result: ObjectResult, hw: tuple[int, int]) -> None:
    assert not result.tracked and not result.visible
    assert result.area == 0 and not result.mask.any() and result.mask.shape == hw
    assert result.bbox == (0, 0, 0, 0) and result.presence == 0.0


def test_reset_one_object_keeps_id_and_label(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    tracker = StreamingTracker(tiny_model)
    tracker.track(frames[0])
    tracker.add_prompt(points=[[20, 24]], labels=[1], label="a")
    tracker.add_prompt(points=[[50, 10]], labels=[1], label="b")
    tracker.track(frames[1])
    other_before = tracker.memories[2].non_cond[1]
    tracker.reset([1])
    assert tracker.object_ids == [1, 2]
    assert tracker.labels() == {1: "a", 2: "b"}
    assert not tracker.memories[1].cond and not tracker.memories[1].non_cond
    assert tracker.memories[2].non_cond[1] is other_before  # the other object is untouched
    assert [r.object_id for r in tracker.latest_results()] == [2]
    frame = tracker.track(frames[2])
    assert [o.object_id for o in frame.objects] == [1, 2]
    _assert_untracked(frame.by_id()[1], (48, 64))
    assert frame.by_id()[2].tracked
    # Prompting it again brings it back, under the same id and label.
    back = tracker.add_prompt(object_id=1, points=[[30, 30]], labels=[1])
    assert back.object_id == 1 and back.result.tracked and back.result.label == "a"
    assert back.result.frames_since_prompt == 0
    assert sorted(tracker.memories[1].cond) == [2]  # a fresh prompted frame, not a refinement
    frame = tracker.track(frames[3])
    assert frame.by_id()[1].tracked and frame.by_id()[1].frames_since_prompt == 1
    assert frame.by_id()[1].label == "a"


def test_reset_all_clears_everything(tiny_model: LoadedModel, frames: list[np.ndarray]) -> None:
    tracker = StreamingTracker(tiny_model)
    for i in range(3):
        tracker.track(frames[i], _stamp(i))
    tracker.add_prompt(points=[[20, 24]], labels=[1])
    tracker.reset()
    assert tracker.object_ids == [] and tracker.labels() == {}
    assert tracker.ring_stamps() == [] and tracker.latest_stamp is None
    assert tracker.latest_results() == []
    with pytest.raises(NoFrameError):
        tracker.add_prompt(points=[[20, 24]], labels=[1])
    # A new stream may start earlier than the old one ended.
    frame = tracker.track(frames[3], _stamp(0) - 500)
    assert frame.objects == [] and tracker.ring_stamps() == [_stamp(0) - 500]
    result = tracker.add_prompt(points=[[20, 24]], labels=[1])
    assert result.stamp == _stamp(0) - 500 and result.result.tracked
    assert len(tracker.track(frames[4], _stamp(0) - 400).objects) == 1
    # reset([]) is the same as reset(): forget everything.
    tracker.reset([])
    assert tracker.object_ids == [] and tracker.ring_stamps() == []


# -------------------------------------------------------------------------- frames since prompt
def test_frames_since_prompt(tiny_model: LoadedModel, frames: list[np.ndarray]) -> None:
    tracker = StreamingTracker(tiny_model)
    tracker.track(frames[0])
    tracker.track(frames[1])
    assert tracker.add_prompt(points=[[20, 24]], labels=[1]).result.frames_since_prompt == 0
    counts = [tracker.track(frames[i]).objects[0].frames_since_prompt for i in range(2, 6)]
    assert counts == [1, 2, 3, 4]
    # A refinement on the newest frame restarts the count.
    refined = tracker.add_prompt(object_id=1, points=[[25, 25]], labels=[0])
    assert refined.result.frames_since_prompt == 0
    assert tracker.latest_results()[0].frames_since_prompt == 0
    assert tracker.track(frames[6]).objects[0].frames_since_prompt == 1
    assert tracker.track(frames[7]).objects[0].frames_since_prompt == 2
    # A prompt on an older frame than the last prompt does not move the count back.
    newest = tracker.latest_stamp
    assert newest is not None
    older = tracker.add_prompt(object_id=1, points=[[22, 22]], labels=[1], stamp=newest - 5)
    assert older.frame_index == 2
    assert tracker.latest_results()[0].frames_since_prompt == 2


# --------------------------------------------------------------------------------- stage timing
def test_timing_breakdown(tiny_model: LoadedModel, frames: list[np.ndarray]) -> None:
    tracker = StreamingTracker(tiny_model)
    empty = tracker.track(frames[0]).timing
    assert empty.encoder > 0
    assert empty.memory_attention == empty.decoder == empty.memory_encoder == 0
    assert empty.total >= empty.encoder
    prompt = tracker.add_prompt(points=[[20, 24]], labels=[1]).timing
    assert prompt.encoder == 0 and prompt.decoder > 0 and prompt.memory_encoder > 0
    assert prompt.total >= prompt.memory_attention + prompt.decoder + prompt.memory_encoder
    for i in range(1, 3):
        timing = tracker.track(frames[i]).timing
        stages = [
            timing.encoder,
            timing.memory_attention,
            timing.decoder,
            timing.memory_encoder,
            timing.postprocess,
        ]
        assert all(s > 0 for s in stages), timing
        assert timing.total >= sum(stages)
        assert set(timing.as_dict()) == {
            "encoder",
            "memory_attention",
            "decoder",
            "memory_encoder",
            "postprocess",
            "total",
        }


# --------------------------------------------------------------------------------- hole filling
def test_fill_holes(tiny_model: LoadedModel) -> None:
    tracker = StreamingTracker(tiny_model, fill_hole_area=8)
    logits = torch.full((2, 1, 32, 32), 3.0)
    logits[0, 0, 5:7, 5:9] = -2.0  # 8 px hole: filled
    logits[0, 0, 20:23, 20:24] = -4.0  # 12 px hole: kept
    logits[0, 0, 12, 28] = 0.0  # 1 px at exactly 0 counts as background: filled
    logits[1, 0, 0:16, :] = -5.0  # object 1: large background (512 px) kept
    logits[1, 0, 25, 25] = -1.0  # ... and a 1 px hole filled
    filled = tracker._fill_holes(logits)
    assert filled.shape == logits.shape
    assert torch.all(filled[0, 0, 5:7, 5:9] == 0.1)
    assert torch.all(filled[0, 0, 20:23, 20:24] == -4.0)
    assert float(filled[0, 0, 12, 28]) == pytest.approx(0.1)
    assert torch.all(filled[1, 0, 0:16, :] == -5.0)
    assert float(filled[1, 0, 25, 25]) == pytest.approx(0.1)
    changed = filled != logits
    assert int(changed.sum()) == 8 + 1 + 1  # nothing else moved
    assert torch.all(logits[0, 0, 5:7, 5:9] == -2.0)  # the input is not modified
    # Diagonal neighbours join background components (8-connectivity): two 6 px holes
    # touching at a corner form one 12 px component, which stays.
    diag = torch.full((1, 1, 16, 16), 2.0)
    diag[0, 0, 2:4, 2:5] = -1.0
    diag[0, 0, 4:6, 5:8] = -1.0
    assert torch.equal(tracker._fill_holes(diag), diag)
    # fill_hole_area=0 switches it off.
    off = StreamingTracker(tiny_model, fill_hole_area=0)
    assert torch.equal(off._fill_holes(logits), logits)


def test_fill_holes_matches_opencv_area_rule(tiny_model: LoadedModel) -> None:
    """Random maps: exactly the background components of area <= 8 are set to 0.1."""
    tracker = StreamingTracker(tiny_model, fill_hole_area=8)
    rng = np.random.default_rng(3)
    logits = torch.from_numpy(rng.normal(1.0, 1.0, (3, 1, 24, 24)).astype(np.float32))
    filled = tracker._fill_holes(logits).numpy()
    for b in range(3):
        background = (logits[b, 0] <= 0).numpy().astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=8)
        small = (stats[:, cv2.CC_STAT_AREA] <= 8)[labels] & (background == 1)
        assert np.all(filled[b, 0][small] == np.float32(0.1))
        assert np.array_equal(filled[b, 0][~small], logits[b, 0].numpy()[~small])


# ---------------------------------------------------------------------------------- frame sizes
def test_masks_come_back_at_each_frames_size(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    small = cv2.resize(np.asarray(frames[0]), (50, 36), interpolation=cv2.INTER_AREA)
    tall = np.ascontiguousarray(np.asarray(frames[1]).transpose(1, 0, 2))  # 64x48
    tracker = StreamingTracker(tiny_model)

    def check(frame: FrameResult | None, hw: tuple[int, int], results: list[ObjectResult]) -> None:
        if frame is not None:
            assert frame.image_hw == hw
        for r in results:
            assert r.mask.shape == hw and r.mask.dtype == bool
            assert r.logits.shape == hw and r.logits.dtype == np.float32
            x, y, w, h = r.bbox
            assert x + w <= hw[1] and y + h <= hw[0]

    first = tracker.track(frames[2], _stamp(0))
    prompt = tracker.add_prompt(points=[[60, 40]], labels=[1])
    check(first, (48, 64), [prompt.result])
    frame = tracker.track(small, _stamp(1))
    check(frame, (36, 50), frame.objects)
    prompt = tracker.add_prompt(points=[[45, 30]], labels=[1])  # in the small frame
    check(None, (36, 50), [prompt.result])
    frame = tracker.track(tall, _stamp(2))
    check(frame, (64, 48), frame.objects)
    check(None, (64, 48), tracker.latest_results())
    # A prompt on an earlier, differently sized frame answers at that frame's size and
    # is checked against it: (60, 40) fits 64x48 but not 50x36.
    past = tracker.add_prompt(object_id=1, points=[[60, 40]], labels=[1], stamp=_stamp(0))
    check(None, (48, 64), [past.result])
    check(None, (64, 48), tracker.latest_results())
    with pytest.raises(ValueError, match="outside the 50x36 image"):
        tracker.add_prompt(object_id=1, points=[[60, 40]], labels=[1], stamp=_stamp(1))


# ----------------------------------------------------------------------------- click refinement
def test_clear_previous_replaces_clicks(tiny_model: LoadedModel, frames: list[np.ndarray]) -> None:
    tracker = StreamingTracker(tiny_model)
    tracker.track(frames[0])
    tracker.add_prompt(points=[[20, 24]], labels=[1])
    # On the prompted (conditioning) frame: clicks accumulate, clear_previous replaces.
    tracker.add_prompt(object_id=1, points=[[30, 30]], labels=[0])
    assert _num_clicks(tracker, 1, 0) == [1, 0]
    tracker.add_prompt(object_id=1, points=[[10, 10]], labels=[1], clear_previous=True)
    assert _num_clicks(tracker, 1, 0) == [1]
    assert sorted(tracker.memories[1].cond) == [0]
    # A box may replace clicks (its corners come first, labelled 2 and 3).
    tracker.add_prompt(object_id=1, box=[5, 5, 40, 40], clear_previous=True)
    assert _num_clicks(tracker, 1, 0) == [2, 3]
    tracker.add_prompt(object_id=1, points=[[20, 20]], labels=[1])
    assert _num_clicks(tracker, 1, 0) == [2, 3, 1]

    # On a tracked frame (refinement): the same rules.
    tracker.track(frames[1])
    tracker.add_prompt(object_id=1, points=[[20, 24]], labels=[1])
    tracker.add_prompt(object_id=1, points=[[40, 20]], labels=[0])
    tracker.add_prompt(object_id=1, points=[[41, 21]], labels=[0])
    assert _num_clicks(tracker, 1, 1) == [1, 0, 0]
    result = tracker.add_prompt(object_id=1, points=[[5, 5]], labels=[1], clear_previous=True)
    assert _num_clicks(tracker, 1, 1) == [1]
    assert 1 not in tracker.memories[1].cond  # a refinement stays an ordinary frame
    assert tracker.memories[1].non_cond[1].prompted
    assert result.frame_index == 1


def test_memory_attention_in_chunks_gives_the_batched_result(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """Objects split over several memory-attention calls (a small token budget) track
    exactly as in one batched call."""
    batched, chunked = StreamingTracker(tiny_model), StreamingTracker(tiny_model)
    batched._steps.attention.attention_tokens = 0  # no limit: one call for all objects
    chunked._steps.attention.attention_tokens = 1  # one object per call
    clicks = ([20, 24], [44, 20], [30, 40])
    for i in range(6):
        got = chunked.track(_frame(frames, i), _stamp(i))
        want = batched.track(_frame(frames, i), _stamp(i))
        if i == 0:
            for tracker in (batched, chunked):
                for click in clicks:
                    tracker.add_prompt(points=[click], labels=[1])
        if i > 0:
            assert [o.object_id for o in got.objects] == [1, 2, 3]
            for g, w in zip(got.objects, want.objects, strict=True):
                np.testing.assert_allclose(g.logits, w.logits, rtol=0, atol=ATOL)


def test_own_memory_attention_tracks_as_metas_module(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """The engine runs Meta's memory-attention layers with its own attention kernel
    (engine.memory_attention); in fp32 that equals Meta's MemoryAttention module, with a
    refinement click and an object added later (different layouts and pointer counts)."""
    own, meta = StreamingTracker(tiny_model), StreamingTracker(tiny_model)
    assert own._steps.attention.own_kernel
    meta._steps.attention.own_kernel = False
    for i in range(10):
        got, want = (t.track(_frame(frames, i), _stamp(i)) for t in (own, meta))
        for tracker in (own, meta):
            if i == 0:
                tracker.add_prompt(points=[[20, 24]], labels=[1])
                tracker.add_prompt(points=[[44, 20]], labels=[1])
            if i == 3:
                tracker.add_prompt(object_id=1, points=[[30, 30]], labels=[0])
                tracker.add_prompt(points=[[30, 40]], labels=[1])
        assert len(got.objects) == len(want.objects)
        for g, w in zip(got.objects, want.objects, strict=True):
            np.testing.assert_allclose(g.logits, w.logits, rtol=0, atol=ATOL)
    assert len(got.objects) == 3
