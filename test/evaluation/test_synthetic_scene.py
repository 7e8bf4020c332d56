"""Tests for the synthetic scene: determinism, ground-truth consistency, scripted events."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.evaluation.synthetic_scene import (
    BASE_STAMP_S,
    SceneConfig,
    camera_intrinsics,
    first_frame_prompts,
    render_scene,
)


@pytest.fixture(scope="module")
def frames():
    return list(render_scene(SceneConfig()))


def test_frame_count_shapes_and_stamps(frames):
    cfg = SceneConfig()
    assert len(frames) == 30
    for i, f in enumerate(frames):
        assert f.index == i
        assert f.stamp_ns == BASE_STAMP_S * 10**9 + i * 100_000_000
        assert f.rgb.shape == (cfg.height, cfg.width, 3) and f.rgb.dtype == np.uint8
        assert f.labels.shape == (cfg.height, cfg.width) and f.labels.dtype == np.uint16
        assert f.depth_m is not None and f.depth_m.dtype == np.float32
        assert f.depth_m.shape == (cfg.height, cfg.width)
        assert [o.id for o in f.objects] == [1, 2, 3]


def test_deterministic_and_seed_dependent():
    cfg = SceneConfig(duration_s=0.5)
    a, b = list(render_scene(cfg)), list(render_scene(cfg))
    c = list(render_scene(SceneConfig(duration_s=0.5, seed=1)))
    for fa, fb, fc in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(fa.rgb, fb.rgb)
        np.testing.assert_array_equal(fa.labels, fb.labels)
        assert not np.array_equal(fa.rgb, fc.rgb)


def test_object_states_match_labels(frames):
    for f in frames:
        for o in f.objects:
            ys, xs = np.nonzero(f.labels == o.id)
            assert o.visible == (xs.size > 0)
            assert o.area == xs.size
            if o.visible:
                assert o.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                assert o.centre == pytest.approx((xs.mean(), ys.mean()))
            else:
                assert o.bbox is None and o.centre is None


def test_background_is_textured(frames):
    f = frames[0]
    bg = f.rgb[f.labels == 0].astype(float)
    assert bg.std(axis=0).min() > 10
    # Not flat even locally: a 16x16 background patch has visible variation.
    patch = f.rgb[200:216, 10:26].astype(float)
    assert (f.labels[200:216, 10:26] == 0).all()
    assert patch.std() > 3


def test_objects_are_coloured_and_textured(frames):
    f = frames[0]
    for oid, channel in ((1, 0), (2, 1), (3, 2)):  # red circle, green rectangle, blue triangle
        px = f.rgb[f.labels == oid].astype(float)
        mean = px.mean(axis=0)
        assert mean[channel] > mean[[c for c in range(3) if c != channel]].max() + 50
        assert px[:, channel].std() > 5


def test_rectangle_occludes_circle(frames):
    full = frames[0].objects[0].area
    areas1 = [f.objects[0].area for f in frames]
    areas2 = [f.objects[1].area for f in frames]
    worst = int(np.argmin(areas1))
    assert 0 < areas1[worst] < 0.2 * full  # mostly hidden, never fully gone
    assert areas2[worst] > 0.95 * max(areas2)  # the occluder stays whole
    assert areas1[-1] > 0.95 * full  # and the circle comes out again
    f = frames[worst]
    assert f.objects[1].depth_m < f.objects[0].depth_m


def test_triangle_leaves_and_returns(frames):
    vis = [f.objects[2].visible for f in frames]
    assert vis[0] and vis[-1]
    gone = [i for i, v in enumerate(vis) if not v]
    assert len(gone) >= 5
    assert gone == list(range(gone[0], gone[-1] + 1))  # one contiguous absence


def test_depth_consistent_with_labels(frames):
    for f in frames[::7]:
        d = f.depth_m
        bg = d[f.labels == 0]
        assert bg.min() > 2.7 and bg.max() < 3.3
        assert d[0].mean() > d[-1].mean() + 0.2  # tilted plane, not flat
        for o in f.objects:
            if o.visible:
                vals = d[f.labels == o.id]
                assert 1.0 <= o.depth_m <= 2.0
                np.testing.assert_allclose(vals, o.depth_m, atol=1e-6)


def test_without_depth_and_many_objects():
    cfg = SceneConfig(duration_s=0.3, num_objects=7, with_depth=False, seed=3)
    fs = list(render_scene(cfg))
    assert all(f.depth_m is None for f in fs)
    depths = [o.depth_m for o in fs[0].objects]
    assert len(set(depths)) == 7
    assert int(fs[0].labels.max()) <= 7
    assert {o.id for o in fs[0].objects if o.visible} >= {1, 2, 3}


def test_zero_objects_gives_empty_labels():
    f = next(render_scene(SceneConfig(num_objects=0, duration_s=0.1)))
    assert not f.labels.any() and f.objects == ()


@pytest.mark.parametrize("kwargs", [{"width": 4}, {"fps": 0.0}, {"duration_s": -1.0},
                                    {"num_objects": -1}])
def test_invalid_config_raises(kwargs):
    with pytest.raises(ValueError):
        next(render_scene(SceneConfig(**kwargs)))


def test_camera_intrinsics():
    assert camera_intrinsics(SceneConfig(width=640, height=480)) == (512.0, 512.0, 320.0, 240.0)


def test_first_frame_prompts_are_on_their_objects():
    cfg = SceneConfig(duration_s=1.0, num_objects=5, seed=2)
    prompts = first_frame_prompts(cfg)
    frames = list(render_scene(cfg))
    assert [p.obj_id for p in prompts] == [1, 2, 3, 4, 5]
    for p in prompts:
        first = next(f.index for f in frames
                     if f.objects[p.obj_id - 1].visible and f.objects[p.obj_id - 1].area >= 50)
        assert p.frame_index == first
        f = frames[p.frame_index]
        assert p.stamp_ns == f.stamp_ns
        x, y = p.point
        assert f.labels[round(y), round(x)] == p.obj_id
        x0, y0, x1, y1 = p.box
        assert x0 <= x < x1 and y0 <= y < y1
        assert p.box == tuple(float(v) for v in f.objects[p.obj_id - 1].bbox)
