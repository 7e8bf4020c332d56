"""Several tracking sessions' newest frames through one image-encoder batch.

A robot's cameras are sessions (``StreamingTracker``) over one ``LoadedModel``.
``track_newest`` takes one frame per session, runs the image encoder once on all of them,
then each session's per-object steps on its own frame's features. Those steps run per
session (batched across that session's objects): sessions differ in memory layouts, in
their tracking policies' state and in their locks, so batching them together would put
their bookkeeping into one call; the encoder is the step every frame pays whatever its
objects. Each session's result equals tracking it alone up to the encoder's batched
kernels (docs/multi_camera.md says by how much; ``test_multi_session`` pins it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sam2_ros.engine.results import FrameResult, StageTiming
from sam2_ros.engine.steps.sam2_steps import Sam2Steps, compute_mode
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import FrameError, StampError


@dataclass
class SessionFrame:
    """A session's newest frame (HxWx3 RGB, any size) and its stamp (None: the next)."""

    session: StreamingTracker
    frame: np.ndarray
    stamp: int | None = None


def encode_batch(
    steps: Sam2Steps, frames: Sequence[np.ndarray], timing: StageTiming
) -> list[list[torch.Tensor]]:
    """Each frame's feature pyramid (one image's, its own memory), from one encoder call.

    Call inside ``compute_mode``. ``steps`` (any session's of the shared model) prepares
    the frames as its preprocessing mode says. The slices are copied so that a session's
    kept frames do not hold the other sessions' features alive."""
    t0 = steps.sync(timing)
    images = [steps.frames(rgb) for rgb in frames]
    backbone_out = steps.forward_image(torch.cat(images))
    steps.note_vision_pos_enc(backbone_out)
    fpn = backbone_out["backbone_fpn"]
    pyramids = [[level[i : i + 1].clone() for level in fpn] for i in range(len(frames))]
    timing.encoder += steps.sync(timing) - t0
    return pyramids


def track_newest(
    frames: Sequence[SessionFrame],
) -> list[FrameResult | FrameError | StampError]:
    """Track one frame of each session, the frames encoded together.

    Args:
        frames: at most one per session; all sessions must share one LoadedModel.
    Returns:
        Per frame, in order: its FrameResult, or the error that refused it (a bad image,
        a stamp not after the session's last) without touching the other sessions.
    Raises:
        ValueError: sessions over different models, or one session given twice.
    """
    if len({id(f.session) for f in frames}) != len(frames):
        raise ValueError("one frame per session: a session was given twice")
    if len({id(f.session.loaded) for f in frames}) > 1:
        raise ValueError("the sessions must share one LoadedModel to be encoded together")
    outcomes: list = [None] * len(frames)
    checked: list[tuple[int, np.ndarray, int]] = []
    for i, item in enumerate(frames):
        try:
            rgb, stamp = item.session.check_frame(item.frame, item.stamp)
        except (FrameError, StampError) as exc:
            outcomes[i] = exc
            continue
        checked.append((i, rgb, stamp))
    if not checked:
        return outcomes
    started = time.perf_counter()
    loaded = frames[checked[0][0]].session.loaded
    batch_timing = StageTiming()
    with compute_mode(loaded):
        steps = frames[checked[0][0]].session._steps  # the model's steps, shared model
        pyramids = encode_batch(steps, [rgb for _, rgb, _ in checked], batch_timing)
    for (i, rgb, stamp), fpn in zip(checked, pyramids, strict=True):
        timing = StageTiming()
        timing.encoder = batch_timing.encoder / len(checked)  # the batch's share
        try:
            outcomes[i] = frames[i].session.track_features(rgb, stamp, fpn, timing, started)
        except StampError as exc:  # a newer frame of that session was tracked meanwhile
            outcomes[i] = exc
    return outcomes
