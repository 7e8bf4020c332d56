"""Deterministic synthetic video scene with exact ground truth.

Tests and demos need a video in which we *know* every object's mask, depth and
visibility, and which exercises the hard cases of video object tracking: a textured
background, objects that cross and occlude each other, and an object that leaves the
frame and comes back. Rendering it procedurally keeps the repository free of large
binary fixtures and makes every run reproducible from ``SceneConfig`` alone.

The first three objects follow hand-designed paths in normalised time ``t in [0, 1]``, so
the events happen whatever the frame rate or duration: a circle moving left to right, a
rotating rectangle moving right to left in front of it (crossing at ``t = 0.5``) and a far
triangle leaving on the right (``t = 0.3``) and coming back (``t = 0.7``). Further objects
(``num_objects > 3``) get seeded random smooth paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from sam2_ros.imaging.masks import interior_point

#: Stamp of frame 0, in seconds since the epoch (a fixed, realistic wall-clock time).
BASE_STAMP_S = 1_700_000_000

#: Background plane depth at the image centre, in metres.
BACKGROUND_DEPTH_M = 3.0

_SHAPES = ("circle", "rectangle", "triangle", "ellipse")
_COLOURS = (
    (220, 50, 40),
    (40, 170, 60),
    (50, 80, 220),
    (230, 200, 30),
    (200, 60, 200),
    (30, 200, 210),
)


@dataclass(frozen=True)
class SceneConfig:
    """Parameters of the synthetic scene; equal configs render identical videos."""

    width: int = 320
    height: int = 240
    fps: float = 10.0
    duration_s: float = 3.0
    num_objects: int = 3
    seed: int = 0
    with_depth: bool = True

    @property
    def num_frames(self) -> int:
        """Number of frames rendered (at least one)."""
        return max(1, round(self.duration_s * self.fps))

    def validate(self) -> None:
        """Raise ValueError early, rather than rendering garbage, for bad settings."""
        if self.width < 16 or self.height < 16:
            raise ValueError(f"scene must be at least 16x16 pixels, got {self.width}x{self.height}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if not self.duration_s > 0:
            raise ValueError(f"duration_s must be positive, got {self.duration_s}")
        if self.num_objects < 0 or self.num_objects > 65535:
            raise ValueError(f"num_objects must be in [0, 65535], got {self.num_objects}")


@dataclass(frozen=True)
class ObjectState:
    """Ground truth of one object in one frame.

    ``bbox`` is ``(x0, y0, x1, y1)`` in pixels with ``x1``/``y1`` exclusive, and
    ``centre`` is the ``(x, y)`` centroid; both describe the *visible* pixels
    (after occlusion and clipping), because that is what a tracker can see.
    Both are None when the object is not visible.
    """

    id: int
    shape: str
    visible: bool
    area: int
    bbox: tuple[int, int, int, int] | None
    centre: tuple[float, float] | None
    depth_m: float


@dataclass(frozen=True)
class SceneFrame:
    """One rendered frame with its ground truth."""

    index: int
    stamp_ns: int
    rgb: np.ndarray
    depth_m: np.ndarray | None
    labels: np.ndarray
    objects: tuple[ObjectState, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ObjectPrompt:
    """A prompt a user could give for one object: a positive click and a box."""

    obj_id: int
    frame_index: int
    stamp_ns: int
    point: tuple[float, float]
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class _Obj:
    """Static description of an object; its pose comes from ``_pose``."""

    id: int
    shape: str
    size: float  # characteristic half-size in pixels
    depth_m: float
    colour: tuple[int, int, int]
    tex_freq: float
    tex_phase: float
    path: tuple[float, ...]  # parameters for random paths (ids > 3)


def camera_intrinsics(cfg: SceneConfig) -> tuple[float, float, float, float]:
    """Pinhole intrinsics ``(fx, fy, cx, cy)`` consistent with the rendered depth.

    A focal length of 0.8 * width gives a ~64 degree horizontal field of view, a
    typical webcam/RGB-D value, so back-projected positions look plausible.
    """
    f = 0.8 * cfg.width
    return f, f, cfg.width / 2.0, cfg.height / 2.0


def frame_stamp_ns(cfg: SceneConfig, index: int) -> int:
    """Stamp of frame ``index``: fixed epoch plus ``index / fps`` (integer ns)."""
    return BASE_STAMP_S * 1_000_000_000 + round(index * 1e9 / cfg.fps)


def _make_objects(cfg: SceneConfig, rng: np.random.Generator) -> list[_Obj]:
    s = min(cfg.width, cfg.height)
    fixed = [
        ("circle", 0.13 * s, 1.6),
        ("rectangle", 0.15 * s, 1.2),
        ("triangle", 0.12 * s, 1.9),
    ]
    objs: list[_Obj] = []
    used_depths: set[float] = set()
    for i in range(cfg.num_objects):
        oid = i + 1
        if i < len(fixed):
            shape, size, depth = fixed[i]
            path: tuple[float, ...] = ()
        else:
            shape = _SHAPES[i % len(_SHAPES)]
            size = float(rng.uniform(0.07, 0.12)) * s
            depth = round(float(rng.uniform(1.0, 2.0)), 4)
            while depth in used_depths:  # strict depth order keeps occlusion well defined
                depth = round(depth + 1e-3, 4)
            # x0, y0, vx, vy (frame fractions over the clip), wobble amplitude, phase
            path = tuple(float(v) for v in rng.uniform([0.2, 0.2, -0.5, -0.4, 0.02, 0.0],
                                                       [0.8, 0.8, 0.5, 0.4, 0.08, 6.28]))
        used_depths.add(depth)
        colour = _COLOURS[i % len(_COLOURS)]
        objs.append(_Obj(oid, shape, size, depth, colour,
                         tex_freq=float(rng.uniform(0.15, 0.3)),
                         tex_phase=float(rng.uniform(0, 2 * math.pi)), path=path))
    return objs


def _pose(obj: _Obj, t: float, w: int, h: int) -> tuple[float, float, float]:
    """Centre ``(x, y)`` in pixels and rotation (radians) at normalised time ``t``."""
    if obj.id == 1:
        return w * (0.2 + 0.6 * t), h * (0.5 + 0.08 * math.sin(2 * math.pi * t)), 0.0
    if obj.id == 2:
        return w * (0.8 - 0.6 * t), h * (0.55 + 0.06 * math.cos(2 * math.pi * t)), 0.6 * t
    if obj.id == 3:
        return w * (0.5 + 0.8 * math.sin(math.pi * t)), h * (0.2 + 0.03 * math.sin(4 * t)), 0.0
    x0, y0, vx, vy, amp, ph = obj.path
    # Reflect into [0.1, 0.9] so random objects stay mostly on screen.
    fx = _reflect(x0 + vx * t + amp * math.sin(2 * math.pi * t + ph))
    fy = _reflect(y0 + vy * t + amp * math.cos(2 * math.pi * t + ph))
    return w * fx, h * fy, ph + t


def _reflect(v: float, lo: float = 0.1, hi: float = 0.9) -> float:
    span = hi - lo
    m = (v - lo) % (2 * span)
    return lo + (m if m <= span else 2 * span - m)


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Inside test in object-local coordinates (u right, v down, origin at centre)."""
    if shape == "circle":
        return u * u + v * v <= r * r
    if shape == "rectangle":
        return (np.abs(u) <= 1.2 * r) & (np.abs(v) <= 0.8 * r)
    if shape == "ellipse":
        return (u / (1.3 * r)) ** 2 + (v / (0.7 * r)) ** 2 <= 1.0
    if shape == "triangle":
        # Upward-pointing isosceles triangle with apex at v = -r, base at v = +r.
        return (v <= r) & (np.abs(u) <= 0.6 * (v + r))
    raise ValueError(f"unknown shape {shape!r}")


def _background(cfg: SceneConfig, rng: np.random.Generator) -> np.ndarray:
    """Smooth coloured noise plus a faint grid: textured so trackers cannot cheat."""
    h, w = cfg.height, cfg.width
    low = rng.uniform(0.0, 1.0, size=(max(2, h // 16), max(2, w // 16), 3)).astype(np.float32)
    noise = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    bg = 90.0 + 70.0 * noise
    ys, xs = np.mgrid[0:h, 0:w]
    grid = (xs % 20 == 0) | (ys % 20 == 0)
    bg[grid] *= 0.7
    return np.clip(bg, 0, 255).astype(np.float32)


def _background_depth(cfg: SceneConfig) -> np.ndarray:
    """Plane at ~3 m, tilted so depth grows towards the image top (like a wall leaning away)."""
    rows = np.arange(cfg.height, dtype=np.float32)
    col = BACKGROUND_DEPTH_M + 0.4 * (cfg.height / 2.0 - rows) / cfg.height
    return np.repeat(col[:, None], cfg.width, axis=1).astype(np.float32)


def render_scene(cfg: SceneConfig) -> Iterator[SceneFrame]:
    """Yield the frames of the scene described by ``cfg``, one at a time.

    Frames are produced lazily so long clips do not need to fit in memory.
    Objects are painted far-to-near, so ``labels`` and ``rgb`` agree on who
    occludes whom, and the depth image is the depth of the painted surface.
    """
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    objs = _make_objects(cfg, rng)
    bg = _background(cfg, rng)
    bg_depth = _background_depth(cfg) if cfg.with_depth else None
    h, w = cfg.height, cfg.width
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    far_to_near = sorted(objs, key=lambda o: -o.depth_m)
    n = cfg.num_frames

    for index in range(n):
        t = index / (n - 1) if n > 1 else 0.0
        img = bg.copy()
        labels = np.zeros((h, w), dtype=np.uint16)
        depth = bg_depth.copy() if bg_depth is not None else None
        for obj in far_to_near:
            cx, cy, rot = _pose(obj, t, w, h)
            dx, dy = xs - cx, ys - cy
            c, s = math.cos(rot), math.sin(rot)
            u, v = c * dx + s * dy, -s * dx + c * dy
            inside = shape_mask(obj.shape, u, v, obj.size)
            if not inside.any():
                continue
            # Texture fixed to the object (moves and rotates with it): stripes x checker.
            stripes = 0.5 + 0.5 * np.sin(obj.tex_freq * (u + 0.5 * v) + obj.tex_phase)
            checker = ((np.floor(u[inside] / 6) + np.floor(v[inside] / 6)) % 2).astype(np.float32)
            shade = 0.6 + 0.3 * stripes[inside] + 0.1 * checker
            img[inside] = np.asarray(obj.colour, np.float32)[None, :] * shade[:, None]
            labels[inside] = obj.id
            if depth is not None:
                depth[inside] = obj.depth_m
        rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        states = tuple(_state(obj, labels) for obj in objs)
        yield SceneFrame(index, frame_stamp_ns(cfg, index), rgb, depth, labels, states)


def _state(obj: _Obj, labels: np.ndarray) -> ObjectState:
    ys, xs = np.nonzero(labels == obj.id)
    if xs.size == 0:
        return ObjectState(obj.id, obj.shape, False, 0, None, None, obj.depth_m)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    centre = (float(xs.mean()), float(ys.mean()))
    return ObjectState(obj.id, obj.shape, True, int(xs.size), bbox, centre, obj.depth_m)


def first_frame_prompts(cfg: SceneConfig, min_area: int = 50) -> list[ObjectPrompt]:
    """Per object, a positive point and a box on the first frame where it is visible.

    ``min_area`` skips frames where only a sliver shows, which would make a
    poor prompt.  Objects never visible enough get no prompt.  Sorted by id.
    """
    pending = set(range(1, cfg.num_objects + 1))
    prompts: dict[int, ObjectPrompt] = {}
    for frame in render_scene(cfg):
        for st in frame.objects:
            if st.id in pending and st.visible and st.area >= min_area:
                assert st.bbox is not None and st.centre is not None
                point = interior_point(frame.labels == st.id, st.centre)
                x0, y0, x1, y1 = st.bbox
                box = (float(x0), float(y0), float(x1), float(y1))
                prompts[st.id] = ObjectPrompt(st.id, frame.index, frame.stamp_ns, point, box)
                pending.discard(st.id)
        if not pending:
            break
    return [prompts[k] for k in sorted(prompts)]
