"""A synthetic object detector on the scene generator's ground truth.

Tests and the demo need a detector's output without a detector: boxes that are right but
not exact, that come less often than camera frames and late, that miss objects now and
then and sometimes see something that is not there. This one derives all of that from
the synthetic scene's ground truth, seeded, so a run is reproducible: one message every
``period_frames`` frames, published ``delay_frames`` late and stamped with the frame it
was made on; a jittered box (``jitter_px``) per visible object with its shape as the class;
objects missed at ``miss_rate`` or when under ``min_area`` pixels; and now and then a weak
false alarm on the background (``false_positive_rate``, ``false_positive_score``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sam2_ros.engine.detections import Detection
from sam2_ros.evaluation.synthetic_scene import SceneFrame

#: The class label of a false positive.
CLUTTER = "clutter"


@dataclass(frozen=True)
class DetectorConfig:
    """How the synthetic detector errs; equal configs give identical detections."""

    period_frames: int = 3
    delay_frames: int = 2
    jitter_px: float = 2.0
    miss_rate: float = 0.15
    min_area: int = 60
    false_positive_rate: float = 0.1
    false_positive_score: float = 0.45
    seed: int = 0

    def validate(self) -> None:
        if self.period_frames < 1 or self.delay_frames < 0:
            raise ValueError("period_frames must be >= 1 and delay_frames >= 0")
        for name in ("miss_rate", "false_positive_rate", "false_positive_score"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")
        if self.jitter_px < 0 or self.min_area < 1:
            raise ValueError("jitter_px must be >= 0 and min_area >= 1")


@dataclass(frozen=True)
class DetectionMessage:
    """The detections made on one camera frame, and when they are published."""

    frame_index: int  # the frame the detector saw
    stamp_ns: int  # that frame's stamp: the message's header stamp
    publish_after: int  # the camera frame after which the message goes out
    detections: tuple[Detection, ...]
    truth: tuple[int | None, ...]  # per detection, the object it shows; None = false alarm


def synthetic_detections(
    frames: Iterable[SceneFrame], cfg: DetectorConfig = DetectorConfig()
) -> list[DetectionMessage]:
    """The detector's messages over ``frames`` (a scene's frames, in order)."""
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    out: list[DetectionMessage] = []
    for frame in frames:
        if frame.index % cfg.period_frames:
            continue
        height, width = frame.labels.shape
        dets: list[Detection] = []
        truth: list[int | None] = []
        for state in frame.objects:
            if not state.visible or state.area < cfg.min_area or rng.random() < cfg.miss_rate:
                continue
            assert state.bbox is not None
            box = np.asarray(state.bbox, np.float64) + rng.normal(0.0, cfg.jitter_px, 4)
            box = np.clip(box, 0.0, [width, height, width, height])
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            score = float(rng.uniform(0.6, 0.95))
            dets.append(Detection(tuple(float(v) for v in box), score, state.shape))
            truth.append(state.id)
        if rng.random() < cfg.false_positive_rate:
            dets.append(_false_alarm(rng, frame.labels, cfg.false_positive_score))
            truth.append(None)
        if dets:
            out.append(DetectionMessage(frame.index, frame.stamp_ns,
                                        frame.index + cfg.delay_frames, tuple(dets),
                                        tuple(truth)))
    return out


def _false_alarm(rng: np.random.Generator, labels: np.ndarray, top_score: float) -> Detection:
    """A box on the background (as little object as a few tries find), weakly scored."""
    height, width = labels.shape
    size = max(4, min(width, height) // 8)
    best, best_overlap = None, None
    for _ in range(8):
        x0 = int(rng.integers(0, max(1, width - size)))
        y0 = int(rng.integers(0, max(1, height - size)))
        overlap = int(np.count_nonzero(labels[y0:y0 + size, x0:x0 + size]))
        if best_overlap is None or overlap < best_overlap:
            best, best_overlap = (x0, y0), overlap
    x0, y0 = best
    box = (float(x0), float(y0), float(x0 + size), float(y0 + size))
    return Detection(box, float(rng.uniform(0.2, top_score)), CLUTTER)
