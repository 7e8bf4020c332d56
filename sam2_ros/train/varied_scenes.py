"""More varied training scenes: a random scene re-dressed so the model meets what the
bundled model failed on outside its training scenes (a flat disc over a checkerboard).

``vary(scene, seed)`` renders a train-split ``RandomScene`` (its objects, paths, occluders,
exits) with, each drawn from the clip seed:

* a new backdrop (flat, linear or radial gradient, stripes or checkers of 3 to 48 px, noise
  of 1 to 32 px cells) or the scene's own, with static clutter shapes on it, some in a
  target's colour (same-colour distractors, not labelled: they are background);
* objects repainted one flat colour (the scene's textures otherwise);
* a camera that zooms and pans (scale change), a slow elastic warp (deformation), both
  applied to pixels and labels alike;
* lighting: per-channel gain drift (colour change), a brightness ramp, blur, sensor noise.

Training only: the held-out unseen families (``evaluation/unseen``) share none of this.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sam2_ros.evaluation.random_scenes import RandomFrame, RandomScene

_TAG = 0x5A41  # entropy tag: the variation's draws never touch the clip's other ones


def vary(scene: RandomScene, seed: int) -> list[RandomFrame]:
    """Render ``scene`` re-dressed with the variations of clip ``seed`` (see module)."""
    rng = np.random.default_rng([_TAG, seed])
    h, w = scene.cfg.height, scene.cfg.width
    if rng.random() < 0.8:
        bh, bw = scene.background.shape[:2]
        scene.background = _backdrop(rng, bh, bw)
    if rng.random() < 0.5:
        _scatter(rng, scene.background, [o.colour for o in scene.objects])
    flat = {o.id for o in scene.objects if rng.random() < 0.5}
    frames = list(scene.frames())
    n = len(frames)
    warp = _camera(rng, n, w, h)
    gains = _lighting(rng, n)
    blur = rng.random() < 0.35
    noise = rng.uniform(0, 8) if rng.random() < 0.5 else 0.0
    out = []
    for i, f in enumerate(frames):
        img = f.rgb.astype(np.float32)
        for o in scene.objects:
            if o.id in flat:
                img[f.labels == o.id] = np.asarray(o.colour, np.float32) * scene.gain[i]
        map_x, map_y = warp(i)
        img = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        labels = cv2.remap(f.labels, map_x, map_y, cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        img = img * gains[i][None, None, :]
        if blur and rng.random() < 0.5:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 2.0))
        if noise:
            img = img + rng.normal(0, noise, img.shape).astype(np.float32)
        rgb = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        out.append(RandomFrame(f.index, f.stamp_ns, rgb, labels, f.depth_m))
    return out


def _backdrop(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One of many backdrop kinds, at a random scale and in random colours."""
    a = rng.uniform(0, 255, 3)
    b = rng.uniform(0, 255, 3)
    kind = int(rng.integers(6))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # flat
        mix = np.zeros((h, w), np.float32)
    elif kind == 1:  # linear gradient
        t = rng.uniform(0, math.pi)
        mix = xs * math.cos(t) + ys * math.sin(t)
        mix = (mix - mix.min()) / max(float(np.ptp(mix)), 1.0)
    elif kind == 2:  # radial gradient
        mix = np.hypot(xs - rng.uniform(0, w), ys - rng.uniform(0, h))
        mix = np.clip(mix / rng.uniform(0.3, 1.2) / max(h, w), 0, 1)
    elif kind in (3, 4):  # stripes (3) or checkers (4) at 3 to 48 px, any angle
        period = float(np.exp(rng.uniform(math.log(3), math.log(48))))
        t = rng.uniform(0, math.pi)
        u = (xs * math.cos(t) + ys * math.sin(t)) / period
        v = (-xs * math.sin(t) + ys * math.cos(t)) / period
        mix = (np.floor(u) % 2) if kind == 3 else (np.floor(u) + np.floor(v)) % 2
    else:  # value noise with cells of 1 to 32 px
        cell = max(1, int(np.exp(rng.uniform(0, math.log(32)))))
        grid = rng.random((h // cell + 1, w // cell + 1, 3)).astype(np.float32)
        return np.clip(a * 0.3 + cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
                       * (b * 0.7 + 40), 0, 255).astype(np.float32)
    return (a * (1 - mix[..., None]) + b * mix[..., None]).astype(np.float32)


def _scatter(rng: np.random.Generator, bg: np.ndarray, colours: list) -> None:
    """Static clutter drawn into the backdrop: circles, boxes and ellipses, about a third
    in one of the objects' colours."""
    h, w = bg.shape[:2]
    side = min(h, w)
    for _ in range(int(rng.integers(4, 20))):
        colour = (colours[int(rng.integers(len(colours)))] if colours and rng.random() < 0.35
                  else tuple(rng.uniform(0, 255, 3)))
        colour = tuple(float(c) for c in colour)
        x, y = int(rng.integers(w)), int(rng.integers(h))
        r = int(rng.uniform(0.02, 0.1) * side) + 2
        kind = int(rng.integers(3))
        if kind == 0:
            cv2.circle(bg, (x, y), r, colour, -1)
        elif kind == 1:
            cv2.rectangle(bg, (x - r, y - r // 2), (x + r, y + r // 2), colour, -1)
        else:
            cv2.ellipse(bg, (x, y), (r, max(2, r // 3)), float(rng.uniform(0, 180)), 0, 360,
                        colour, -1)


def _camera(rng: np.random.Generator, n: int, w: int, h: int):
    """Per-frame sampling maps: zoom in 1 to 1.4 with a pan inside the zoomed frame, and a
    slow elastic warp of a few pixels; a function of the frame index."""
    t = np.linspace(0, 1, n)
    zoom_on, warp_on = rng.random() < 0.6, rng.random() < 0.4
    z0, z1 = (rng.uniform(1.0, 1.4, 2) if zoom_on else (1.0, 1.0))
    pan = rng.uniform(-1, 1, (2, 2))
    amp = rng.uniform(1.5, 5.0) if warp_on else 0.0
    freq = rng.uniform(1.0, 3.0, 2) * 2 * math.pi
    phase = rng.uniform(0, 2 * math.pi, 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)

    def maps(i: int) -> tuple[np.ndarray, np.ndarray]:
        s = z0 + (z1 - z0) * t[i]
        px, py = (pan[0] + (pan[1] - pan[0]) * t[i]) * np.array([w, h]) * (1 - 1 / s) / 2
        map_x = (xs - w / 2) / s + w / 2 + px
        map_y = (ys - h / 2) / s + h / 2 + py
        if amp:
            map_x = map_x + amp * np.sin(freq[0] * ys / h + phase[0] + 2 * t[i])
            map_y = map_y + amp * np.sin(freq[1] * xs / w + phase[1] + 2 * t[i])
        return map_x.astype(np.float32), map_y.astype(np.float32)

    return maps


def _lighting(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-frame RGB gains: a colour cast drifting in, and a brightness ramp."""
    t = np.linspace(0, 1, n)[:, None]
    cast = rng.uniform(-0.25, 0.25, 3) if rng.random() < 0.5 else np.zeros(3)
    ramp = rng.uniform(-0.3, 0.3) if rng.random() < 0.5 else 0.0
    return (1 + cast[None, :] * t) * (1 + ramp * t)
