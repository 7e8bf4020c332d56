"""Tests for sam2_ros.imaging.geometry on synthetic depth with known geometry."""

import numpy as np
import pytest

from sam2_ros.imaging.geometry import CameraIntrinsics, object_position, resize_mask_nearest

H, W = 480, 640
K = [525.0, 0.0, 319.5, 0.0, 530.0, 239.5, 0.0, 0.0, 1.0]
# Box face (fronto-parallel, Z = 1.5 m) covering these pixel ranges, inclusive.
U0, U1, V0, V1 = 400, 479, 100, 159
BOX_Z, PLANE_Z = 1.5, 2.0


@pytest.fixture
def intr() -> CameraIntrinsics:
    return CameraIntrinsics.from_k(K)


@pytest.fixture
def scene() -> tuple[np.ndarray, np.ndarray]:
    """A wall at 2 m with an off-centre box face at 1.5 m, and the box's exact mask."""
    depth = np.full((H, W), PLANE_Z, np.float32)
    depth[V0 : V1 + 1, U0 : U1 + 1] = BOX_Z
    mask = np.zeros((H, W), bool)
    mask[V0 : V1 + 1, U0 : U1 + 1] = True
    return mask, depth


def analytic_centre(intr: CameraIntrinsics) -> np.ndarray:
    u, v = (U0 + U1) / 2, (V0 + V1) / 2
    return np.array([(u - intr.cx) * BOX_Z / intr.fx, (v - intr.cy) * BOX_Z / intr.fy, BOX_Z])


def test_from_k_reads_row_major_layout(intr):
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (525.0, 530.0, 319.5, 239.5)


@pytest.mark.parametrize(
    "k", [[0.0] * 9, [525, 0, 319.5, 0, -1, 239.5, 0, 0, 1], [float("nan"), 0, 0, 0, 1, 0, 0, 0, 1]]
)
def test_from_k_rejects_uncalibrated(k):
    with pytest.raises(ValueError, match="focal"):
        CameraIntrinsics.from_k(k)


def test_from_k_rejects_wrong_length():
    with pytest.raises(ValueError, match="9"):
        CameraIntrinsics.from_k(K[:8])


def test_scaled_maps_pixel_centres():
    intr = CameraIntrinsics(fx=500.0, fy=400.0, cx=319.5, cy=239.5)
    half = intr.scaled(0.5, 0.5)
    assert (half.fx, half.fy) == (250.0, 200.0)
    # The optical centre of a 640x480 image is the centre of a 320x240 one too.
    assert (half.cx, half.cy) == (159.5, 119.5)


def test_position_matches_analytic_box_centre(scene, intr):
    mask, depth = scene
    pos = object_position(mask, depth, intr)
    assert pos is not None
    np.testing.assert_allclose(pos, analytic_centre(intr), atol=0.01)
    assert pos[0] > 0 and pos[1] < 0  # right of and above the optical axis


def test_outliers_and_holes_do_not_move_position(scene, intr):
    mask, depth = scene
    rng = np.random.default_rng(3)
    vs, us = np.nonzero(mask)
    pick = rng.permutation(vs.size)
    n = vs.size
    depth[vs[pick[: n // 5]], us[pick[: n // 5]]] = np.nan  # 20 % holes
    depth[vs[pick[n // 5 : n // 5 + n // 20]], us[pick[n // 5 : n // 5 + n // 20]]] = 0.0
    far = pick[n // 4 : n // 4 + n // 10]
    depth[vs[far], us[far]] = 9.0  # 10 % flying pixels far behind
    near = pick[n // 4 + n // 10 : n // 4 + n // 5]
    depth[vs[near], us[near]] = 0.3  # 10 % spurious near returns
    pos = object_position(mask, depth, intr)
    assert pos is not None
    np.testing.assert_allclose(pos, analytic_centre(intr), atol=0.01)


def test_mask_leaking_onto_background_barely_moves_position(scene, intr):
    mask, depth = scene
    mask[V0 : V1 + 1, U1 + 1 : U1 + 5] = True  # 4 px leak onto the 2 m wall
    pos = object_position(mask, depth, intr)
    assert pos is not None
    assert pos[2] == pytest.approx(BOX_Z)
    np.testing.assert_allclose(pos, analytic_centre(intr), atol=0.01)


def test_mask_at_higher_resolution_is_resized_to_depth(scene, intr):
    _, depth = scene
    big = np.zeros((2 * H, 2 * W), bool)
    big[2 * V0 : 2 * (V1 + 1), 2 * U0 : 2 * (U1 + 1)] = True
    pos = object_position(big, depth, intr)
    assert pos is not None
    np.testing.assert_allclose(pos, analytic_centre(intr), atol=0.01)


def test_resize_mask_nearest_samples_pixel_centres():
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = True
    small = resize_mask_nearest(mask, (2, 2))
    # Output pixel (0, 0) covers source (0..1, 0..1); its centre samples source (1, 1).
    np.testing.assert_array_equal(small, [[True, False], [False, False]])
    up = resize_mask_nearest(small, (4, 4))
    np.testing.assert_array_equal(up[:2, :2], True)
    assert up.sum() == 4


def test_too_few_valid_depths_returns_none(scene, intr):
    mask, depth = scene
    depth[mask] = np.nan
    assert object_position(mask, depth, intr) is None
    vs, us = np.nonzero(mask)
    depth[vs[:9], us[:9]] = BOX_Z
    assert object_position(mask, depth, intr, min_valid=10) is None
    depth[vs[9], us[9]] = BOX_Z
    assert object_position(mask, depth, intr, min_valid=10) is not None


def test_empty_mask_returns_none(scene, intr):
    _, depth = scene
    assert object_position(np.zeros((H, W), bool), depth, intr, min_valid=0) is None
