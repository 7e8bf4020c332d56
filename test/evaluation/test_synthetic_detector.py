"""The synthetic detector: boxes near the ground truth with the scene's shapes as labels,
slower than the camera and late, with misses and weak false alarms; reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.engine.detections import DetectionMatcher, TrackView
from sam2_ros.evaluation.synthetic_detector import (
    CLUTTER,
    DetectorConfig,
    synthetic_detections,
)
from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene

SCENE = SceneConfig(width=160, height=120, fps=10.0, duration_s=4.0, with_depth=False)


@pytest.fixture(scope="module")
def frames() -> list:
    return list(render_scene(SCENE))


def test_boxes_labels_rate_and_delay(frames: list) -> None:
    cfg = DetectorConfig(period_frames=3, delay_frames=2, miss_rate=0.0,
                         false_positive_rate=0.0, jitter_px=1.5)
    messages = synthetic_detections(frames, cfg)
    assert [m.frame_index for m in messages] == list(range(0, len(frames), 3))
    for msg in messages:
        frame = frames[msg.frame_index]
        assert msg.stamp_ns == frame.stamp_ns and msg.publish_after == msg.frame_index + 2
        expected = {s.id for s in frame.objects if s.visible and s.area >= cfg.min_area}
        assert set(msg.truth) == expected  # no misses asked for: every visible object
        for det, object_id in zip(msg.detections, msg.truth, strict=True):
            state = frame.objects[object_id - 1]
            assert det.label == state.shape
            assert 0.6 <= det.score <= 0.95
            error = np.abs(np.subtract(det.box, state.bbox))
            assert error.max() < 5 * cfg.jitter_px, (msg.frame_index, det.box, state.bbox)
            assert det.box != tuple(float(v) for v in state.bbox)  # jittered


def test_misses_false_alarms_and_reproducibility(frames: list) -> None:
    cfg = DetectorConfig(period_frames=1, miss_rate=0.4, false_positive_rate=0.5, seed=4)
    messages = synthetic_detections(frames, cfg)
    assert messages == synthetic_detections(frames, cfg)
    assert messages != synthetic_detections(frames, DetectorConfig(period_frames=1, seed=5))
    seen = sum(sum(1 for t in m.truth if t is not None) for m in messages)
    visible = sum(sum(1 for s in f.objects if s.visible and s.area >= cfg.min_area)
                  for f in frames)
    assert 0.45 < seen / visible < 0.75  # about 60% of visible objects detected
    alarms = [d for m in messages for d, t in zip(m.detections, m.truth, strict=True)
              if t is None]
    assert 10 < len(alarms) < 30  # about one message in two over 40 frames
    for det in alarms:
        assert det.label == CLUTTER and det.score < cfg.false_positive_score


def test_a_matcher_on_perfect_tracks_keeps_every_identity(frames: list) -> None:
    """With tracks that follow the truth exactly, the detector's messages (jittered,
    missing, late) never prompt a track with another object's box and never duplicate one."""
    messages = synthetic_detections(frames, DetectorConfig(period_frames=2, miss_rate=0.3,
                                                           false_positive_rate=0.3))
    matcher = DetectionMatcher(min_score=0.5, refresh_iou=0.5, forget_after_s=0.0)
    known: set[int] = set()
    for msg in messages:
        frame = frames[msg.frame_index]
        tracks = [TrackView(s.id, tuple(map(float, s.bbox)) if s.visible else None,
                            tuple(map(float, s.bbox)) if s.visible else None, s.shape)
                  for s in frame.objects if s.id in known]
        plan = matcher.plan(msg.stamp_ns, msg.detections, tracks)
        owner = {id(d): t for d, t in zip(msg.detections, msg.truth, strict=True)}
        for object_id, det in plan.matched.items():
            assert owner[id(det)] == object_id
        for det in plan.create:
            assert owner[id(det)] is not None and owner[id(det)] not in known
            known.add(owner[id(det)])
    assert known == {1, 2, 3}
