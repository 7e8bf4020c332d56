"""3-D object positions from a mask and a registered depth image.

Depth at object boundaries is unreliable (mixed pixels, mask leakage onto the
background, holes), so the position uses medians rather than means: a minority of bad
pixels inside the mask cannot move it far.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels, for one specific image resolution."""

    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        # An uncalibrated CameraInfo has K all zeros; catching it here avoids NaN/inf
        # positions later.
        if not (math.isfinite(self.fx) and self.fx > 0 and math.isfinite(self.fy) and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def from_k(cls, k: Sequence[float]) -> CameraIntrinsics:
        """Build from a row-major 3x3 ``K`` as in ``sensor_msgs/CameraInfo.k``."""
        values = [float(v) for v in np.asarray(k, dtype=np.float64).reshape(-1)]
        if len(values) != 9:
            raise ValueError(f"K must have 9 elements, got {len(values)}")
        return cls(fx=values[0], fy=values[4], cx=values[2], cy=values[5])

    def scaled(self, sx: float, sy: float) -> CameraIntrinsics:
        """Intrinsics for the same camera after resizing the image by (sx, sy).

        Uses the pixel-centre convention (centres at integer coordinates), so the
        principal point maps as ``(c + 0.5) * s - 0.5``. Use this when the available
        CameraInfo belongs to an image of a different size than the depth image.
        """
        return CameraIntrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
        )


def resize_mask_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a boolean mask, sampling at pixel centres.

    Done with index arrays rather than ``cv2.INTER_NEAREST``, whose sampling is shifted
    by half a source pixel, which would bias positions when the scale is large.
    """
    src_h, src_w = mask.shape
    dst_h, dst_w = shape
    rows = np.minimum(((np.arange(dst_h) + 0.5) * src_h / dst_h).astype(np.intp), src_h - 1)
    cols = np.minimum(((np.arange(dst_w) + 0.5) * src_w / dst_w).astype(np.intp), src_w - 1)
    return mask[np.ix_(rows, cols)]


def object_position(
    mask: np.ndarray,
    depth_m: np.ndarray,
    intr: CameraIntrinsics,
    min_valid: int = 10,
) -> tuple[float, float, float] | None:
    """Robust 3-D position (X, Y, Z) in metres of a masked object, in the depth camera frame.

    ``intr`` belongs to the **depth image** (see :meth:`CameraIntrinsics.scaled`); a mask
    of another resolution is resized to it (nearest neighbour). Z is the median valid depth
    (finite, > 0) inside the mask, (u, v) the per-axis median pixel of those pixels,
    back-projected at Z. Returns None under ``min_valid`` valid pixels: a position from a
    handful of pixels is more likely noise than object.
    """
    mask = np.asarray(mask)
    depth = np.asarray(depth_m)
    if mask.ndim != 2 or depth.ndim != 2:
        raise ValueError(f"mask and depth must be 2-D, got {mask.shape} and {depth.shape}")
    mask = mask if mask.dtype == np.bool_ else mask != 0
    if mask.shape != depth.shape:
        mask = resize_mask_nearest(mask, depth.shape)

    with np.errstate(invalid="ignore"):
        valid = mask & np.isfinite(depth) & (depth > 0)
    vs, us = np.nonzero(valid)
    if vs.size < max(min_valid, 1):
        return None

    z = float(np.median(depth[vs, us]))
    u = float(np.median(us))
    v = float(np.median(vs))
    return ((u - intr.cx) * z / intr.fx, (v - intr.cy) * z / intr.fy, z)
