"""Tests for sam2_ros.imaging.overlay."""

import cv2
import numpy as np
import pytest

from sam2_ros.imaging.masks import interior_point
from sam2_ros.imaging.overlay import (
    OverlayObject,
    caption_size,
    draw_overlay,
    object_color,
    place_captions,
)

BACKGROUND_RGB = (200, 40, 0)  # red-orange
BACKGROUND_BGR = list(BACKGROUND_RGB[::-1])  # as the bgr8 overlay shows it
H, W = 120, 160


@pytest.fixture
def rgb() -> np.ndarray:
    return np.full((H, W, 3), BACKGROUND_RGB, np.uint8)


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
    assert out[0, 0].tolist() == BACKGROUND_BGR


def test_input_is_not_modified(rgb, box_mask):
    before, mask_before = rgb.copy(), box_mask.copy()
    draw_overlay(rgb, [(1, "cup", box_mask, True, 0.9)])
    np.testing.assert_array_equal(rgb, before)
    np.testing.assert_array_equal(box_mask, mask_before)


def test_mask_interior_is_blended_and_outside_untouched(rgb, box_mask):
    out = draw_overlay(rgb, [OverlayObject(3, "cup", box_mask, True, 0.87)], alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    color = np.array(object_color(3), float)
    expected = np.rint(0.5 * np.array(BACKGROUND_BGR, float) + 0.5 * color)
    np.testing.assert_allclose(out[92, 90], expected, atol=1)  # below the caption
    # Far from the mask, its contour and its caption: plain BGR.
    assert out[H - 2, 2].tolist() == BACKGROUND_BGR
    # The contour is drawn in the object colour along the boundary.
    np.testing.assert_array_equal(out[75, 60], object_color(3))


def _caption_box(out: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the darkened caption box drawn over the plain test image."""
    shaded = (out == (np.array(BACKGROUND_BGR, np.float32) * 0.3).astype(np.uint8)).all(-1)
    ys, xs = np.nonzero(shaded)
    assert ys.size, "no caption box drawn"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_caption_is_drawn_on_the_mask_not_above_it(rgb, box_mask):
    out = draw_overlay(rgb, [(3, "cup", box_mask, True, 0.87)], alpha=0.0)
    x0, y0, x1, y1 = _caption_box(out)
    assert x0 <= 89.5 < x1 and y0 <= 74.5 < y1  # centred on the mask's centroid
    above = (slice(30, 48), slice(60, 120))  # where it used to sit, over the background
    np.testing.assert_array_equal(out[above], rgb[..., ::-1][above])


def test_caption_of_a_ring_lies_on_the_ring_not_in_its_hole(rgb):
    ring = np.zeros((H, W), bool)
    cv2.circle(ring.view(np.uint8), (80, 60), 40, 1, thickness=12)
    out = draw_overlay(rgb, [(1, "ring", ring, True, 0.5)], alpha=0.0)
    x0, y0, x1, y1 = _caption_box(out)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    assert np.hypot(cx - 80, cy - 60) > 20, "caption in the hole, on no object"


def test_caption_stays_whole_inside_the_image(rgb):
    corner = np.zeros((H, W), bool)
    corner[H - 6 :, W - 6 :] = True  # a sliver in the bottom-right corner
    out = draw_overlay(rgb, [(12, "corner", corner, True, 0.9)], alpha=0.0)
    w, h = caption_size("12 corner 0.90", (H, W))
    assert _caption_box(out) == (W - w, H - h, W, H)


def test_captions_of_meeting_masks_do_not_cover_each_other(rgb):
    upper = np.zeros((H, W), bool)
    lower = np.zeros((H, W), bool)
    upper[50:60, 30:130] = True
    lower[60:70, 30:130] = True  # shares an edge: interior points 10 px apart
    objects = [(1, "upper", upper, True, 0.9), (2, "lower", lower, True, 0.8)]
    sizes = [caption_size(f"{i} {name} {s:.2f}", (H, W)) for i, name, _, _, s in objects]
    first, second = place_captions(sizes, [interior_point(upper), interior_point(lower)], (H, W))
    assert first[3] <= second[1] or second[3] <= first[1], (first, second)
    for x0, y0, x1, y1 in (first, second):
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
    out = draw_overlay(rgb, objects, alpha=0.0)
    for (x0, y0, x1, y1), obj_id in ((first, 1), (second, 2)):
        patch = out[y0:y1, x0:x1].astype(int)
        near = np.abs(patch - np.array(object_color(obj_id))).max(-1) < 60
        assert near.sum() >= 10, f"caption {obj_id} unreadable"


def test_caption_fits_when_mask_touches_top_edge(rgb):
    mask = np.zeros((H, W), bool)
    mask[0:40, 0:40] = True
    out = draw_overlay(rgb, [(1, "a", mask, True, 1.0)], alpha=0.0)
    _, _, x1, y1 = _caption_box(out)
    assert x1 <= 40 and y1 <= 40  # on the mask, whole


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
    np.testing.assert_array_equal(out[92, 35], object_color(1))  # below the captions
    np.testing.assert_array_equal(out[92, 125], object_color(2))


def test_bad_inputs_raise(rgb, box_mask):
    with pytest.raises(ValueError, match="mask"):
        draw_overlay(rgb, [(1, "a", box_mask[:10], True, 1.0)])
    with pytest.raises(ValueError, match="alpha"):
        draw_overlay(rgb, [], alpha=1.5)
    with pytest.raises(ValueError, match="RGB"):
        draw_overlay(rgb[..., 0], [])
