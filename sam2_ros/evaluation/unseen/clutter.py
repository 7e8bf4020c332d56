"""Held-out family "clutter": objects among static shapes and same-colour distractors,
filmed by a camera that pans and zooms, with blur.

The world is larger than the picture: a backdrop strewn with 10 to 24 static polygons
(a third of them in the colour of a tracked object, so colour alone does not find it),
and 1 to 3 objects wandering with momentum (a velocity that drifts, reflected at the
world's edges). The camera pans across the world and zooms in and out; some frames are
blurred (defocus or motion along the pan). Labels are the sharp objects' pixels in the
picture (what a perfect segmenter would return). Never trained on, never tuned on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from sam2_ros.evaluation.unseen import canvas
from sam2_ros.evaluation.unseen.textured import Mover

TAG = 0xC1A7
MARGIN = 0.3  # world larger than the picture by this share on each axis


class ClutterScene(canvas.UnseenScene):
    """Scene ``seed`` of the family; ``frames()`` renders it (deterministic by seed)."""

    family = "clutter"

    def __init__(self, seed: int, num_frames: int = 30, width: int = 320,
                 height: int = 240, fps: float = 10.0, blur: bool = True) -> None:
        rng = self._begin(TAG, seed, num_frames, width, height, fps)
        self.world_w, self.world_h = int(width * (1 + MARGIN)), int(height * (1 + MARGIN))
        kind = canvas.BACKDROPS[int(rng.integers(len(canvas.BACKDROPS)))]
        world = canvas.backdrop(rng, kind, self.world_h, self.world_w)
        side = min(width, height)
        looks = [canvas.random_look(rng) for _ in range(int(rng.integers(1, 4)))]
        for _ in range(int(rng.integers(10, 25))):
            twin = looks[int(rng.integers(len(looks)))] if rng.random() < 0.35 else None
            look = canvas.random_look(rng, colour=None if twin is None else twin.colour)
            cx, cy = rng.uniform(0, self.world_w), rng.uniform(0, self.world_h)
            r, angle = rng.uniform(0.04, 0.12) * side, rng.uniform(0, 2 * math.pi)
            inside = canvas.raster(canvas.outline(look, cx, cy, r, angle), self.world_h,
                                   self.world_w)
            world[inside] = canvas.fill(look, cx, cy, angle, self.world_h, self.world_w)[inside]
        self.world = world
        self.movers = [self._wander(rng, k + 1, look, side) for k, look in enumerate(looks)]
        t = np.arange(num_frames) / max(1, num_frames - 1)
        pan = rng.uniform(0, 1, (2, 2))  # start and end of the view's corner, as shares
        self.corner = pan[0][None, :] + (pan[1] - pan[0])[None, :] * t[:, None]
        self.zoom = 1 + rng.uniform(0.0, 0.3) * np.sin(math.pi * t * rng.uniform(0.5, 2))
        self.blur = [(rng.random() < 0.3 and blur, int(rng.integers(2))) for _ in t]

    def _wander(self, rng: np.random.Generator, oid: int, look, side: int) -> Mover:
        """A path with momentum inside the world (velocity drifts, walls reflect)."""
        r0 = rng.uniform(0.09, 0.15) * side
        pos = np.array([rng.uniform(0.3, 0.7) * self.world_w, rng.uniform(0.3, 0.7) * self.world_h])
        vel = rng.normal(0, 0.02 * side, 2)
        lo, hi = np.array([r0, r0]), np.array([self.world_w - r0, self.world_h - r0])
        path = []
        for _ in range(self.n):
            path.append(pos.copy())
            vel = 0.85 * vel + rng.normal(0, 0.012 * side, 2)
            pos = pos + vel
            flip = (pos < lo) | (pos > hi)
            vel[flip] *= -1
            pos = np.clip(pos, lo, hi)
        xs, ys = np.array(path).T
        radii = np.full(self.n, r0)
        angles = rng.uniform(0, 2 * math.pi) + rng.uniform(-0.1, 0.1) * np.arange(self.n)
        return Mover(oid, look, xs, ys, radii, angles)

    def view(self, i: int) -> np.ndarray:
        """The 2 x 3 affine map from world to picture coordinates on frame i."""
        s = self.zoom[i]
        spare = np.array([self.world_w - self.w / s, self.world_h - self.h / s])
        ox, oy = self.corner[i] * spare
        return np.array([[s, 0, -s * ox], [0, s, -s * oy]])

    def frames(self) -> Iterator[canvas.UnseenFrame]:
        """Render every frame: the world seen through the camera, objects drawn in picture
        coordinates (sharp masks), then blur."""
        for i in range(self.n):
            affine = self.view(i)
            s = affine[0, 0]
            img = cv2.warpAffine(self.world, affine, (self.w, self.h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT)
            labels = np.zeros((self.h, self.w), np.uint16)
            for m in self.movers:
                cx, cy = affine @ np.array([m.xs[i], m.ys[i], 1.0])
                poly = canvas.outline(m.look, cx, cy, m.radii[i] * s, m.angles[i])
                inside = canvas.raster(poly, self.h, self.w)
                if inside.any():
                    img[inside] = canvas.fill(m.look, cx, cy, m.angles[i], self.h, self.w)[inside]
                    labels[inside] = m.id
            blurred, kind = self.blur[i]
            if blurred:
                img = _blur(img, kind, self.corner[i] - self.corner[max(0, i - 1)])
            rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
            stamp = canvas.BASE_STAMP_NS + round(i * 1e9 / self.fps)
            yield canvas.UnseenFrame(i, stamp, rgb, labels)


def _blur(img: np.ndarray, kind: int, pan_step: np.ndarray) -> np.ndarray:
    """Defocus (kind 0) or motion blur along the pan (kind 1)."""
    if kind == 0:
        return cv2.GaussianBlur(img, (0, 0), 1.6)
    k = np.zeros((9, 9), np.float32)
    angle = math.atan2(float(pan_step[1]), float(pan_step[0]) + 1e-9)
    for d in range(-4, 5):
        k[round(4 + d * math.sin(angle)), round(4 + d * math.cos(angle))] = 1
    return cv2.filter2D(img, -1, k / k.sum())
