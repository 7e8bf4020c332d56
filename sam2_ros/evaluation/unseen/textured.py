"""Held-out family "textured": flat and textured objects over patterned backgrounds.

The case a new user tries first (a flat disc over a checkerboard): 1 to 3 polygon objects,
half of them one flat colour, the rest with a texture of their own, over a checkerboard,
stripes, a gradient, noise or a flat colour at one of several scales; objects move at a
constant speed and bounce off the borders (overlapping on the way: the nearer one hides
the farther), turn and breathe in size; the light changes: overall brightness, a colour
cast and a moving bright spot. Never trained on, never tuned on (``families``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sam2_ros.evaluation.unseen.canvas import (
    BACKDROPS,
    BASE_STAMP_NS,
    Look,
    UnseenFrame,
    UnseenScene,
    backdrop,
    fill,
    outline,
    random_look,
    raster,
)

TAG = 0x7E47


@dataclass(frozen=True)
class Mover:
    """One object: its look and its pose on every frame."""

    id: int
    look: Look
    xs: np.ndarray
    ys: np.ndarray
    radii: np.ndarray
    angles: np.ndarray


def bounce(start: float, velocity: float, low: float, high: float, n: int) -> np.ndarray:
    """Positions of a point moving at constant speed between two walls, reflected off them."""
    span = max(high - low, 1e-6)
    raw = (start - low) + velocity * np.arange(n)
    folded = np.mod(raw, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


class TexturedScene(UnseenScene):
    """Scene ``seed`` of the family; ``frames()`` renders it (deterministic by seed)."""

    family = "textured"

    def __init__(self, seed: int, num_frames: int = 30, width: int = 320,
                 height: int = 240, fps: float = 10.0, lighting: bool = True) -> None:
        rng = self._begin(TAG, seed, num_frames, width, height, fps)
        self.backdrop_kind = BACKDROPS[seed % len(BACKDROPS)]  # every kind in any 5 seeds
        self.background = backdrop(rng, self.backdrop_kind, height, width)
        side = min(width, height)
        self.movers: list[Mover] = []  # far to near
        for k in range(int(rng.integers(1, 4))):
            r0 = rng.uniform(0.09, 0.16) * side
            speed = rng.uniform(1.0, 0.035 * side)
            heading = rng.uniform(0, 2 * math.pi)
            xs = bounce(rng.uniform(r0, width - r0), speed * math.cos(heading), r0 * 0.8,
                        width - r0 * 0.8, num_frames)
            ys = bounce(rng.uniform(r0, height - r0), speed * math.sin(heading), r0 * 0.8,
                        height - r0 * 0.8, num_frames)
            t = np.arange(num_frames)
            radii = r0 * (1 + rng.uniform(0, 0.25) * np.sin(t * rng.uniform(0.1, 0.4)))
            angles = rng.uniform(0, 2 * math.pi) + rng.uniform(-0.12, 0.12) * t
            look = random_look(rng, flat=(k % 2 == 0) if seed % 2 == 0 else None)
            self.movers.append(Mover(k + 1, look, xs, ys, radii, angles))
        t = np.arange(num_frames) / max(1, num_frames - 1)
        on = 1.0 if lighting else 0.0
        self.gain = 1 + on * rng.uniform(-0.3, 0.3) * np.sin(math.pi * t * rng.uniform(1, 3))
        self.cast = 1 + on * np.outer(np.sin(math.pi * t), rng.uniform(-0.15, 0.15, 3))
        self.spot = (rng.uniform(0, width), rng.uniform(0, height), rng.uniform(-3, 3, 2),
                     on * rng.uniform(0.0, 0.35))

    def labels(self, i: int) -> np.ndarray:
        """Frame i's label image (nearer objects over farther)."""
        labels = np.zeros((self.h, self.w), np.uint16)
        for m in self.movers:
            poly = outline(m.look, m.xs[i], m.ys[i], m.radii[i], m.angles[i])
            labels[raster(poly, self.h, self.w)] = m.id
        return labels

    def frames(self) -> Iterator[UnseenFrame]:
        """Render every frame: background, objects far to near, then the light."""
        ys, xs = np.mgrid[0:self.h, 0:self.w].astype(np.float32)
        for i in range(self.n):
            img = self.background.copy()
            labels = self.labels(i)
            for m in self.movers:
                inside = labels == m.id
                if inside.any():
                    img[inside] = fill(m.look, m.xs[i], m.ys[i], m.angles[i], self.h,
                                       self.w)[inside]
            sx, sy, (vx, vy), strength = self.spot
            dist = np.hypot(xs - (sx + vx * i), ys - (sy + vy * i)) / max(self.w, self.h)
            light = self.gain[i] * (1 + strength * np.exp(-8 * dist * dist))
            img = img * light[..., None] * self.cast[i][None, None, :]
            rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
            stamp = BASE_STAMP_NS + round(i * 1e9 / self.fps)
            yield UnseenFrame(i, stamp, rgb, labels)
