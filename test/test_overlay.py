"""Tests for sam2_ros.imaging.overlay."""

import cv2
import numpy as np
import pytest

from sam2_ros.imaging.overlay import OverlayObject, draw_overlay, object_color

H, W = 120, 160


@pytest.fixture
def rgb() -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    img[..., 1] = 40
    return img


@pytest.fixture
def box_mask() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[50:100, 60:120] = True
    return mask


def test_object_color_is_deterministic_and_distinct():
    colors = [object_color(i) for i in range(1, 21)]
    assert colors == [object_color(i) for i in range(1, 21)]
    assert len(set(colors)) == len(colors)
    for c in colors:
        assert len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
    # Neighbouring ids should be clearly different, not just off by one step.
    a, b = np.array(colors[0]), np.array(colors[1])
    assert np.abs(a - b).max() > 60


def test_no_objects_gives_bgr_copy(rgb):
    out = draw_overlay(rgb, [])
    np.testing.assert_array_equal(out, rgb[..., ::-1])
    assert out[0, 0].tolist() == [0, 40, 200]


def test_input_is_not_modified(rgb, box_mask):
    before, mask_before = rgb.copy(), box_mask.copy()
    draw_overlay(rgb, [(1, "cup", box_mask, True, 0.9)])
    np.testing.assert_array_equal(rgb, before)
    np.testing.assert_array_equal(box_mask, mask_before)


def test_mask_interior_is_blended_and_outside_untouched(rgb, box_mask):
    out = draw_overlay(rgb, [OverlayObject(3, "cup", box_mask, True, 0.87)], alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    color = np.array(object_color(3), float)
    expected = np.rint(0.5 * np.array([0, 40, 200], float) + 0.5 * color)
    np.testing.assert_allclose(out[75, 90], expected, atol=1)
    # Far from the mask, its contour and its caption: plain BGR.
    assert out[H - 2, 2].tolist() == [0, 40, 200]
    # The contour is drawn in the object colour along the boundary.
    np.testing.assert_array_equal(out[75, 60], object_color(3))


def test_caption_is_drawn_near_top_left(rgb, box_mask):
    with_text = draw_overlay(rgb, [(3, "cup", box_mask, True, 0.87)], alpha=0.0)
    region = (slice(30, 47), slice(60, 120))  # above the mask and clear of its contour
    assert (with_text[region] != rgb[..., ::-1][region]).any()


def test_caption_fits_when_mask_touches_top_edge(rgb):
    mask = np.zeros((H, W), bool)
    mask[0:40, 0:40] = True
    out = draw_overlay(rgb, [(1, "a", mask, True, 1.0)], alpha=0.0)
    assert (out[4:20, 4:36] != rgb[4:20, 4:36, ::-1]).any()  # inside, clear of contour


def test_invisible_and_empty_objects_are_not_drawn(rgb, box_mask):
    out = draw_overlay(
        rgb,
        [(1, "hidden", box_mask, False, 0.9), (2, "empty", np.zeros((H, W), bool), True, 0.1)],
    )
    np.testing.assert_array_equal(out, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_two_objects_get_their_own_colours(rgb):
    m1 = np.zeros((H, W), bool)
    m2 = np.zeros((H, W), bool)
    m1[60:100, 10:60] = True
    m2[60:100, 100:150] = True
    out = draw_overlay(rgb, [(1, "a", m1, True, 0.5), (2, "b", m2, True, 0.5)], alpha=1.0)
    np.testing.assert_array_equal(out[80, 35], object_color(1))
    np.testing.assert_array_equal(out[80, 125], object_color(2))


def test_bad_inputs_raise(rgb, box_mask):
    with pytest.raises(ValueError, match="mask"):
        draw_overlay(rgb, [(1, "a", box_mask[:10], True, 1.0)])
    with pytest.raises(ValueError, match="alpha"):
        draw_overlay(rgb, [], alpha=1.5)
    with pytest.raises(ValueError, match="RGB"):
        draw_overlay(rgb[..., 0], [])
