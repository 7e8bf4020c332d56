"""Tests for sam2_ros.imaging.masks."""

import dataclasses

import numpy as np
import pytest

from sam2_ros.imaging.masks import (
    MaskStats,
    crop_mask,
    interior_point,
    label_image,
    mask_stats,
)


def test_stats_of_rectangle():
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:20] = True  # rows 5..8, cols 10..19
    stats = mask_stats(mask)
    assert stats.bbox == (10, 5, 10, 4)
    assert stats.centroid == pytest.approx((14.5, 6.5))
    assert stats.area == 40
    assert not stats.empty


def test_stats_of_empty_mask_are_zero():
    stats = mask_stats(np.zeros((7, 9), bool))
    assert stats == MaskStats(bbox=(0, 0, 0, 0), centroid=(0.0, 0.0), area=0)
    assert stats.empty


def test_stats_single_pixel_at_corner():
    mask = np.zeros((6, 8), bool)
    mask[5, 7] = True
    stats = mask_stats(mask)
    assert stats.bbox == (7, 5, 1, 1)
    assert stats.centroid == (7.0, 5.0)
    assert stats.area == 1


def test_stats_match_brute_force_on_irregular_mask():
    rng = np.random.default_rng(1)
    mask = np.zeros((40, 50), bool)
    mask[3:30, 12:41] = rng.random((27, 29)) > 0.7
    ys, xs = np.nonzero(mask)
    stats = mask_stats(mask)
    assert stats.area == xs.size
    assert stats.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert stats.centroid == pytest.approx((xs.mean(), ys.mean()))


def test_stats_accept_uint8_masks_and_are_frozen():
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 2] = 255
    stats = mask_stats(mask)
    assert stats.bbox == (2, 1, 1, 1) and stats.area == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.area = 3  # type: ignore[misc]


def test_stats_reject_non_2d():
    with pytest.raises(ValueError, match="2-D"):
        mask_stats(np.zeros((2, 2, 3), bool))


def test_crop_mask_matches_region_as_0_255():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    mask[3, 5] = False
    crop = crop_mask(mask, mask_stats(mask).bbox)
    assert crop.dtype == np.uint8 and crop.shape == (3, 6)
    assert set(np.unique(crop)) == {0, 255}
    assert crop[1, 2] == 0 and crop[0, 0] == 255


def test_crop_mask_empty_bbox():
    crop = crop_mask(np.zeros((5, 5), bool), (0, 0, 0, 0))
    assert crop.shape == (0, 0) and crop.dtype == np.uint8


def test_crop_mask_rejects_bbox_outside():
    with pytest.raises(ValueError, match="outside"):
        crop_mask(np.ones((5, 5), bool), (3, 0, 3, 2))


def test_label_image_picks_highest_logit_above_threshold():
    a = np.array([[5.0, -1.0, 2.0, -3.0]], np.float32)
    b = np.array([[1.0, 3.0, 4.0, -2.0]], np.float32)
    labels = label_image([a, b], [7, 300])
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(labels, [[7, 300, 300, 0]])


def test_label_image_threshold_excludes_low_logits():
    a = np.array([[0.5, 2.0]], np.float32)
    b = np.array([[0.8, 1.0]], np.float32)
    np.testing.assert_array_equal(label_image([a, b], [1, 2], threshold=0.9), [[0, 1]])
    # Nothing exceeds a higher threshold, even though a logit is "highest".
    np.testing.assert_array_equal(label_image([a, b], [1, 2], threshold=5.0), [[0, 0]])


def test_label_image_ignores_nan_and_accepts_leading_axes():
    a = np.array([[[np.nan, 1.0]]], np.float32)  # (1, 1, 2) like SAM 2 output
    b = np.array([[0.5, np.nan]], np.float32)
    np.testing.assert_array_equal(label_image([a, b], [1, 2]), [[2, 1]])


def test_label_image_ties_go_to_first():
    a = np.ones((2, 2), np.float32)
    np.testing.assert_array_equal(label_image([a, a.copy()], [4, 9]), np.full((2, 2), 4))


def test_label_image_empty_needs_shape():
    out = label_image([], [], shape=(3, 4))
    assert out.shape == (3, 4) and out.dtype == np.uint16 and not out.any()
    with pytest.raises(ValueError, match="shape"):
        label_image([], [])


@pytest.mark.parametrize(
    "logits,ids",
    [
        ([np.zeros((2, 2))], [1, 2]),  # length mismatch
        ([np.zeros((2, 2))], [0]),  # 0 is background
        ([np.zeros((2, 2))], [70000]),  # does not fit uint16
        ([np.zeros((2, 2)), np.zeros((2, 3))], [1, 2]),  # shape mismatch
        ([np.zeros((2, 2, 2))], [1]),  # not a plane
    ],
)
def test_label_image_rejects_bad_input(logits, ids):
    with pytest.raises(ValueError):
        label_image(logits, ids)


def test_interior_point_avoids_a_centroid_off_the_object():
    # An occluded object's visible centroid may fall on what occludes it; the click (and
    # the overlay's caption) must still land on the object itself.
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:10] = True
    mask[5:35, 30:35] = True  # two bars: centroid lies between them, off the object
    x, y = interior_point(mask)
    assert mask[round(y), round(x)]
    x, y = interior_point(mask, (20.0, 20.0))
    assert mask[round(y), round(x)]
    solid = np.zeros((40, 40), bool)
    solid[10:20, 10:30] = True
    assert interior_point(solid) == pytest.approx((19.5, 14.5))  # on the object: centroid
