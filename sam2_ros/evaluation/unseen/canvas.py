"""Drawing for the held-out "unseen" scene families: polygons, fills and backgrounds.

Written apart from ``random_scenes`` and ``synthetic_scene`` (and never imported by
training) so that scores on these families say how tracking carries over to scenes no
generator of the training data or the tuning shares: shapes are polygons rasterised by
OpenCV (the label image is that raster, so masks and pixels agree by construction), fills
and backgrounds are this module's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Polygon outlines this renderer knows (``outline``).
OUTLINES = ("ngon", "star", "cross", "squircle", "kite", "lshape")
#: Object fills: one flat colour, or a texture of the object's own.
FILLS = ("flat", "dots", "rings", "hatch", "grain")
#: First stamp of every unseen scene (seconds), far from the other generators' stamps.
BASE_STAMP_NS = 1_800_000_000 * 1_000_000_000


@dataclass(frozen=True)
class UnseenFrame:
    """One rendered frame: RGB (uint8), labels (0 = background, else object id)."""

    index: int
    stamp_ns: int
    rgb: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Look:
    """How an object is drawn: outline and its parameters, fill and its colours."""

    outline: str
    sides: int  # corners of an ngon, points of a star
    inner: float  # star's inner radius, squircle's exponent, kite's tail (shares)
    aspect: float  # width over height before rotation
    fill: str
    colour: tuple[float, float, float]
    second: tuple[float, float, float]  # a texture's other colour
    period: float  # a texture's scale in pixels


def outline(look: Look, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """The object's polygon (N x 2 float pixel coordinates) at this pose."""
    if look.outline == "ngon":
        t = np.linspace(0, 2 * math.pi, look.sides, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif look.outline == "star":
        t = np.linspace(0, 2 * math.pi, 2 * look.sides, endpoint=False)
        rad = np.where(np.arange(2 * look.sides) % 2 == 0, 1.0, look.inner)
        pts = np.stack([rad * np.cos(t), rad * np.sin(t)], 1)
    elif look.outline == "squircle":
        t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        e = 2.0 / (2.0 + 6.0 * look.inner)
        pts = np.stack([np.sign(np.cos(t)) * np.abs(np.cos(t)) ** e,
                        np.sign(np.sin(t)) * np.abs(np.sin(t)) ** e], 1)
    elif look.outline == "cross":
        a = 0.35
        pts = np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1],
                        [-a, a], [-1, a], [-1, -a], [-a, -a]], float)
    elif look.outline == "kite":
        pts = np.array([[0, -1], [0.6, -0.2], [0, 0.4 + 0.6 * look.inner], [-0.6, -0.2]])
    elif look.outline == "lshape":
        pts = np.array([[-1, -1], [-0.2, -1], [-0.2, 0.3], [1, 0.3], [1, 1], [-1, 1]], float)
    else:
        raise ValueError(f"unknown outline {look.outline!r}")
    pts = pts * np.array([look.aspect ** 0.5, look.aspect ** -0.5]) * r
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]]) + np.array([cx, cy])


def raster(poly: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixels inside the polygon (no anti-aliasing: a pixel is the object's or not)."""
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [np.round(poly * 16).astype(np.int32)], 1, lineType=cv2.LINE_8,
                 shift=4)
    return canvas.astype(bool)


def fill(look: Look, cx: float, cy: float, angle: float, height: int, width: int) -> np.ndarray:
    """The object's colours over the whole canvas (H x W x 3 float), in its own frame so a
    texture moves and turns with it; callers copy it where the object's mask is."""
    base = np.asarray(look.colour, np.float32)
    if look.fill == "flat":
        return np.broadcast_to(base, (height, width, 3))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    c, s = math.cos(angle), math.sin(angle)
    u = (xs - cx) * c + (ys - cy) * s
    v = -(xs - cx) * s + (ys - cy) * c
    p = look.period
    if look.fill == "dots":
        du, dv = (u / p) % 1.0 - 0.5, (v / p) % 1.0 - 0.5
        mix = (du * du + dv * dv < 0.09).astype(np.float32)
    elif look.fill == "rings":
        mix = (np.floor(np.hypot(u, v) / p) % 2).astype(np.float32)
    elif look.fill == "hatch":
        mix = ((np.floor((u + v) / p) % 2) * (np.floor((u - v) / p) % 2)).astype(np.float32)
    elif look.fill == "grain":
        mix = 0.5 + 0.5 * np.sin(u / p * 2.3) * np.sin(v / p * 1.7 + np.sin(u / p))
    else:
        raise ValueError(f"unknown fill {look.fill!r}")
    second = np.asarray(look.second, np.float32)
    return base * (1.0 - mix[..., None]) + second * mix[..., None]


def random_look(rng: np.random.Generator, colour: tuple[float, float, float] | None = None,
                flat: bool | None = None) -> Look:
    """A look drawn from ``rng``; ``colour`` and ``flat`` pin those parts."""
    kind = OUTLINES[int(rng.integers(len(OUTLINES)))]
    if flat is None:
        flat = bool(rng.random() < 0.5)
    texture = "flat" if flat else FILLS[1 + int(rng.integers(len(FILLS) - 1))]
    main = colour if colour is not None else vivid(rng)
    return Look(kind, int(rng.integers(3, 8)), float(rng.uniform(0.35, 0.65)),
                float(rng.uniform(0.6, 1.6)), texture, main, vivid(rng),
                float(rng.uniform(3.0, 9.0)))


def vivid(rng: np.random.Generator) -> tuple[float, float, float]:
    """A saturated colour (hue anywhere, value high) as RGB floats."""
    hue = rng.uniform(0, 6)
    k = np.array([5.0, 3.0, 1.0])
    rgb = 1.0 - rng.uniform(0.5, 0.95) * np.clip(np.minimum((k + hue) % 6, 4 - (k + hue) % 6),
                                                   0, 1)
    return tuple(float(x) for x in rgb * rng.uniform(170, 250))


BACKDROPS = ("flat", "checker", "stripes", "gradient", "noise")


def backdrop(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    """A background of ``kind`` (H x W x 3 float), its scale and colours from ``rng``."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    a, b = np.asarray(vivid(rng)) * 0.7, np.asarray(vivid(rng)) * 0.5
    if kind == "flat":
        return np.broadcast_to(a, (height, width, 3)).astype(np.float32).copy()
    if kind in ("checker", "stripes"):
        period = float(rng.choice([4, 8, 16, 24, 40]))
        angle = rng.uniform(0, math.pi)
        u = xs * math.cos(angle) + ys * math.sin(angle)
        v = -xs * math.sin(angle) + ys * math.cos(angle)
        mix = np.floor(u / period) % 2
        if kind == "checker":
            mix = (np.floor(u / period) + np.floor(v / period)) % 2
    elif kind == "gradient":
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        mix = np.hypot(xs - cx, ys - cy) / math.hypot(width, height)
        mix = np.clip(mix * rng.uniform(1.0, 2.5), 0, 1)
    elif kind == "noise":
        cell = int(rng.choice([2, 6, 16, 48]))
        low = rng.random((height // cell + 2, width // cell + 2)).astype(np.float32)
        mix = cv2.resize(low, (width + 2 * cell, height + 2 * cell),
                         interpolation=cv2.INTER_LINEAR)[cell:cell + height, cell:cell + width]
    else:
        raise ValueError(f"unknown backdrop {kind!r}")
    return (a * (1.0 - mix[..., None]) + b * mix[..., None]).astype(np.float32)


def entropy_rng(family_tag: int, seed: int) -> np.random.Generator:
    """The generator of one unseen scene: its own tag, so it meets no other generator's."""
    return np.random.default_rng([0x0D15EE, family_tag, seed])


class UnseenScene:
    """What every unseen family's scene starts with: its size checked, its own generator."""

    family = ""

    def _begin(self, tag: int, seed: int, num_frames: int, width: int, height: int,
               fps: float) -> np.random.Generator:
        """Check and keep the scene's size; return the generator of scene ``seed``."""
        if num_frames < 1 or width < 64 or height < 64:
            raise ValueError(f"{self.family} scenes need >= 1 frame and >= 64x64 pixels")
        self.seed, self.n, self.w, self.h, self.fps = seed, num_frames, width, height, fps
        return entropy_rng(tag, seed)
