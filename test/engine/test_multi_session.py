"""One loaded model, several tracking sessions (engine; docs/multi_camera.md).

Sessions share the LoadedModel and its caches, nothing else: interleaved frame by frame,
or run from two threads at once, each gives the masks it gives alone. ``track_newest``
encodes the sessions' frames in one batch and gives each the result it gets alone, within
the tolerance the batched encoder's kernels allow (``LOGIT_TOLERANCE``).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.multi_session import SessionFrame, track_newest
from sam2_ros.engine.results import FrameResult
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import FrameError, StampError

#: Largest difference of a mask logit between a session's frame encoded in a batch and
#: alone (fp32, CPU; measured max: docs/multi_camera.md). Masks are compared exactly.
LOGIT_TOLERANCE = 1e-3
JOIN_TIMEOUT_S = 300.0
CLICKS_A = ([[20, 20]], [[44, 30]])
CLICKS_B = ([[32, 24]],)


def _prompted(model: LoadedModel, frame: np.ndarray, clicks, mode: str) -> StreamingTracker:
    tracker = StreamingTracker(model, tracking_mode=mode)
    tracker.track(frame, 1)
    for click in clicks:
        tracker.add_prompt(points=click, labels=[1])
    return tracker


def _masks(result: FrameResult) -> dict[int, np.ndarray]:
    return {o.object_id: o.mask for o in result.objects}


def _logits(result: FrameResult) -> dict[int, np.ndarray]:
    return {o.object_id: o.logits for o in result.objects}


def _alone(model, frames, clicks, mode) -> list[FrameResult]:
    tracker = _prompted(model, frames[0], clicks, mode)
    return [tracker.track(f, 2 + i) for i, f in enumerate(frames[1:])]


def _same_masks(got: list[FrameResult], want: list[FrameResult]) -> None:
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        ma, mb = _masks(a), _masks(b)
        assert ma.keys() == mb.keys(), f"frame {i}: objects {ma.keys()} vs {mb.keys()}"
        for oid in ma:
            assert np.array_equal(ma[oid], mb[oid]), f"frame {i}, object {oid}: masks differ"


@pytest.mark.parametrize("mode", ["sam2", "motion"])
def test_interleaved_sessions_track_as_alone(
    tiny_model: LoadedModel, frames: list[np.ndarray], mode: str
) -> None:
    other = frames[::-1]  # a second camera: another scene (the video backwards)
    want_a = _alone(tiny_model, frames, CLICKS_A, mode)
    want_b = _alone(tiny_model, other, CLICKS_B, mode)
    a = _prompted(tiny_model, frames[0], CLICKS_A, mode)
    b = _prompted(tiny_model, other[0], CLICKS_B, mode)
    got_a, got_b = [], []
    for i in range(1, len(frames)):
        got_a.append(a.track(frames[i], 1 + i))
        got_b.append(b.track(other[i], 1 + i))
    _same_masks(got_a, want_a)
    _same_masks(got_b, want_b)
    assert [len(r.objects) for r in got_a] == [2] * (len(frames) - 1)


def test_sessions_on_two_threads_track_as_alone(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """Motion mode reads the mask decoder's tokens through a hook on the shared model:
    each thread must get its own session's tokens."""
    other = frames[::-1]
    want = {"a": _alone(tiny_model, frames, CLICKS_A, "motion"),
            "b": _alone(tiny_model, other, CLICKS_B, "motion")}
    got: dict[str, list[FrameResult]] = {}
    failures: list[BaseException] = []

    def run(name, video, clicks) -> None:
        try:
            got[name] = _alone(tiny_model, video, clicks, "motion")
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=("a", frames, CLICKS_A)),
               threading.Thread(target=run, args=("b", other, CLICKS_B))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT_S)
        assert not t.is_alive(), f"a session thread did not finish in {JOIN_TIMEOUT_S} s"
    assert not failures, failures
    _same_masks(got["a"], want["a"])
    _same_masks(got["b"], want["b"])


def test_batched_encoding_matches_each_session_alone(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """Three sessions, frames of two sizes, one encoder batch per step."""
    small = [f[::2, ::2].copy() for f in frames]  # 24x32: another camera size
    videos = [frames, frames[::-1], small]
    clicks = [CLICKS_A, CLICKS_B, ([[10, 12]],)]
    want = [_alone(tiny_model, v, c, "motion") for v, c in zip(videos, clicks, strict=True)]
    sessions = [_prompted(tiny_model, v[0], c, "motion")
                for v, c in zip(videos, clicks, strict=True)]
    worst = 0.0
    for i in range(1, len(frames)):
        step = track_newest([SessionFrame(s, v[i], 1 + i)
                             for s, v in zip(sessions, videos, strict=True)])
        for k, result in enumerate(step):
            assert isinstance(result, FrameResult), result
            alone = want[k][i - 1]
            assert result.stamp == alone.stamp and result.image_hw == alone.image_hw
            _same_masks([result], [alone])
            la, lb = _logits(result), _logits(alone)
            worst = max([worst] + [float(np.abs(la[o] - lb[o]).max()) for o in la])
    print(f"largest mask-logit difference batched vs alone: {worst:.3g}")
    assert worst <= LOGIT_TOLERANCE


def test_a_refused_frame_leaves_the_other_sessions_alone(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    a = _prompted(tiny_model, frames[0], CLICKS_A, "sam2")
    b = _prompted(tiny_model, frames[0], CLICKS_B, "sam2")
    c = _prompted(tiny_model, frames[0], CLICKS_B, "sam2")
    step = track_newest([SessionFrame(a, frames[1], 5),
                         SessionFrame(b, np.zeros((4, 4), np.uint8), 5),  # not RGB
                         SessionFrame(c, frames[1], 1)])  # not after its last stamp
    assert isinstance(step[0], FrameResult) and len(step[0].objects) == 2
    assert isinstance(step[1], FrameError)
    assert isinstance(step[2], StampError)
    assert b.latest_stamp == 1 and c.latest_stamp == 1 and a.latest_stamp == 5
    with pytest.raises(ValueError, match="twice"):
        track_newest([SessionFrame(a, frames[2], 6), SessionFrame(a, frames[3], 7)])


def test_all_sessions_objects_go_through_one_decode_step(
    tiny_model: LoadedModel, frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions in different modes (Meta's and the motion policy) with different memory
    layouts (a second prompt on a later frame gives one session two conditioning frames):
    one call of SAM 2's heads and one of its memory encoder per step for all their objects,
    each session's masks as tracked alone, and each frame within 3 host waits."""

    def prompted(mode: str, clicks, extra: bool) -> StreamingTracker:
        tracker = _prompted(tiny_model, frames[0], clicks, mode)
        tracker.track(frames[1], 2)
        if extra:
            tracker.add_prompt(points=[[40, 40]], labels=[1], object_id=tracker.object_ids[0])
        return tracker

    setups = [("sam2", CLICKS_A, True), ("motion", CLICKS_B, False), ("sam2", CLICKS_B, False)]
    alone = [prompted(*s) for s in setups]
    together = [prompted(*s) for s in setups]
    model = tiny_model.model
    calls: dict[str, list[int]] = {"heads": [], "memory": []}
    heads, memory = model._forward_sam_heads, model._encode_new_memory
    monkeypatch.setattr(model, "_forward_sam_heads", lambda **kw: (
        calls["heads"].append(kw["backbone_features"].shape[0]), heads(**kw))[1])
    monkeypatch.setattr(model, "_encode_new_memory", lambda **kw: (
        calls["memory"].append(kw["pred_masks_high_res"].shape[0]), memory(**kw))[1])
    for i in range(2, len(frames)):
        want = [s.track(frames[i], 1 + i) for s in alone]
        objects = sum(len(w.objects) for w in want)
        calls["heads"].clear()
        calls["memory"].clear()
        got = track_newest([SessionFrame(s, frames[i], 1 + i) for s in together])
        assert calls["heads"][0] == objects and calls["memory"] == [objects]
        assert all(c == 1 for c in calls["heads"][1:])  # the motion policy re-finding one
        for g, w in zip(got, want, strict=True):
            _same_masks([g], [w])
            assert g.transfer.syncs <= 3, g.transfer
