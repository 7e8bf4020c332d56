"""Streaming SAM 2: one frame at a time, forever, with prompts at any moment.

The engine drives Meta's SAM2Base step by step and gives, for the same weights and the same
prompts, the official SAM2VideoPredictor's masks. What differs is the bookkeeping: frames
arrive one by one, the image encoder runs once per frame for all objects and the other
steps run batched across objects; memory is bounded (``memory_bank``); a prompt may name
any recent frame, even one dropped while busy, and the object is re-tracked forward to the
newest frame, its memory as if the prompt had come in time. Prompts on an already tracked
or prompted frame refine or add to it as SAM 2 does. The path of a frame and of a prompt:
docs/architecture.md.

All public methods are thread-safe; the encoder runs outside the state lock, so prompts are
served while a frame is encoded. A tracker is one session over a ``LoadedModel`` that any
number of sessions may share (``multi_session``). Its parts: ``frame_ring``, ``sam2_steps``,
``batching``, ``memory_bank``, ``postprocessing``, ``stamp_policy`` (shared with the node).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.engine.frame_ring import FrameRing, RingFrame
from sam2_ros.engine.frame_work import FrameWork, run_steps
from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.identity.policy import MotionSettings, make_policy
from sam2_ros.engine.memory_bank import FrameOutput, ObjectMemory
from sam2_ros.engine.model_loading import VIDEO_FILL_HOLE_AREA, LoadedModel
from sam2_ros.engine.prompts import (
    BoxLike,
    LabelsLike,
    MaskLike,
    PointsLike,
    Prompt,
    check_prompt,
    concat_point_inputs,
    mask_inputs,
    point_inputs,
)
from sam2_ros.engine.results import (
    FrameResult,
    HostTransfer,
    ObjectResult,
    PromptResult,
    StageTiming,
)
from sam2_ros.engine.stamp_policy import StampPolicy, Verdict
from sam2_ros.engine.steps.batching import split_outputs
from sam2_ros.engine.steps.postprocessing import ObjectOnFrame, fill_holes, frame_results
from sam2_ros.engine.steps.preprocessing import validate_frame
from sam2_ros.engine.steps.sam2_steps import Decoded, Sam2Steps, TrackPart, compute_mode
from sam2_ros.errors import PromptError, StampError, TooManyObjectsError, UnknownObjectError
from sam2_ros.settings import PARAMETERS, default

#: Largest object id: the published label image is 16UC1 with 0 = no object.
MAX_OBJECT_ID = 65535


@dataclass
class _DroppedFrame:
    """A camera frame the tracker did not track, encoded for a prompt that names it."""

    stamp: int
    image_hw: tuple[int, int]
    backbone_fpn: list[torch.Tensor]


class StreamingTracker:
    """Frame-by-frame SAM 2 video object tracking with a bounded memory bank."""

    def __init__(
        self,
        loaded: LoadedModel,
        max_objects: int = default("max_objects"),
        prompt_history: int = default("prompt_history"),
        max_prompt_frames: int = default("max_prompt_frames"),
        mask_threshold: float = default("mask_threshold"),
        fill_hole_area: int = VIDEO_FILL_HOLE_AREA,
        add_all_frames_to_correct_as_cond: bool = False,
        stamps: StampPolicy | None = None,
        profile_stages: bool = False,
        tracking_mode: str = default("tracking_mode"),
        motion: MotionSettings | None = None,
        preprocessing: str = default("preprocessing"),
    ) -> None:
        """``profile_stages``: wait for the device around each stage so StageTiming holds
        each stage's device time (a GPU then stalls several times a frame; on a CPU the
        times are honest either way). ``preprocessing``: ``steps.frame_upload``."""
        for name, value in (("max_objects", max_objects), ("prompt_history", prompt_history),
                            ("max_prompt_frames", max_prompt_frames)):
            reason = PARAMETERS[name].check(value)
            if reason:
                raise ValueError(reason)
        self.loaded = loaded
        self.device = loaded.device
        self.image_size = loaded.image_size
        self.max_objects = max_objects
        self.prompt_history = prompt_history
        self.max_prompt_frames = max_prompt_frames
        self.mask_threshold = mask_threshold
        self.fill_hole_area = fill_hole_area
        self.add_all_frames_to_correct_as_cond = add_all_frames_to_correct_as_cond
        self._lock = threading.RLock()
        self._objects: dict[int, ObjectMemory] = {}
        self._ring = FrameRing(prompt_history)
        self._steps = Sam2Steps(loaded, profile_stages, preprocessing)
        # How identities are kept (``identity.policy``): "sam2" is Meta's behaviour.
        self.tracking_mode = tracking_mode
        self._policy = make_policy(tracking_mode, self._steps, motion)
        self._next_id = 1
        self._next_index = 0
        # The last tracked stamp and what an earlier one means (shared with the node).
        self.stamps = stamps if stamps is not None else StampPolicy()
        self._generation = 0  # full resets so far: ids after one are new objects
        self._latest: dict[int, ObjectResult] = {}
        self._pending: deque[tuple[str, list[int]]] = deque()
        # Which ids exist: taken by queued requests, which do not wait for ``_lock``.
        self._membership = threading.RLock()

    # ------------------------------------------------------------------ public API
    @property
    def object_ids(self) -> list[int]:
        with self._lock:
            self._apply_pending()
            return sorted(self._objects)

    @property
    def latest_stamp(self) -> int | None:
        with self._lock:
            return self._ring.newest.stamp if self._ring else None

    @property
    def generation(self) -> int:
        """How many full resets were applied: an id seen in two generations names two
        different objects (ids restart after a full reset)."""
        with self._lock:
            return self._generation

    def labels(self) -> dict[int, str]:
        with self._lock:
            self._apply_pending()
            return {i: o.label for i, o in self._objects.items()}

    def ring_stamps(self) -> list[int]:
        """Stamps of the frames a prompt may name, oldest first."""
        with self._lock:
            return self._ring.stamps()

    @property
    def memories(self) -> Mapping[int, ObjectMemory]:
        """Each object's memory by id, read-only, for inspection (tests, the benchmarks'
        memory accounting): only the tracker changes what it remembers."""
        with self._lock:
            self._apply_pending()
            return MappingProxyType(dict(self._objects))

    def ring_frames(self) -> list[RingFrame]:
        """The frames kept for prompting (their image features), oldest first; for
        inspection."""
        with self._lock:
            return list(self._ring)

    def track(self, frame: np.ndarray, stamp: int | None = None) -> FrameResult:
        """Track every prompted object on a new frame.

        Args:
            frame: (H, W, 3) uint8 RGB at the camera's size (any size; resized inside).
            stamp: nanoseconds, after the previous frame's; None: the previous one + 1.
        Returns:
            The frame's FrameResult: per object its (H, W) bool mask, visibility, scores,
            box; the stage timings and host waits.
        Raises:
            FrameError: not an (H, W, 3) uint8 image. StampError: a stamp not after the last.
        """
        rgb, stamp = self.check_frame(frame, stamp)
        timing = StageTiming()
        with host_sync.counting(timing.transfer):
            return self._track(rgb, stamp, timing)

    def _track(self, rgb: np.ndarray, stamp: int, timing: StageTiming) -> FrameResult:
        """``track`` once the frame and its stamp are checked (host waits counted)."""
        started = time.perf_counter()
        with self._compute():
            fpn = self._steps.encode_image(rgb, timing)
        return self.track_features(rgb, stamp, fpn, timing, started)

    def check_frame(self, frame: np.ndarray, stamp: int | None) -> tuple[np.ndarray, int]:
        """The frame as RGB and its stamp, if this session would track it now.

        Raises:
            FrameError: not an RGB image. StampError: the stamp is not after the last one.
        """
        rgb = validate_frame(frame)
        with self._lock:
            return rgb, self._check_new_stamp(stamp)

    @property
    def lock(self) -> threading.RLock:
        """Held while a frame or a prompt changes this session (``begin_frame`` callers
        hold it until ``finish_frame``)."""
        return self._lock

    @property
    def prefetches(self) -> bool:
        """Whether ``prefetch`` starts a frame's upload (``preprocessing: device``)."""
        return self._steps.frames.prefetches

    @property
    def uploaded_ahead(self) -> int:
        """Frames tracked from a copy ``prefetch`` started (diagnostics)."""
        return self._steps.frames.prefetched_used

    def prefetch(self, frame: np.ndarray) -> np.ndarray:
        """Start a frame's copy to the device ahead of ``track`` (a camera's thread, while
        an earlier frame is being tracked). Returns the frame as ``track`` should be given
        it to find the copy (the same array when already contiguous uint8 RGB).

        Raises:
            FrameError: not an (H, W, 3) uint8 image.
        """
        rgb = validate_frame(frame)
        self._steps.frames.prefetch(rgb)
        return rgb

    def track_features(
        self, rgb: np.ndarray, stamp: int, fpn: list[torch.Tensor], timing: StageTiming,
        started: float,
    ) -> FrameResult:
        """``track`` after the image encoder: the frame's feature pyramid (one image's) is
        given, so several sessions' frames can be encoded in one batch (``multi_session``).

        Raises:
            StampError: a newer frame was tracked meanwhile.
        """
        with self._lock, self._compute():
            work = self.begin_frame(rgb, stamp, fpn)
            run_steps(self._steps, [(self, work, None)], timing)
            return self.finish_frame(work, timing, started)

    def begin_frame(self, rgb: np.ndarray, stamp: int, fpn: list[torch.Tensor]) -> FrameWork:
        """A frame's encoder features into the ring and its objects' memories, ready for
        the decode step (this session's alone or batched with others, ``multi_session``).
        The caller holds ``lock`` (and the compute mode) until ``finish_frame``.

        Raises:
            StampError: a newer frame was tracked meanwhile.
        """
        # A reset while the encoder ran may have made this stamp acceptable again.
        stamp = self._check_new_stamp(stamp)
        index = self._next_index
        self._next_index += 1
        self.stamps.accept(stamp)
        self._ring.append(RingFrame(index, stamp, rgb.shape[:2], fpn))
        ring_frame = self._ring.newest
        tracked = [o for o in self._objects.values() if o.is_tracked]
        part = self._track_part(ring_frame, tracked) if tracked else None
        return FrameWork(ring_frame, stamp, rgb.shape[:2], tracked, part)

    def choose(self, work: FrameWork, decoded: Decoded) -> None:
        """The tracking policy's choice among the frame's decoded masks (its reads queued
        for the frame's one host wait), before the memory encoder."""
        work.decoded = decoded
        self._choose(work.ring_frame, work.tracked, decoded)

    def finish_frame(self, work: FrameWork, timing: StageTiming,
                     started: float) -> FrameResult:
        """``begin_frame``'s frame after the decode step, the policy's choice and the
        memory encoder: outputs committed, results at the camera's size (one host wait for
        them and the policy's reads)."""
        index = work.ring_frame.index
        if work.tracked:
            outputs = self._commit(work.ring_frame, work.tracked, work.decoded, work.maskmem,
                                   timing)
            for obj, out in zip(work.tracked, outputs, strict=True):
                obj.non_cond[index] = out
        self._apply_pending()
        if not self._ring:  # reset while this frame ran
            host_sync.current().flush()  # under the lock: the reads change objects
            return FrameResult(index, work.stamp, work.image_hw, [], timing, timing.transfer,
                               self._generation)
        results, _ = self._results_of_all_objects(self._ring.newest, timing)
        host_sync.current().flush()
        self._prune()  # after the policy's reads: which frames it admitted
        self._latest = {r.object_id: r for r in results}
        timing.total = time.perf_counter() - started
        return FrameResult(index, work.stamp, work.image_hw, results, timing, timing.transfer,
                           self._generation)

    def add_prompt(
        self,
        object_id: int | None = None,
        points: PointsLike | None = None,
        labels: LabelsLike | None = None,
        box: BoxLike | None = None,
        mask: MaskLike | None = None,
        stamp: int | None = None,
        clear_previous: bool = False,
        label: str = "",
        frame: np.ndarray | None = None,
    ) -> PromptResult:
        """Prompt a new or an existing object on a kept frame, then re-track to the newest.

        A correction of an existing object refines its tracked mask on that frame, as SAM 2
        does; a new object starts from the prompt alone. A dropped frame given as ``frame``
        joins the ring in stamp order and every object is tracked on it with its memory, as
        if it had not been dropped. Nothing changes when a TrackerError is raised.

        Args:
            object_id: an existing object's id, or None/0 for a new object.
            points: (N, 2) pixels x y of the frame, with ``labels`` (N,) 1 / 0 (negative).
            labels: one per point.
            box: (4,) pixels x0 y0 x1 y1.
            mask: (H, W) at the frame's size, nonzero = object; not with points or a box.
            stamp: the frame's stamp (a kept frame, or ``frame``'s); None or 0: the newest.
            clear_previous: drop the object's earlier prompts on that frame first.
            label: a name kept with a new object (its class, for example).
            frame: (H, W, 3) uint8 RGB of ``stamp`` when the tracker did not track it.
        Returns:
            The PromptResult: the object's id and its result on the prompted frame.
        Raises:
            PromptError: a malformed prompt. UnknownObjectError: no such object.
            NoFrameError / StampError: no such frame kept. TooManyObjectsError: at max_objects.
        """
        timing = StageTiming()
        with host_sync.counting(timing.transfer):
            return self._add_prompt(object_id, points, labels, box, mask, stamp,
                                    clear_previous, label, frame, timing)

    def _add_prompt(
        self, object_id: int | None, points: object, labels: object, box: object,
        mask: object, stamp: int | None, clear_previous: bool, label: str,
        frame: np.ndarray | None, timing: StageTiming,
    ) -> PromptResult:
        """``add_prompt`` with its host waits counted in ``timing.transfer``."""
        started = time.perf_counter()
        dropped = self._encode_dropped(stamp, frame, timing)
        with self._lock, self._compute():
            self._apply_pending()
            target = self._resolve_frame(stamp, dropped)
            prompt = check_prompt(target.image_hw, points, labels, box, mask)
            obj, new_object = self._prompt_object(object_id, label)
            ring_frame = self._place(target, timing)
            index = ring_frame.index
            previous = obj.output_at(index)
            is_init = previous is None or index in obj.cond
            clicks, mask_in = self._merge_prompts(prompt, previous, clear_previous, ring_frame)
            out = self._prompt_output(ring_frame, obj, clicks, mask_in, previous, is_init, timing)
            self._commit_prompt(obj, new_object, label, index, out, is_init)
            self._policy.on_prompt(obj, index, out, ring_frame.backbone_fpn[0])
            retracked = self._retrack_forward(obj, index, timing)
            self._prune()
            on_frame = self._prompt_results(obj, ring_frame, out, timing)
            timing.total = time.perf_counter() - started
            return PromptResult(obj.object_id, ring_frame.stamp, index, on_frame, retracked, timing)

    # The steps of add_prompt, in order.
    def _encode_dropped(
        self, stamp: int | None, frame: np.ndarray | None, timing: StageTiming
    ) -> _DroppedFrame | None:
        """A dropped frame's image features (the encoder runs outside the state lock), or
        None when the prompt names a kept frame."""
        if frame is None or not stamp or stamp in self.ring_stamps():
            return None
        rgb = validate_frame(frame)
        with self._compute():
            fpn = self._steps.encode_image(rgb, timing)
        return _DroppedFrame(int(stamp), rgb.shape[:2], fpn)

    def _resolve_frame(
        self, stamp: int | None, dropped: _DroppedFrame | None
    ) -> RingFrame | _DroppedFrame:
        """The kept frame a prompt names, or the dropped frame to insert (checked: it must
        lie inside the kept frames). Changes nothing."""
        if dropped is not None and dropped.stamp not in self._ring.stamps():
            self._ring.check_insert(dropped.stamp)
            return dropped
        return self._ring.find(stamp)

    def _prompt_object(self, object_id: int | None, label: str) -> tuple[ObjectMemory, bool]:
        """The object prompted and whether it is new (not registered until the commit)."""
        if object_id is not None and object_id != 0:
            return self._object(object_id), False
        if len(self._objects) >= self.max_objects:
            raise TooManyObjectsError(
                f"already tracking {len(self._objects)} objects (max_objects="
                f"{self.max_objects}); remove one first"
            )
        return ObjectMemory(self._new_id(), label), True

    def _place(self, target: RingFrame | _DroppedFrame, timing: StageTiming) -> RingFrame:
        """The ring frame to prompt on. A dropped frame is inserted into the ring (later
        frames and memories move up one index) and the objects tracked on the frame before
        it are tracked on it, batched, so each has the output SAM 2 would have given it
        there; their later frames are left as they are."""
        if isinstance(target, RingFrame):
            return target
        ring_frame = self._ring.insert(target.stamp, target.image_hw, target.backbone_fpn)
        index = ring_frame.index
        self._next_index += 1
        for obj in self._objects.values():
            obj.make_room(index)
        tracked = [o for o in self._objects.values()
                   if o.is_tracked and o.output_at(index - 1) is not None]
        if tracked:
            outputs = self._track_objects(ring_frame, tracked, timing)
            for obj, out in zip(tracked, outputs, strict=True):
                obj.non_cond[index] = out
        return ring_frame

    def _merge_prompts(
        self, prompt: Prompt, previous: FrameOutput | None, clear_previous: bool,
        ring_frame: RingFrame,
    ) -> tuple[dict[str, torch.Tensor] | None, torch.Tensor | None]:
        """SAM 2's inputs for this prompt: the clicks added to the frame's earlier clicks
        (unless clear_previous), or a mask. Its one refusal (a box after clicks) needs
        earlier clicks on the frame, which a just-inserted dropped frame never has, so the
        state is still unchanged when it raises."""
        old_points = None
        if previous is not None and not clear_previous and not prompt.is_mask:
            old_points = previous.point_inputs
        if prompt.box is not None and old_points is not None:
            raise PromptError(
                "a box must come before any click on its frame: set clear_previous "
                "to replace this object's earlier prompts on that frame"
            )
        if prompt.is_mask:
            return None, mask_inputs(prompt.mask, self.image_size, self.device)
        new_points = point_inputs(prompt, ring_frame.image_hw, self.image_size, self.device)
        return concat_point_inputs(old_points, new_points), None

    def _commit_prompt(
        self, obj: ObjectMemory, new_object: bool, label: str, index: int, out: FrameOutput,
        is_init: bool,
    ) -> None:
        """Store a computed prompt: a first prompt (or one on a prompted frame) as a
        prompted frame, a refinement as an ordinary frame unless
        add_all_frames_to_correct_as_cond, as in SAM 2."""
        if new_object:
            self._objects[obj.object_id] = obj
            self._next_id = obj.object_id + 1
        elif label:
            obj.label = label
        if is_init or self.add_all_frames_to_correct_as_cond:
            obj.set_cond(index, out, self.max_prompt_frames)
        else:
            obj.non_cond[index] = out
        obj.last_prompt_frame = max(index, obj.last_prompt_frame or index)

    def _prompt_results(
        self, obj: ObjectMemory, ring_frame: RingFrame, out: FrameOutput, timing: StageTiming
    ) -> ObjectResult:
        """The newest frame's results again, all objects in one batch, so the latest results
        always come from one call (and share one label index); a prompt on an older frame
        gets its own result there."""
        results, _ = self._results_of_all_objects(self._ring.newest, timing)
        self._latest = {r.object_id: r for r in results}
        if ring_frame is self._ring.newest:
            return self._latest[obj.object_id]
        item = self._object_on_frame(obj, ring_frame, out)
        return self._to_camera_size([item], ring_frame, timing)[0][0]

    def _new_id(self) -> int:
        """The next object id; past MAX_OBJECT_ID the smallest free one (the label image is
        16-bit, so ids must stay below 65536 on an endless stream)."""
        if self._next_id <= MAX_OBJECT_ID and self._next_id not in self._objects:
            return self._next_id
        return next(i for i in range(1, MAX_OBJECT_ID + 1) if i not in self._objects)

    def remove(self, object_ids: list[int], wait: bool = True) -> list[int]:
        """Forget objects entirely (id, label, memory, prompts).

        Args:
            object_ids: the ids to remove, all known.
            wait: False never waits for a frame in progress: the ids are checked now and
                the removal is applied when that frame ends (before its results are made).
        Returns:
            The remaining ids, sorted.
        Raises:
            UnknownObjectError: an id that is not tracked (nothing is removed then).
        """
        if not self._lock.acquire(blocking=wait):
            return sorted(self._queue("remove", object_ids))
        try:
            with self._membership:
                self._apply_pending()  # a removal queued before: not removed twice
                self._check_known(object_ids)
                for object_id in object_ids:
                    self._objects.pop(object_id, None)
                    self._latest.pop(object_id, None)
                return sorted(self._objects)
        finally:
            self._lock.release()

    def reset(self, object_ids: list[int] | None = None, wait: bool = True) -> bool:
        """Forget everything, or clear some objects' memory and prompts.

        Args:
            object_ids: None or []: every object, its memory and the kept frames. Else
                those objects, which keep id and label until prompted again.
            wait: False never waits for a frame in progress (see ``remove``).
        Returns:
            Whether the reset is applied already (False: when the current frame ends).
        Raises:
            UnknownObjectError: an id that is not tracked (nothing is reset then).
        """
        if not self._lock.acquire(blocking=wait):
            self._queue("reset", object_ids or [])
            if not object_ids:
                # The next frame starts a new stream at once (a stamp before the frame in
                # progress is not a jump back); the end of that frame forgets it again.
                self.stamps.forget()
            return False
        try:
            with self._membership:
                self._apply_pending()  # queued requests first, in the order they came
                self._reset(object_ids)
            return True
        finally:
            self._lock.release()

    def _reset(self, object_ids: list[int] | None) -> None:
        if not object_ids:
            self._objects.clear()
            self._ring.clear()
            self._latest.clear()
            self.stamps.forget()
            self._generation += 1
            self._next_id = 1  # nothing refers to old ids any more: reuse them
            return
        self._check_known(object_ids)
        for object_id in object_ids:
            self._objects[object_id].clear()
            self._latest.pop(object_id, None)

    def _check_known(self, object_ids: list[int]) -> None:
        for object_id in object_ids:
            self._object(object_id)

    def _queue(self, kind: str, object_ids: list[int]) -> set[int]:
        """Queue a removal or reset behind the frame in progress, checked against the ids
        it will meet, atomically with other queued and applied changes (an id removed twice
        at once is refused the second time). Returns the ids once it is applied."""
        with self._membership:
            known = self._ids_after_pending()
            self._check_queued(object_ids, known)
            self._pending.append((kind, list(object_ids)))
            return known - set(object_ids) if kind == "remove" else known

    def _ids_after_pending(self) -> set[int]:
        """The object ids once the queued removals and resets are applied."""
        ids = set(self._objects)
        for kind, queued in list(self._pending):
            if kind == "remove":
                ids -= set(queued)
            elif not queued:
                ids = set()
        return ids

    @staticmethod
    def _check_queued(object_ids: list[int], known: set[int]) -> None:
        """A request queued behind a frame is checked against the ids it will meet."""
        for object_id in object_ids:
            if int(object_id) not in known:
                raise UnknownObjectError(
                    f"unknown object id {object_id} (known ids: {sorted(known) or 'none'})"
                )

    def _apply_pending(self) -> None:
        """Removals and resets asked for while a frame ran (called with the lock held)."""
        with self._membership:
            while self._pending:
                kind, ids = self._pending.popleft()
                if kind == "remove":
                    for object_id in ids:
                        self._objects.pop(object_id, None)
                        self._latest.pop(object_id, None)
                else:
                    with contextlib.suppress(UnknownObjectError):  # removed meanwhile
                        self._reset(ids)

    def latest_results(self) -> list[ObjectResult]:
        """The newest frame's result per object, prompts applied since included."""
        with self._lock:
            self._apply_pending()
            return [self._latest[i] for i in sorted(self._latest)]

    # ------------------------------------------------------------------ internals
    def _compute(self) -> contextlib.AbstractContextManager:
        return compute_mode(self.loaded)

    def _check_new_stamp(self, stamp: int | None) -> int:
        stamp = self.stamps.stamp_for(stamp)
        if self.stamps.judge(stamp) is not Verdict.NEW:
            raise StampError(
                f"frame stamp {stamp} is not after the previous frame's {self.stamps.last}; "
                "reset the tracker to restart a stream"
            )
        return stamp

    def _object(self, object_id: int | None) -> ObjectMemory:
        obj = self._objects.get(int(object_id)) if object_id is not None else None
        if obj is None:
            known = sorted(self._objects) or "none"
            raise UnknownObjectError(f"unknown object id {object_id} (known ids: {known})")
        return obj

    def _fill_holes(self, logits: torch.Tensor, timing: StageTiming | None = None) -> torch.Tensor:
        return fill_holes(logits, self.fill_hole_area)

    def _track_objects(
        self, ring_frame: RingFrame, objects: list[ObjectMemory], timing: StageTiming
    ) -> list[FrameOutput]:
        """Track objects on a past frame in one batch (memory attention grouped by memory
        layout inside it), the policy's reads made before returning (re-tracking)."""
        if not objects:
            return []
        decoded = self._steps.decode_sessions([self._track_part(ring_frame, objects)], timing)[0]
        outputs = self._commit_decoded(ring_frame, objects, decoded, timing)
        host_sync.current().flush()
        return outputs

    def _track_part(self, ring_frame: RingFrame, objects: list[ObjectMemory]) -> TrackPart:
        """The objects' memories on a frame, as the decode step takes them."""
        policy = self._policy
        memories = [self._steps.memory(o, ring_frame.index, policy.selective_memory)
                    for o in objects]
        return TrackPart(ring_frame, memories, policy.wants_candidates)

    def _commit_decoded(self, ring_frame: RingFrame, objects: list[ObjectMemory],
                        decoded: Decoded, timing: StageTiming) -> list[FrameOutput]:
        """The policy's choice, the memory encoder and the outputs committed, for one
        session's objects on a frame (re-tracking)."""
        self._choose(ring_frame, objects, decoded)
        maskmem = self._steps.encode_memory(
            ring_frame, decoded.high_res_masks, decoded.object_score_logits, False, timing
        )
        return self._commit(ring_frame, objects, decoded, maskmem, timing)

    def _choose(self, ring_frame: RingFrame, objects: list[ObjectMemory],
                decoded: Decoded) -> None:
        """The tracking policy's choice among the decoded masks (in place)."""
        self._policy.select(objects, ring_frame.index, decoded)
        self._policy.resolve([(objects, decoded)])

    def _commit(self, ring_frame: RingFrame, objects: list[ObjectMemory], decoded: Decoded,
                maskmem: torch.Tensor, timing: StageTiming) -> list[FrameOutput]:
        """Each object's output (hole-filled masks, its memory) committed by the policy
        (its reads queued for the next host wait)."""
        pred_masks = self._fill_holes(decoded.pred_masks.float(), timing)
        outputs = split_outputs(decoded, pred_masks, maskmem)
        for obj, out in zip(objects, outputs, strict=True):
            self._policy.commit(obj, ring_frame.index, out)
        return outputs

    def _prompt_output(
        self,
        ring_frame: RingFrame,
        obj: ObjectMemory,
        points: dict[str, torch.Tensor] | None,
        mask_in: torch.Tensor | None,
        previous: FrameOutput | None,
        is_init: bool,
        timing: StageTiming,
    ) -> FrameOutput:
        """Apply clicks/box (``points``) or a mask to one object on one frame; the previous
        output's logits go along with clicks, as in SAM 2. Nothing is stored here."""
        prev_logits = None
        if points is not None and previous is not None and previous.pred_masks is not None:
            prev_logits = torch.clamp(previous.pred_masks.to(self.device), -32.0, 32.0)
        memories = None if is_init else [
            self._steps.memory(obj, ring_frame.index, self._policy.selective_memory)]
        decoded = self._steps.decode(ring_frame, memories, timing, points, mask_in, prev_logits)
        pred_masks = self._fill_holes(decoded.pred_masks.float(), timing)
        # SAM 2 encodes a prompted frame's memory from the (hole-filled) low-res mask
        # brought back to the model's size, binarised as the user saw it.
        high_res = F.interpolate(
            pred_masks,
            size=(self.image_size, self.image_size),
            mode="bilinear",
            align_corners=False,
        )
        maskmem = self._steps.encode_memory(
            ring_frame, high_res, decoded.object_score_logits, True, timing
        )
        out = split_outputs(decoded, pred_masks, maskmem)[0]
        out.point_inputs = points
        out.prompted = True
        out.refined = not is_init and points is not None
        return out

    def _retrack_forward(self, obj: ObjectMemory, from_index: int, timing: StageTiming) -> int:
        """Re-track one object from a prompted past frame up to the newest frame.

        Outputs that do not depend on memory (prompted conditioning frames, mask prompts)
        are kept; a refinement's clicks are applied again on the re-tracked mask, as they
        would have been had the earlier prompt come in time.
        """
        count = 0
        self._policy.rewind(obj, from_index)
        for ring_frame in self._ring:
            index = ring_frame.index
            if index <= from_index or index in obj.cond:
                continue
            existing = obj.non_cond.get(index)
            if existing is not None and existing.prompted and not existing.refined:
                continue
            out = self._track_objects(ring_frame, [obj], timing)[0]
            if existing is not None and existing.refined:
                out = self._prompt_output(
                    ring_frame, obj, existing.point_inputs, None, out, False, timing
                )
            obj.non_cond[index] = out
            count += 1
        return count

    def _prune(self) -> None:
        """Release what SAM 2 can no longer attend to from the oldest ring frame on."""
        if not self._ring:
            return
        facts = self.loaded.facts
        oldest = self._ring.oldest.index
        keep_ptr_from = oldest - (facts.max_obj_ptrs_in_encoder - 1)
        keep_mem_from = (oldest - (facts.num_maskmem - 1) * facts.memory_temporal_stride_for_eval
                         - 1)
        for obj in self._objects.values():
            obj.prune(keep_ptr_from, keep_mem_from, oldest, self._policy.keep_admitted,
                      self._policy.keep_admitted_memory)

    def _results_of_all_objects(
        self, ring_frame: RingFrame, timing: StageTiming
    ) -> tuple[list[ObjectResult], HostTransfer]:
        """Every object's result on a ring frame (one batched postprocessing step)."""
        items = [self._object_on_frame(o, ring_frame) for _, o in sorted(self._objects.items())]
        return self._to_camera_size(items, ring_frame, timing)

    def _to_camera_size(
        self, items: list[ObjectOnFrame], ring_frame: RingFrame, timing: StageTiming
    ) -> tuple[list[ObjectResult], HostTransfer]:
        """The objects' outputs on a ring frame as results at the camera's size (masks,
        label index, box, centroid), in one batched postprocessing step."""
        started = time.perf_counter()
        results, transfer = frame_results(
            items, ring_frame.image_hw, self.mask_threshold, self.device
        )
        timing.postprocess += time.perf_counter() - started
        return results, transfer

    @staticmethod
    def _object_on_frame(
        obj: ObjectMemory, ring_frame: RingFrame, out: FrameOutput | None = None
    ) -> ObjectOnFrame:
        """An object's output on a ring frame (its stored one unless ``out`` is given) with
        the frames since its last prompt, as postprocessing takes it."""
        out = out if out is not None else obj.output_at(ring_frame.index)
        since = 0
        if obj.last_prompt_frame is not None:
            since = max(0, ring_frame.index - obj.last_prompt_frame)
        return ObjectOnFrame(obj, out, since)
