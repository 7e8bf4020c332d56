"""Statistics of per-frame times: warm medians and percentiles, steady state, slopes."""

from __future__ import annotations

import numpy as np

#: From this frame on every engine attends a full memory bank (7 memories).
STEADY_FROM = 8


def warm_stats(times: list[float], skip: int = 2, steady_from: int | None = None) -> dict:
    """Median / p95 / fps of per-frame seconds, skipping the first ``skip`` frames.

    ``times[k]`` is the time of frame k+1 (frame 0 is the prompted frame and is timed on
    its own). ``steady_from`` (a frame index) adds a median over frames whose memory bank
    is already full.
    """
    warm = np.asarray(times[skip:], dtype=float)
    if warm.size == 0:
        return {"frames": 0}
    med = float(np.median(warm))
    out = {
        "frames": int(warm.size),
        "median_s": med,
        "p95_s": float(np.percentile(warm, 95)),
        "mean_s": float(warm.mean()),
        "min_s": float(warm.min()),
        "max_s": float(warm.max()),
        "fps": 1.0 / med if med > 0 else None,
    }
    if steady_from is not None:
        steady = np.asarray(times[max(skip, steady_from - 1) :], dtype=float)
        if steady.size:
            out["steady_median_s"] = float(np.median(steady))
    return out


def linear_slope(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 2:
        return None
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0])



def steady_median(times: list[float]) -> float:
    """Median of the frames whose memory bank is full (all of them if none is)."""
    steady = times[STEADY_FROM - 1:] or times
    return float(np.median(steady))
