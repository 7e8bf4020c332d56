"""Several tracking sessions' newest frames through one batch of each SAM 2 step.

A robot's cameras are sessions (``StreamingTracker``) over one ``LoadedModel``.
``track_newest`` takes one frame per session and runs the image encoder once on all of
them; then, every session's lock held, the decode step (memory attention grouped by memory
layout across sessions, the SAM heads) once for the objects of all sessions, each on its
own frame's features (``Sam2Steps.decode_sessions``); each session's tracking policy
chooses among its own decoded masks; the memory encoder runs once for all
(``Sam2Steps.encode_memories``); each session commits its outputs and makes its results.
Each session's result equals tracking it alone up to the batched kernels
(docs/multi_camera.md says by how much; ``test_multi_session`` pins it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sam2_ros.engine.frame_work import FrameWork, run_steps
from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.results import FrameResult, StageTiming
from sam2_ros.engine.steps.frame_upload import FrameUpload
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
    steps: Sam2Steps, frames: Sequence[tuple[FrameUpload, np.ndarray, StageTiming]]
) -> list[list[torch.Tensor]]:
    """Each frame's feature pyramid (one image's, its own memory), from one encoder call.

    Call inside ``compute_mode``. ``steps`` (any session's of the shared model) runs the
    encoder; each frame is prepared by its session's upload (which finds its prefetched
    copy), its copies counted on its timing, which gets an equal share of the batch's
    time. The slices are copied so that a session's kept frames do not hold the other
    sessions' features alive."""
    batch = StageTiming()
    t0 = steps.sync(batch)
    images = []
    for upload, rgb, timing in frames:
        with host_sync.counting(timing.transfer):
            images.append(upload(rgb))
    backbone_out = steps.forward_image(torch.cat(images))
    steps.note_vision_pos_enc(backbone_out)
    fpn = backbone_out["backbone_fpn"]
    pyramids = [[level[i : i + 1].clone() for level in fpn] for i in range(len(frames))]
    elapsed = steps.sync(batch) - t0
    for _, _, timing in frames:
        timing.encoder = elapsed / len(frames)
    frames[0][2].transfer.syncs += batch.transfer.syncs  # stage profiling's, paid once
    return pyramids


def track_newest(
    frames: Sequence[SessionFrame],
) -> list[FrameResult | FrameError | StampError]:
    """Track one frame of each session: the frames encoded together, then every session's
    objects decoded together.

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
    sessions = [frames[i].session for i, _, _ in checked]
    timings = [StageTiming() for _ in checked]
    with compute_mode(sessions[0].loaded):
        steps = sessions[0]._steps  # the model's steps, shared model
        pyramids = encode_batch(steps, [(s._steps.frames, rgb, t) for s, (_, rgb, _), t
                                        in zip(sessions, checked, timings, strict=True)])
        with contextlib.ExitStack() as held:
            for session in sorted(sessions, key=id):  # one order: no deadlock
                held.enter_context(session.lock)
            tracked = _track_together(steps, sessions, checked, pyramids, timings, started)
    for (i, _, _), outcome in zip(checked, tracked, strict=True):
        outcomes[i] = outcome
    return outcomes


def _track_together(steps: Sam2Steps, sessions: list[StreamingTracker], checked: list,
                    pyramids: list, timings: list[StageTiming], started: float) -> list:
    """Each session's frame into its ring; the decode step once for the objects of all;
    each session's policy choice; the memory encoder once for all; each session's outputs
    and results (the sessions' locks held). Each frame's host waits and copies are counted
    on its own timing; those of a shared step on the first frame's."""
    syncs = [host_sync.HostSync(t.transfer) for t in timings]
    works: list[FrameWork | StampError] = []
    for session, (_, rgb, stamp), fpn in zip(sessions, checked, pyramids, strict=True):
        try:
            works.append(session.begin_frame(rgb, stamp, fpn))
        except StampError as exc:  # a newer frame of that session was tracked meanwhile
            works.append(exc)
    tracking = [(s, w, sync) for s, w, sync in zip(sessions, works, syncs, strict=True)
                if isinstance(w, FrameWork)]
    shared = StageTiming()
    run_steps(steps, tracking, shared, syncs[0])
    objects = sum(len(w.tracked) for _, w, _ in tracking)
    outcomes: list = []
    for session, work, timing, sync in zip(sessions, works, timings, syncs, strict=True):
        if isinstance(work, StampError):
            outcomes.append(work)
            continue
        _share(shared, timing, len(work.tracked) / objects if objects else 0.0)
        with host_sync.using(sync):
            outcomes.append(session.finish_frame(work, timing, started))
    return outcomes


def _share(shared: StageTiming, timing: StageTiming, share: float) -> None:
    """A frame's share of the shared steps' time (by its number of objects)."""
    timing.memory_attention = shared.memory_attention * share
    timing.decoder = shared.decoder * share
    timing.memory_encoder = shared.memory_encoder * share
