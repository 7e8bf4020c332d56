"""A frame between its session's ``begin_frame`` and ``finish_frame``, and the steps that
run there: once for one session's frame or batched over several sessions' frames.

The order of a frame's steps is written here once: the decode step (memory attention and
the SAM heads) for the objects of all the frames, each session's tracking policy choosing
among its own decoded masks, then the memory encoder for all. ``StreamingTracker`` runs it
for one frame, ``multi_session`` for the newest frames of several cameras.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from sam2_ros.engine.frame_ring import RingFrame
from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.memory_bank import ObjectMemory
from sam2_ros.engine.results import StageTiming

if TYPE_CHECKING:
    from sam2_ros.engine.steps.sam2_steps import Decoded, Sam2Steps, TrackPart


@dataclass
class FrameWork:
    """A frame between ``begin_frame`` and ``finish_frame``: its tracked objects, their
    part of the decode step (None: no object is tracked), then its decoded masks and their
    memory features (filled by ``run_steps``)."""

    ring_frame: RingFrame
    stamp: int
    image_hw: tuple[int, int]
    tracked: list[ObjectMemory]
    part: TrackPart | None
    decoded: Decoded | None = None
    maskmem: torch.Tensor | None = None


class Chooser(Protocol):
    """A session's tracking policy step (``StreamingTracker.choose``)."""

    def choose(self, work: FrameWork, decoded: Decoded) -> None: ...


def run_steps(steps: Sam2Steps, frames: Sequence[tuple[Chooser, FrameWork,
                                                       host_sync.HostSync | None]],
              timing: StageTiming, shared: host_sync.HostSync | None = None) -> None:
    """The decode step once for the objects of every frame, each session's choice, the
    memory encoder once; fills each frame's ``decoded`` and ``maskmem``.

    Args:
        steps: the shared model's steps.
        frames: per frame its session, its work, and the host waits to count its
            session's choice on (None: the caller's current one).
        timing: takes the shared steps' time.
        shared: counts the shared steps' host waits (None: the caller's current one).
    """
    tracking = [(s, w, sync) for s, w, sync in frames if w.part is not None]
    if not tracking:
        return
    with _using(shared):
        decoded = steps.decode_sessions([w.part for _, w, _ in tracking], timing)
    for (session, work, sync), ours in zip(tracking, decoded, strict=True):
        with _using(sync):
            session.choose(work, ours)
    with _using(shared):
        maskmems = steps.encode_memories([(w.ring_frame, w.decoded) for _, w, _ in tracking],
                                         timing)
    for (_, work, _), maskmem in zip(tracking, maskmems, strict=True):
        work.maskmem = maskmem


def _using(sync: host_sync.HostSync | None) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext() if sync is None else host_sync.using(sync)
