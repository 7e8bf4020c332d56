"""A constant-velocity Kalman filter on an object's box (SAMURAI's motion model).

State: box centre, width and height and their velocities (per frame). Boxes are in the
mask decoder's low-resolution grid (the same for every camera size), so the filter never
needs the camera's size. Pure numpy; one filter per object, copied per frame so the
tracker can go back to any frame of its ring (a prompt on a past frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Noise scales relative to the box size (as in SORT-style box filters): position and
#: size uncertainty grow with the object, so small and large objects are treated alike.
_POS_STD = 1.0 / 20.0
_VEL_STD = 1.0 / 160.0

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


def to_xywh(box: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) -> (cx, cy, w, h)."""
    x0, y0, x1, y1 = box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], float)


def to_xyxy(xywh: np.ndarray) -> np.ndarray:
    cx, cy, w, h = xywh[:4]
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], float)


@dataclass(frozen=True)
class BoxState:
    """The filter's belief after some frame: mean [8] and covariance [8, 8]."""

    mean: np.ndarray
    cov: np.ndarray
    updates: int = 1  # measurements it has taken in

    @classmethod
    def start(cls, box: np.ndarray) -> BoxState:
        """A filter that has seen one box and assumes it at rest."""
        xywh = to_xywh(np.asarray(box, float))
        size = max(xywh[2], xywh[3], 1.0)
        std = np.r_[np.full(4, 2 * _POS_STD * size), np.full(4, 10 * _VEL_STD * size)]
        return cls(np.r_[xywh, np.zeros(4)], np.diag(std**2), 1)

    def predict(self, steps: int = 1) -> BoxState:
        """The belief ``steps`` frames later without a measurement."""
        mean, cov = self.mean.copy(), self.cov.copy()
        for _ in range(max(0, steps)):
            size = max(mean[2], mean[3], 1.0)
            q = np.r_[np.full(4, _POS_STD * size), np.full(4, _VEL_STD * size)] ** 2
            mean = _F @ mean
            mean[2:4] = np.maximum(mean[2:4], 1.0)
            cov = _F @ cov @ _F.T + np.diag(q)
        return BoxState(mean, cov, self.updates)

    def update(self, box: np.ndarray) -> BoxState:
        """The belief after measuring ``box`` (x0, y0, x1, y1) on the predicted frame."""
        z = to_xywh(np.asarray(box, float))
        size = max(self.mean[2], self.mean[3], 1.0)
        r = np.diag(np.full(4, _POS_STD * size) ** 2)
        s = _H @ self.cov @ _H.T + r
        gain = self.cov @ _H.T @ np.linalg.inv(s)
        mean = self.mean + gain @ (z - _H @ self.mean)
        cov = (np.eye(8) - gain @ _H) @ self.cov
        return BoxState(mean, cov, self.updates + 1)

    @property
    def box(self) -> np.ndarray:
        """The mean box (x0, y0, x1, y1)."""
        return to_xyxy(self.mean)
