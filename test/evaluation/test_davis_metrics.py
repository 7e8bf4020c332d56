"""Tests for DAVIS J (IoU) and F (boundary F-measure)."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest

from sam2_ros.evaluation.davis_metrics import (
    boundary_map,
    contour_accuracy,
    evaluate_sequence,
    region_similarity,
)
from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene

H, W = 240, 320
# DAVIS tolerance for this size: ceil(0.008 * hypot(240, 320)) = ceil(3.2) = 4 px.
RADIUS = math.ceil(0.008 * math.hypot(H, W))


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def _disk(cx: int, cy: int, r: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    cv2.circle(m, (cx, cy), r, 1, -1)
    return m.astype(bool)


@pytest.mark.parametrize("mask", [_rect(50, 60, 150, 140), _disk(160, 120, 40)])
def test_identity_scores_one(mask):
    assert region_similarity(mask, mask) == 1.0
    assert contour_accuracy(mask, mask) == 1.0


def test_both_empty_scores_one_and_one_empty_scores_zero():
    empty, full = np.zeros((H, W), bool), _rect(10, 10, 50, 50)
    assert region_similarity(empty, empty) == 1.0
    assert contour_accuracy(empty, empty) == 1.0
    assert region_similarity(empty, full) == 0.0
    assert contour_accuracy(empty, full) == 0.0
    assert contour_accuracy(full, empty) == 0.0


def test_shift_of_rectangle_gives_expected_iou():
    # A w-wide box shifted by s along x: IoU = (w - s) / (w + s).
    gt = _rect(100, 80, 200, 160)
    for s in (1, 2, 5, 10):
        assert region_similarity(np.roll(gt, s, axis=1), gt) == pytest.approx((100 - s) / (100 + s))


def test_shift_degrades_monotonically_and_f_tolerates_small_shifts():
    gt = _disk(160, 120, 40)
    js, fs = [], []
    for s in range(0, 12):
        pred = np.roll(gt, s, axis=1)
        js.append(region_similarity(pred, gt))
        fs.append(contour_accuracy(pred, gt))
    assert all(a > b for a, b in itertools.pairwise(js))
    assert all(a >= b for a, b in itertools.pairwise(fs))
    assert fs[RADIUS] == 1.0  # within tolerance the outline still matches
    assert fs[RADIUS + 1] < 1.0
    assert fs[11] < 0.6
    assert js[4] == pytest.approx(0.88, abs=0.02)  # a 4 px shift of an 80 px disk


def test_erosion_keeps_f_high_but_lowers_j():
    gt = _rect(50, 60, 150, 140)
    eroded = cv2.erode(gt.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    j, f = region_similarity(eroded, gt), contour_accuracy(eroded, gt)
    assert f == 1.0
    assert j == pytest.approx(98 * 78 / (100 * 80))


def test_absolute_pixel_tolerance():
    gt = _rect(50, 60, 150, 140)
    pred = np.roll(gt, 3, axis=1)
    assert contour_accuracy(pred, gt, bound_th=3) == 1.0
    assert contour_accuracy(pred, gt, bound_th=1) < 1.0


def test_boundary_map_is_one_pixel_contour():
    b = boundary_map(_rect(10, 10, 20, 20))
    assert b.sum() > 0
    assert not b[12:18, 12:18].any()  # interior is not boundary
    assert not b[:5].any()  # far background is not boundary


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes"):
        region_similarity(np.zeros((4, 4)), np.zeros((4, 5)))


def test_evaluate_sequence_on_synthetic_ground_truth():
    frames = list(render_scene(SceneConfig(duration_s=1.0)))
    gt = {oid: [f.labels == oid for f in frames] for oid in (1, 2, 3)}
    perfect = evaluate_sequence(gt, gt)
    assert perfect.j_per_object == {1: 1.0, 2: 1.0, 3: 1.0}
    assert perfect.jf_mean == 1.0

    # Object 2 predicted empty everywhere, object 3 missing entirely, object 1 shifted.
    pred = {
        1: [np.roll(m, 2, axis=0) for m in gt[1]],
        2: [np.zeros_like(m) for m in gt[2]],
        99: gt[1],  # ids not in the ground truth are ignored
    }
    scores = evaluate_sequence(pred, gt)
    assert scores.j_per_object[2] == 0.0 and scores.f_per_object[2] == 0.0
    # Missing object 3 scores 1 only on the frames where it is out of view.
    absent = np.mean([not m.any() for m in gt[3]])
    assert 0 < absent < 1
    assert scores.j_per_object[3] == pytest.approx(absent)
    assert 0.85 < scores.j_per_object[1] < 1.0 and scores.f_per_object[1] == 1.0
    assert set(scores.j_per_object) == {1, 2, 3}
    assert scores.j_mean == pytest.approx(np.mean(list(scores.j_per_object.values())))
    assert scores.jf_mean == pytest.approx((scores.j_mean + scores.f_mean) / 2)


def test_empty_prediction_on_absent_object_scores_one():
    # An object that is out of view and predicted absent is correct, not a miss.
    gt = {1: [np.zeros((8, 8), bool)] * 3}
    scores = evaluate_sequence({1: [None, None, np.zeros((8, 8), bool)]}, gt)
    assert scores.jf_mean == 1.0


def test_exclude_first_last_and_length_check():
    full = np.ones((8, 8), bool)
    empty = np.zeros((8, 8), bool)
    gt = {1: [full, full, full]}
    pred = {1: [empty, full, empty]}
    assert evaluate_sequence(pred, gt, exclude_first_last=True).j_mean == 1.0
    assert evaluate_sequence(pred, gt).j_mean == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="predicted frames"):
        evaluate_sequence({1: [full]}, gt)
