"""Randomised synthetic scenes: what the demo model trains on and is judged on.

The designed demo scene (``synthetic_scene``) has three hand-made paths; a model trained
only on it would learn those paths. This generator draws a whole scene from one seed with
the situations video object tracking must handle: varied backgrounds, 1 to 4 objects of
varied shape, colour, texture and size on smooth random paths, occlusion, objects leaving
and coming back, look-alike distractors, camera shake and brightness drift.

``split`` keeps training and held-out scenes apart (separately seeded, so no held-out
scene is ever trained on). ``family="crossing"`` draws the scenes where identities get
confused: look-alikes whose paths cross, swap places or wait where another left; its own
entropy tag keeps its held-out seeds apart too. What each family holds, in detail:
docs/demo_model.md ("How it was trained") and docs/identity.md ("The crossing scenes").
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from sam2_ros.evaluation.synthetic_scene import BASE_STAMP_S, shape_mask

#: Entropy tags of the two splits; a scene's generator is seeded with (tag, seed).
SPLITS = {"train": 0x7A11, "heldout": 0xE7A1}
#: Scene families: standard scenes keep their original seeding; other families add a tag.
FAMILIES = {"standard": None, "crossing": 0xC055}
#: The kinds of crossing scene, drawn in turn by seed (seed % 4) so any 4 seeds hold each.
CROSSING_KINDS = ("cross", "swap", "sweep", "exit_return")

#: The held-out evaluation docs/demo_model.md quotes: seeds 0..19 of the held-out split,
#: 30 frames each (`sam2_ros evaluate` and `sam2_ros train`'s final report default to it).
HELDOUT_SCENES = 20
HELDOUT_FRAMES = 30

SHAPES = ("circle", "rectangle", "triangle", "ellipse", "blob")


@dataclass(frozen=True)
class RandomSceneConfig:
    """Size, length and event probabilities of a random scene; equal configs render equal videos."""

    width: int = 320
    height: int = 240
    num_frames: int = 8
    seed: int = 0
    split: str = "train"
    min_objects: int = 1
    max_objects: int = 4
    p_occlusion: float = 0.5  # an object passes fully behind a nearer occluder
    p_exit: float = 0.3  # an object leaves the frame and comes back
    p_distractor: float = 0.4  # an extra object coloured like another one
    p_shake: float = 0.3
    p_brightness: float = 0.4
    fps: float = 10.0
    family: str = "standard"  # or "crossing": look-alikes that cross, swap, hide, return

    def validate(self) -> None:
        """Refuse settings that would render nothing useful."""
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {self.split!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {self.family!r}")
        if self.family == "crossing" and self.num_frames < 12:
            raise ValueError(f"crossing scenes need >= 12 frames, got {self.num_frames}")
        if self.width < 32 or self.height < 32:
            raise ValueError(f"scene must be at least 32x32, got {self.width}x{self.height}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError("need 1 <= min_objects <= max_objects")


@dataclass(frozen=True)
class ObjectPlan:
    """One object's look and motion over the whole clip."""

    id: int
    shape: str
    colour: tuple[float, float, float]
    texture: str  # "stripes", "flat" or "checker"
    tex_freq: float
    tex_phase: float
    depth_m: float
    xs: np.ndarray  # per-frame centre x (pixels)
    ys: np.ndarray  # per-frame centre y
    radii: np.ndarray  # per-frame characteristic half-size
    rotations: np.ndarray  # per-frame rotation (radians)
    blob_coeffs: tuple[float, ...] = ()


@dataclass(frozen=True)
class RandomFrame:
    """One rendered frame: RGB, the label image (0 = background) and depth in metres."""

    index: int
    stamp_ns: int
    rgb: np.ndarray
    labels: np.ndarray
    depth_m: np.ndarray


class RandomScene:
    """A scene drawn from ``RandomSceneConfig``; ``frames()`` renders it lazily."""

    def __init__(self, cfg: RandomSceneConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        tag = FAMILIES[cfg.family]
        entropy = [SPLITS[cfg.split], cfg.seed] if tag is None else [SPLITS[cfg.split], tag,
                                                                     cfg.seed]
        self.rng = np.random.default_rng(entropy)
        self.background = _background(self.rng, cfg.width, cfg.height, margin=_SHAKE_MARGIN)
        self.objects: list[ObjectPlan] = []
        self.kind = "standard"
        if cfg.family == "crossing":
            self.kind = CROSSING_KINDS[cfg.seed % len(CROSSING_KINDS)]
            _plan_crossing(self)
        else:
            self._plan_objects()
        n = cfg.num_frames
        shake = self.rng.random() < cfg.p_shake
        amp = self.rng.uniform(1.0, 4.0) if shake else 0.0
        self.shake = np.round(self.rng.normal(0.0, amp, size=(n, 2))).clip(
            -_SHAKE_MARGIN, _SHAKE_MARGIN
        ).astype(int)
        self.gain = np.ones(n)
        if self.rng.random() < cfg.p_brightness:
            t = np.linspace(0.0, 1.0, n)
            self.gain = 1.0 + self.rng.uniform(-0.35, 0.35) * np.sin(
                math.pi * t * self.rng.uniform(0.5, 2.0) + self.rng.uniform(0, math.pi)
            )

    # ------------------------------------------------------------------ planning
    def _plan_objects(self) -> None:
        cfg, rng = self.cfg, self.rng
        n_obj = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        side = min(cfg.width, cfg.height)
        for _ in range(n_obj):
            self.objects.append(self._random_object(side, colour=None))
        if rng.random() < cfg.p_distractor:
            twin = self.objects[int(rng.integers(len(self.objects)))]
            colour = tuple(float(np.clip(c + rng.normal(0, 12), 0, 255)) for c in twin.colour)
            self.objects.append(self._random_object(side, colour=colour))
        if rng.random() < cfg.p_exit:
            self._make_exit(self.objects[int(rng.integers(len(self.objects)))])
        if rng.random() < cfg.p_occlusion and cfg.num_frames >= 6:
            self._add_occluder(self.objects[int(rng.integers(len(self.objects)))])

    def _random_object(
        self, side: int, colour: tuple[float, float, float] | None, radius: float | None = None
    ) -> ObjectPlan:
        cfg, rng = self.cfg, self.rng
        n = cfg.num_frames
        oid = len(self.objects) + 1
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        if colour is None:
            colour = _random_colour(rng)
        r0 = radius if radius is not None else rng.uniform(0.07, 0.17) * side
        scale_rate = rng.uniform(-0.5, 0.5) if rng.random() < 0.5 else 0.0
        t = np.linspace(0.0, 1.0, n)
        radii = r0 * np.exp(scale_rate * t)
        # Smooth motion through waypoints; speed up to about half the frame over the clip.
        k = max(2, min(5, n // 6 + 2))
        speed = rng.uniform(0.05, 0.6) * side * max(1.0, n / 10.0) ** 0.5
        start = rng.uniform([0.15 * cfg.width, 0.15 * cfg.height],
                            [0.85 * cfg.width, 0.85 * cfg.height])
        points = [start]
        for _ in range(k - 1):
            step = rng.normal(0, 1, 2)
            step = step / (np.linalg.norm(step) + 1e-9) * speed / (k - 1)
            nxt = points[-1] + step
            nxt = np.clip(nxt, [0.1 * cfg.width, 0.1 * cfg.height],
                          [0.9 * cfg.width, 0.9 * cfg.height])
            points.append(nxt)
        xs, ys = _smooth_path(np.array(points), n)
        spin = rng.uniform(-1.5, 1.5) if shape != "circle" else 0.0
        rotations = rng.uniform(0, 2 * math.pi) + spin * t
        blob = tuple(rng.uniform(-0.25, 0.25, 6)) if shape == "blob" else ()
        depth = float(rng.uniform(1.0, 2.5))
        texture = ("stripes", "flat", "checker")[int(rng.integers(3))]
        return ObjectPlan(oid, shape, colour, texture, float(rng.uniform(0.15, 0.4)),
                          float(rng.uniform(0, 2 * math.pi)), depth, xs, ys, radii,
                          rotations, blob)

    def _make_exit(self, obj: ObjectPlan) -> None:
        """Send the object out past the nearest border and back along its path."""
        n = self.cfg.num_frames
        if n < 6:
            return
        t0, t1 = sorted(self.rng.choice(np.arange(1, n - 1), 2, replace=False))
        mid = (t0 + t1) / 2.0
        width = max(1.0, (t1 - t0) / 2.0 + 1.0)
        bump = np.clip(1.0 - np.abs(np.arange(n) - mid) / width, 0.0, 1.0)
        x, y = obj.xs[int(mid)], obj.ys[int(mid)]
        w, h = self.cfg.width, self.cfg.height
        exits = [(-x - 1.5 * obj.radii.max(), 0.0), (w - x + 1.5 * obj.radii.max(), 0.0),
                 (0.0, -y - 1.5 * obj.radii.max()), (0.0, h - y + 1.5 * obj.radii.max())]
        dx, dy = min(exits, key=lambda d: abs(d[0]) + abs(d[1]))
        smooth = np.clip(bump * 1.6, 0.0, 1.0)
        obj.xs[:] = obj.xs + dx * smooth
        obj.ys[:] = obj.ys + dy * smooth

    def _add_occluder(self, target: ObjectPlan) -> None:
        """A nearer, larger object parked on the target's path hides it for a few frames."""
        rng, n = self.rng, self.cfg.num_frames
        mid = int(rng.integers(2, n - 2))
        hidden = int(rng.integers(2, min(6, n - 2) + 1))
        lo, hi = max(0, mid - hidden // 2), min(n - 1, mid + (hidden - 1) // 2)
        cx = float(np.mean(target.xs[lo:hi + 1]))
        cy = float(np.mean(target.ys[lo:hi + 1]))
        reach = max(
            math.hypot(target.xs[i] - cx, target.ys[i] - cy) for i in range(lo, hi + 1)
        )
        radius = min(1.45 * target.radii.max() + reach, 0.3 * min(self.cfg.width, self.cfg.height))
        occluder = self._random_object(min(self.cfg.width, self.cfg.height), None)
        drift = rng.normal(0, 0.2, 2) * np.linspace(-1, 1, n)[:, None] * radius * 0.2
        occluder = ObjectPlan(
            occluder.id, "rectangle", occluder.colour, occluder.texture, occluder.tex_freq,
            occluder.tex_phase, min(target.depth_m, min(o.depth_m for o in self.objects)) - 0.3,
            cx + drift[:, 0], cy + drift[:, 1], np.full(n, radius), np.zeros(n),
        )
        self.objects.append(occluder)

    def _look_alikes(self, count: int, radii: list[float]) -> list[ObjectPlan]:
        """``count`` objects of one colour (each a little off) and one texture, often one
        shape; paths are set by the caller."""
        rng, side = self.rng, min(self.cfg.width, self.cfg.height)
        base = _random_colour(rng)
        same_shape = rng.random() < 0.6
        plans = []
        for k in range(count):
            colour = base if k == 0 else tuple(
                float(np.clip(c + rng.normal(0, 8), 0, 255)) for c in base)
            obj = self._random_object(side, colour, radius=radii[k])
            if plans:
                first = plans[0]
                obj = replace(obj, texture=first.texture, tex_freq=first.tex_freq,
                              tex_phase=first.tex_phase,
                              shape=first.shape if same_shape else obj.shape,
                              blob_coeffs=first.blob_coeffs if same_shape else obj.blob_coeffs)
            plans.append(obj)
            self.objects.append(obj)
        return plans

    def _set_path(self, obj: ObjectPlan, xs: np.ndarray, ys: np.ndarray, depth: float,
                  radius: float | None = None) -> ObjectPlan:
        """Give a planned object its path (and depth, and a constant size when given)."""
        n = self.cfg.num_frames
        radii = obj.radii if radius is None else np.full(n, radius)
        new = replace(obj, xs=np.asarray(xs, float), ys=np.asarray(ys, float), depth_m=depth,
                      radii=radii)
        self.objects[self.objects.index(obj)] = new
        return new

    # ------------------------------------------------------------------ rendering
    def frames(self) -> Iterator[RandomFrame]:
        """Render every frame (far to near, so labels and pixels agree on occlusion)."""
        cfg = self.cfg
        h, w = cfg.height, cfg.width
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        far_to_near = sorted(self.objects, key=lambda o: -o.depth_m)
        for i in range(cfg.num_frames):
            sx, sy = (int(v) for v in self.shake[i])
            m = _SHAKE_MARGIN
            img = self.background[m + sy:m + sy + h, m + sx:m + sx + w].copy()
            labels = np.zeros((h, w), np.uint16)
            depth = np.full((h, w), 3.0, np.float32)
            for obj in far_to_near:
                inside, shade = _paint(obj, i, xs - sx, ys - sy)
                if inside is None:
                    continue
                img[inside] = np.asarray(obj.colour, np.float32)[None, :] * shade[:, None]
                labels[inside] = obj.id
                depth[inside] = obj.depth_m
            rgb = np.clip(img * self.gain[i] + 0.5, 0, 255).astype(np.uint8)
            stamp = BASE_STAMP_S * 1_000_000_000 + round(i * 1e9 / cfg.fps)
            yield RandomFrame(i, stamp, rgb, labels, depth)


_SHAKE_MARGIN = 6


def _plan_cross(scene: RandomScene, t: np.ndarray, centre: np.ndarray, side: float) -> None:
    """Two look-alikes on straight paths meeting at one point on one frame; the nearer is
    larger, so it covers the farther while they overlap."""
    rng = scene.rng
    r_far = rng.uniform(0.07, 0.1) * side
    r_near = r_far * rng.uniform(1.35, 1.7)
    far, near = scene._look_alikes(2, [r_far, r_near])
    meet = rng.uniform(0.4, 0.6)
    angle = rng.uniform(0, 2 * math.pi)
    turn = rng.uniform(0.5, 2.6) * rng.choice([-1, 1])
    for obj, a, speed, depth, r in ((far, angle, rng.uniform(0.3, 0.45), 2.2, r_far),
                                    (near, angle + turn, rng.uniform(0.3, 0.45), 1.4,
                                     r_near)):
        d = np.array([math.cos(a), math.sin(a)]) * speed * side
        xs = centre[0] + (t - meet) * d[0]
        ys = centre[1] + (t - meet) * d[1]
        scene._set_path(obj, xs, ys, depth, r)


def _plan_swap(scene: RandomScene, t: np.ndarray, centre: np.ndarray, side: float) -> None:
    """Two look-alikes of one size trade places head-on, slowing where they pass so the
    nearer hides the farther for several frames."""
    rng = scene.rng
    r = rng.uniform(0.08, 0.12) * side
    a, b = scene._look_alikes(2, [r, r * rng.uniform(1.0, 1.15)])
    angle = rng.uniform(0, 2 * math.pi)
    half = np.array([math.cos(angle), math.sin(angle)]) * rng.uniform(0.22, 0.3) * side
    normal = np.array([-half[1], half[0]]) / (np.linalg.norm(half) + 1e-9)
    u = 2.0 * t - 1.0
    s = 0.5 + 0.5 * np.sign(u) * np.abs(u) ** 2  # slow in the middle
    offset = normal * rng.uniform(0.0, 0.3) * r
    p, q = centre - half, centre + half
    path_a = p[None, :] + (q - p)[None, :] * s[:, None] + offset
    path_b = q[None, :] + (p - q)[None, :] * s[:, None] - offset
    scene._set_path(a, path_a[:, 0], path_a[:, 1], 2.0)
    scene._set_path(b, path_b[:, 0], path_b[:, 1], 1.5)


def _plan_sweep(scene: RandomScene, t: np.ndarray, centre: np.ndarray, side: float) -> None:
    """Two or three look-alikes rest in a row; a larger one sweeps in front along it."""
    rng, w, h, n = scene.rng, scene.cfg.width, scene.cfg.height, scene.cfg.num_frames
    count = int(rng.integers(2, 4))
    r = rng.uniform(0.06, 0.09) * side
    plans = scene._look_alikes(count + 1, [r] * count + [r * rng.uniform(1.3, 1.6)])
    resting, mover = plans[:count], plans[count]
    horizontal = w >= h
    span = (w if horizontal else h)
    row = rng.uniform(0.35, 0.65) * (h if horizontal else w)
    spots = np.linspace(0.3, 0.7, count) * span + rng.uniform(-0.03, 0.03, count) * span
    for obj, spot in zip(resting, spots, strict=True):
        jitter = rng.normal(0, 0.6, (n, 2)).cumsum(axis=0) * 0.3
        along, across = spot + jitter[:, 0], row + jitter[:, 1]
        xs, ys = (along, across) if horizontal else (across, along)
        scene._set_path(obj, xs, ys, 2.2, r)
    start, end = (0.12, 0.88) if rng.random() < 0.5 else (0.88, 0.12)
    along = (start + (end - start) * t) * span
    across = row + rng.uniform(-0.3, 0.3) * r + np.zeros(n)
    xs, ys = (along, across) if horizontal else (across, along)
    scene._set_path(mover, xs, ys, 1.4)


def _plan_exit_return(scene: RandomScene, t: np.ndarray, centre: np.ndarray,
                      side: float) -> None:
    """One look-alike leaves through the nearest border and comes back; the other waits
    near where it left, so a tracker that loses the first may take the second."""
    rng, w, h, n = scene.rng, scene.cfg.width, scene.cfg.height, scene.cfg.num_frames
    r = rng.uniform(0.08, 0.11) * side
    leaver, waiter = scene._look_alikes(2, [r, r * rng.uniform(0.9, 1.1)])
    edge = int(rng.integers(4))
    out_from, back_at = sorted(rng.choice(np.arange(int(0.3 * n), int(0.75 * n)), 2,
                                          replace=False))
    back_at = max(back_at, out_from + 3)
    inner = rng.uniform(0.3, 0.45)  # where the leaver starts, as a share of the way in
    gone = -1.8 * r  # centre past the border: fully out of view
    pos = np.interp(np.arange(n), [0, out_from, back_at, n - 1],
                    [inner * side, gone, gone, inner * side * rng.uniform(0.8, 1.2)])
    slide = rng.uniform(0.35, 0.65) + np.zeros(n)
    wait_pos = 0.18 * side + r + rng.normal(0, 0.5, n).cumsum() * 0.3
    wait_slide = slide + rng.choice([-1, 1]) * rng.uniform(2.4, 3.2) * r / side
    for obj, depth_pos, lateral, depth in ((leaver, pos, slide, 1.6),
                                           (waiter, wait_pos, wait_slide, 2.0)):
        if edge in (0, 1):  # left or right border
            xs = depth_pos if edge == 0 else w - depth_pos
            ys = lateral * h
        else:
            ys = depth_pos if edge == 2 else h - depth_pos
            xs = lateral * w
        scene._set_path(obj, xs, ys, depth, r if obj is leaver else None)


#: The crossing scenes' kinds and who plans each.
_CROSSING_PLANS = {"cross": _plan_cross, "swap": _plan_swap, "sweep": _plan_sweep,
                   "exit_return": _plan_exit_return}


def _plan_crossing(scene: RandomScene) -> None:
    """Plan one crossing scene of ``scene.kind`` (docs/identity.md, "The crossing scenes")."""
    cfg, rng = scene.cfg, scene.rng
    side = min(cfg.width, cfg.height)
    t = np.linspace(0.0, 1.0, cfg.num_frames)
    centre = np.array([cfg.width, cfg.height]) / 2.0 + rng.uniform(-0.1, 0.1, 2) * side
    _CROSSING_PLANS[scene.kind](scene, t, centre, side)


def _smooth_path(points: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate waypoints with a cubic through-path sampled at n frames."""
    k = len(points)
    knots = np.linspace(0.0, 1.0, k)
    t = np.linspace(0.0, 1.0, n)
    deg = min(3, k - 1)
    coeff_x = np.polyfit(knots, points[:, 0], deg)
    coeff_y = np.polyfit(knots, points[:, 1], deg)
    return np.polyval(coeff_x, t), np.polyval(coeff_y, t)


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(120, 256), rng.integers(120, 256)]]])
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return float(rgb[0]), float(rgb[1]), float(rgb[2])


def _paint(obj: ObjectPlan, i: int, xs: np.ndarray, ys: np.ndarray):
    """Pixels of the object on frame i and their shading, or (None, None) when off-image."""
    r = float(obj.radii[i])
    dx, dy = xs - obj.xs[i], ys - obj.ys[i]
    c, s = math.cos(obj.rotations[i]), math.sin(obj.rotations[i])
    u, v = c * dx + s * dy, -s * dx + c * dy
    if obj.shape == "blob":
        theta = np.arctan2(v, u)
        a = obj.blob_coeffs
        radius = r * (1 + a[0] * np.sin(2 * theta + a[1] * 10)
                      + a[2] * np.sin(3 * theta + a[3] * 10)
                      + a[4] * np.sin(5 * theta + a[5] * 10))
        inside = u * u + v * v <= radius * radius
    else:
        inside = shape_mask(obj.shape, u, v, r)
    if not inside.any():
        return None, None
    uu, vv = u[inside], v[inside]
    if obj.texture == "stripes":
        shade = 0.65 + 0.35 * np.sin(obj.tex_freq * (uu + 0.5 * vv) + obj.tex_phase)
    elif obj.texture == "checker":
        period = 4.0 + 6.0 * obj.tex_freq
        shade = 0.7 + 0.3 * ((np.floor(uu / period) + np.floor(vv / period)) % 2)
    else:
        shade = 0.85 + 0.15 * np.clip(1.0 - np.hypot(uu, vv) / max(r, 1.0), 0.0, 1.0)
    return inside, shade.astype(np.float32)


def _background(rng: np.random.Generator, w: int, h: int, margin: int) -> np.ndarray:
    """A textured, gradient or patterned background, larger than the frame by the shake margin."""
    hh, ww = h + 2 * margin, w + 2 * margin
    kind = int(rng.integers(3))
    ys, xs = np.mgrid[0:hh, 0:ww].astype(np.float32)
    if kind == 0:  # smooth coloured noise and a faint grid, like the designed scene
        cell = int(rng.integers(8, 24))
        low = rng.uniform(0.0, 1.0, size=(max(2, hh // cell), max(2, ww // cell), 3))
        bg = rng.uniform(50, 110) + rng.uniform(40, 110) * cv2.resize(
            low.astype(np.float32), (ww, hh), interpolation=cv2.INTER_CUBIC)
        grid = int(rng.integers(12, 40))
        bg[(xs.astype(int) % grid == 0) | (ys.astype(int) % grid == 0)] *= 0.7
    elif kind == 1:  # linear gradient between two colours, with a little noise
        a, b = np.array(_random_colour(rng)) * 0.8, np.array(_random_colour(rng)) * 0.8
        angle = rng.uniform(0, 2 * math.pi)
        proj = (xs * math.cos(angle) + ys * math.sin(angle))
        proj = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
        bg = a[None, None, :] * (1 - proj[..., None]) + b[None, None, :] * proj[..., None]
        bg = bg + rng.normal(0, 6, size=bg.shape)
    else:  # stripes or checkers of two muted colours
        a, b = np.array(_random_colour(rng)) * 0.6, np.array(_random_colour(rng)) * 0.6
        period = rng.uniform(8, 40)
        if rng.random() < 0.5:
            pattern = (np.floor((xs + ys * rng.uniform(-1, 1)) / period) % 2)
        else:
            pattern = (np.floor(xs / period) + np.floor(ys / period)) % 2
        bg = np.where(pattern[..., None] > 0, a[None, None, :], b[None, None, :])
    return np.clip(bg, 0, 255).astype(np.float32)


def visible_ids(labels: np.ndarray, min_area: int) -> list[int]:
    """Ids with at least min_area pixels in a label image, sorted."""
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    return [int(i) for i, c in zip(ids, counts, strict=True) if c >= min_area]
