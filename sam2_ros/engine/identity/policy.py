"""How the tracker keeps identities: SAM 2's own way, or with motion (``tracking_mode``).

``StreamingTracker`` calls its policy at fixed points of a frame and never branches on the
mode itself:

* ``select``: after the mask decoder, which candidate mask each object takes;
* ``resolve``: across all objects of the frame, before memory encoding;
* ``commit``: an object's output on a tracked frame is final (admission to memory, motion);
* ``on_prompt``: a prompt set an object's output on a frame (motion restarts from it);
* ``rewind``: an object is about to be re-tracked after a frame (a prompt in the past).

``Sam2Policy`` does nothing at any of them: Meta's behaviour, pinned by the parity tests.
``MotionPolicy`` is SAMURAI's recipe (Yang et al. 2024) plus SAM 2's non-overlap
constraint: a Kalman filter per object on its box, the multimask candidate chosen by
predicted IoU and agreement with the predicted box, a frame admitted to memory only when
its mask score, object score and motion agreement pass thresholds (the bank then attends
to the newest admitted frames, ``memory_bank``), an object that loses its region to
another reported hidden instead of taking the other's mask, and a hidden object's output
given its predicted box, judged covered or not by the other objects (its track state).
Two guards keep a mask that moved onto something else out of memory and out of the filter:
its area must stay near the object's recent admitted areas (a half-hidden object is not
written in), and its look must stay near the prompted one (``appearance``). An object lost
on a frame while its predicted box lies in view, not behind the others, is prompted there
with that box; a mask that passes ``reacquire.accept`` and looks like it finds it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.engine.identity.appearance import pooled, similarity
from sam2_ros.engine.identity.candidates import box_iou, choose_candidate, mask_box
from sam2_ros.engine.identity.motion_filter import BoxState
from sam2_ros.engine.identity.overlap import (
    box_covered,
    claim_losers,
    claim_strength,
    exclusive_logits,
)
from sam2_ros.engine.identity.reacquire import MIN_INSIDE, accept, box_prompt_heads, inside_share
from sam2_ros.engine.memory_bank import FrameOutput, ObjectMemory
from sam2_ros.settings import default

TRACKING_MODES = ("sam2", "motion")
#: SAM 2's logit for "no object here" (sam2.modeling.sam2_base.NO_OBJ_SCORE).
NO_OBJ_SCORE = -1024.0


@dataclass(frozen=True)
class MotionSettings:
    """Weights and thresholds of ``MotionPolicy`` (node parameters ``motion_*``; defaults
    from ``settings.PARAMETERS``, measured: docs/identity.md)."""

    weight: float = default("motion_weight")  # motion's share in choosing a candidate
    admit_iou: float = default("motion_admit_iou")  # predicted IoU to enter memory
    admit_object_score: float = default("motion_admit_object_score")  # object-score logit
    admit_motion: float = default("motion_admit_overlap")  # IoU with the predicted box
    admit_area: float = default("motion_admit_area")  # share of its recent admitted area
    admit_appearance: float = default("motion_admit_appearance")  # look vs the prompted one
    continuity: float = default("motion_continuity")  # claim bonus: seen on its last frame
    warmup: int = 2  # measurements before the filter's prediction is trusted
    area_frames: int = 6  # admitted frames whose median area the next mask is held to
    reacquire_iou: float = 0.5  # predicted IoU a box prompt from motion needs to be kept


@dataclass
class _Pending:
    """What ``select``/``resolve`` learnt about one object on the frame being tracked."""

    box: np.ndarray | None
    motion: float
    predicted: BoxState | None
    occluded: bool = False  # lost its region to another object
    covered: bool = False  # hidden, and its predicted box lies behind other objects


class Sam2Policy:
    """Meta's SAM 2: the decoder's best candidate, every frame in memory by position."""

    wants_candidates = False
    selective_memory = False
    keep_admitted = 0

    def select(self, objects: Sequence[ObjectMemory], frame_index: int, decoded) -> None:
        """Choose each object's candidate mask in ``decoded`` (in place)."""

    def resolve(self, groups: Sequence[tuple[Sequence[ObjectMemory], object]]) -> None:
        """Settle conflicts between the objects of a frame (``decoded`` of each group)."""

    def commit(self, obj: ObjectMemory, frame_index: int, out: FrameOutput) -> None:
        """An object's tracked output on a frame is final."""

    def on_prompt(self, obj: ObjectMemory, frame_index: int, out: FrameOutput,
                  features: torch.Tensor | None = None) -> None:
        """A prompt set an object's output on a frame (``features``: the frame's finest
        image-encoder level)."""

    def rewind(self, obj: ObjectMemory, frame_index: int) -> None:
        """Forget what was learnt after ``frame_index`` (it will be tracked again)."""


class MotionPolicy(Sam2Policy):
    """SAMURAI-style motion-aware choice and memory, with objects excluding each other."""

    wants_candidates = True
    selective_memory = True

    def __init__(self, model: torch.nn.Module, settings: MotionSettings | None = None) -> None:
        self.model = model
        self.settings = settings or MotionSettings()
        # Admitted frames kept beyond SAM 2's window: enough for its memory and pointers.
        self.keep_admitted = max(model.num_maskmem - 1, model.max_obj_ptrs_in_encoder - 1)
        self._pending: dict[int, _Pending] = {}
        self._fine: torch.Tensor | None = None  # the frame's finest features (looks)
        self._frame_index = 0  # the frame being tracked

    # ------------------------------------------------------------------ motion state
    @staticmethod
    def _state_before(obj: ObjectMemory, frame_index: int) -> tuple[int, BoxState] | None:
        earlier = [i for i in obj.motion if i < frame_index]
        if not earlier:
            return None
        i = max(earlier)
        return i, obj.motion[i]

    def _prediction(self, obj: ObjectMemory, frame_index: int) -> BoxState | None:
        found = self._state_before(obj, frame_index)
        if found is None:
            return None
        i, state = found
        return state.predict(frame_index - i)

    # ------------------------------------------------------------------ frame steps
    def select(self, objects: Sequence[ObjectMemory], frame_index: int, decoded) -> None:
        self._fine = decoded.fine_feat
        self._frame_index = frame_index
        multi = decoded.multi_low_res
        if multi is None:
            return
        masks = (multi > 0).cpu().numpy()
        ious = decoded.multi_ious.float().cpu().numpy()
        for b, obj in enumerate(objects):
            predicted = self._prediction(obj, frame_index)
            trusted = self._trusted(predicted)
            boxes = [mask_box(m) for m in masks[b]]
            pick, motion = choose_candidate(
                ious[b], boxes, predicted.box if trusted else None, self.settings.weight)
            self._pending[obj.object_id] = _Pending(boxes[pick], motion, predicted)
            if pick == int(np.argmax(ious[b])):
                continue  # SAM 2's own choice: its outputs stand
            low = multi[b : b + 1, pick : pick + 1].float()
            decoded.pred_masks[b : b + 1] = low.to(decoded.pred_masks.dtype)
            decoded.high_res_masks[b : b + 1] = F.interpolate(
                low, size=decoded.high_res_masks.shape[-2:], mode="bilinear",
                align_corners=False).to(decoded.high_res_masks.dtype)
            decoded.ious[b] = decoded.multi_ious[b, pick].float()
            decoded.obj_ptr[b : b + 1] = self._pointer(
                decoded.tokens[b : b + 1, pick], decoded.object_score_logits[b : b + 1]
            ).to(decoded.obj_ptr.dtype)

    def _pointer(self, token: torch.Tensor, score_logits: torch.Tensor) -> torch.Tensor:
        """The object pointer SAM 2 builds from a candidate's output token."""
        model = self.model
        ptr = model.obj_ptr_proj(token)
        if model.pred_obj_scores:
            appearing = (score_logits.sigmoid() if model.soft_no_obj_ptr
                         else (score_logits > 0).float())
            if model.fixed_no_obj_ptr:
                ptr = appearing * ptr
            ptr = ptr + (1 - appearing) * model.no_obj_ptr
        return ptr

    def resolve(self, groups: Sequence[tuple[Sequence[ObjectMemory], object]]) -> None:
        entries = [(obj, decoded, b) for objs, decoded in groups
                   for b, obj in enumerate(objs)]
        if len(entries) < 2:
            return
        w = self.settings.weight
        masks, visible, claims = [], [], []
        for obj, decoded, b in entries:
            masks.append((decoded.pred_masks[b, 0] > 0).cpu().numpy())
            visible.append(bool(decoded.object_score_logits[b, 0] > 0))
            pending = self._pending.get(obj.object_id)
            motion = pending.motion if pending is not None else 1.0
            claims.append(claim_strength(float(decoded.ious[b]), motion, w,
                                         self._seen_before(obj), self.settings.continuity))
        exclusive = exclusive_logits(self._joined(entries, "pred_masks"))
        losers = claim_losers(masks, list((exclusive[:, 0] > 0).cpu().numpy()), visible, claims)
        found = self._find_again(entries, masks, visible, losers)
        for k in losers - found:
            obj, decoded, b = entries[k]
            decoded.pred_masks[b] = NO_OBJ_SCORE
            decoded.high_res_masks[b] = NO_OBJ_SCORE
            decoded.object_score_logits[b] = torch.clamp(
                decoded.object_score_logits[b], max=-1.0)
            if self.model.pred_obj_scores:
                decoded.obj_ptr[b] = self.model.no_obj_ptr[0].to(decoded.obj_ptr.dtype)
            if obj.object_id in self._pending:
                self._pending[obj.object_id].occluded = True
        if losers or found:  # masks changed: the constraint again
            exclusive = exclusive_logits(self._joined(entries, "pred_masks"))
        self._write_back(entries, "pred_masks", exclusive)
        self._write_back(entries, "high_res_masks",
                         exclusive_logits(self._joined(entries, "high_res_masks")))
        self._judge_covered(entries)

    def _seen_before(self, obj: ObjectMemory) -> bool:
        """Whether the object was reported visible on its newest output before this frame."""
        earlier = [i for i in (*obj.non_cond, *obj.cond) if i < self._frame_index]
        if not earlier:
            return False
        return bool(float(obj.output_at(max(earlier)).object_score_logits) > 0)

    def _find_again(self, entries: list, masks: list[np.ndarray], visible: list[bool],
                    losers: set[int]) -> set[int]:
        """Objects lost on this frame (hidden, beaten to their region, or drawn away from
        where their motion puts them) whose predicted box lies in view and not behind the
        other objects: SAM 2's heads again with that box as a prompt; where the mask is the
        object (``reacquire.accept``, and it looks like it) it replaces the decoded output.
        Returns the entries found again (``masks``/``visible`` updated for them)."""
        s, found = self.settings, set()
        for k, (obj, decoded, b) in enumerate(entries):
            pending = self._pending.get(obj.object_id)
            if (pending is None or decoded.plain_feat is None
                    or not self._trusted(pending.predicted)):
                continue
            lost = k in losers or not visible[k] or pending.motion < s.admit_motion
            box = pending.predicted.box
            if not lost or inside_share(box, masks[k].shape[-1]) < MIN_INSIDE:
                continue
            shown = [m for j, m in enumerate(masks)
                     if j != k and visible[j] and j not in losers - found]
            others = np.logical_or.reduce(shown) if shown else None
            if others is not None and box_covered(box, others):
                continue  # behind the other objects: hidden, not lost
            out = box_prompt_heads(self.model, decoded, box, self.model.image_size)
            if not accept(out, box, others, s.reacquire_iou, s.admit_motion):
                continue
            if not self._looks_like(obj, out.low_res):
                continue
            decoded.pred_masks[b] = out.low_res[0].to(decoded.pred_masks.dtype)
            decoded.high_res_masks[b] = out.high_res[0].to(decoded.high_res_masks.dtype)
            decoded.ious[b] = out.iou[0]
            decoded.obj_ptr[b] = out.obj_ptr[0].to(decoded.obj_ptr.dtype)
            decoded.object_score_logits[b] = out.object_score_logits[0].to(
                decoded.object_score_logits.dtype)
            pending.box, pending.motion = out.box, box_iou(out.box, box)
            masks[k], visible[k] = (out.low_res[0, 0] > 0).cpu().numpy(), True
            found.add(k)
        return found

    def _looks_like(self, obj: ObjectMemory, mask_logits: torch.Tensor | None) -> bool:
        """Whether a mask's look on this frame is near the object's prompted look (true when
        the check is off or either look is unknown)."""
        threshold = self.settings.admit_appearance
        if threshold <= 0 or mask_logits is None or self._fine is None:
            return True
        sim = similarity(obj.appearance, pooled(self._fine, mask_logits))
        return sim is None or sim >= threshold

    def _area_holds(self, obj: ObjectMemory, frame_index: int, out: FrameOutput) -> bool:
        """Whether the mask keeps at least ``admit_area`` of the median area of the object's
        newest admitted frames (a shrinking mask is an object going behind another)."""
        s = self.settings
        if s.admit_area <= 0 or out.area is None:
            return True
        pool = {**obj.non_cond, **obj.cond}
        recent = sorted((i for i, o in pool.items()
                         if i < frame_index and o.admitted and o.area is not None),
                        reverse=True)[: s.area_frames]
        if not recent:
            return True
        return out.area >= s.admit_area * float(np.median([pool[i].area for i in recent]))

    def _judge_covered(self, entries: list) -> None:
        """Mark each hidden object whose trusted predicted box lies behind the other
        objects' final masks of the frame: it is occluded by them, not gone."""
        hidden = []
        for k, (obj, decoded, b) in enumerate(entries):
            pending = self._pending.get(obj.object_id)
            if (pending is not None and self._trusted(pending.predicted)
                    and not bool(decoded.object_score_logits[b, 0] > 0)):
                hidden.append((k, pending))
        if not hidden:
            return
        shown = [(decoded.pred_masks[b, 0] > 0).cpu().numpy()
                 if bool(decoded.object_score_logits[b, 0] > 0) else None
                 for _, decoded, b in entries]
        for k, pending in hidden:
            others = [m for j, m in enumerate(shown) if j != k and m is not None]
            if others:
                pending.covered = box_covered(pending.predicted.box,
                                              np.logical_or.reduce(others))

    def _trusted(self, predicted: BoxState | None) -> bool:
        return predicted is not None and predicted.updates >= self.settings.warmup

    @staticmethod
    def _joined(entries: Sequence[tuple], attr: str) -> torch.Tensor:
        """One mask tensor [N, 1, H, W] of every object of the frame, in float (the batch's
        own tensor when the frame is one batch, as the tracker decodes it: no copy)."""
        if _one_batch(entries):
            return getattr(entries[0][1], attr).float()
        return torch.cat([getattr(d, attr)[b : b + 1] for _, d, b in entries]).float()

    @staticmethod
    def _write_back(entries: Sequence[tuple], attr: str, joined: torch.Tensor) -> None:
        """Each object's part of ``joined`` into its batch."""
        if _one_batch(entries):
            decoded = entries[0][1]
            setattr(decoded, attr, joined.to(getattr(decoded, attr).dtype))
            return
        for k, (_, decoded, b) in enumerate(entries):
            tensor = getattr(decoded, attr)
            tensor[b : b + 1] = joined[k : k + 1].to(tensor.dtype)

    def commit(self, obj: ObjectMemory, frame_index: int, out: FrameOutput) -> None:
        s = self.settings
        pending = self._pending.pop(obj.object_id, None)
        box = pending.box if pending is not None else _box_of(out)
        motion = pending.motion if pending is not None else 1.0
        score_logit = float(out.object_score_logits)
        out.area = _area_of(out)
        # Confident frames feed memory and filter; a mask shrinking while the object goes
        # behind another is not (the filter would learn the shrink: measured, it then loses
        # the object behind the occluder).
        confident = (score_logit > s.admit_object_score
                     and float(out.iou) >= s.admit_iou
                     and not (pending is not None and pending.occluded)
                     and self._area_holds(obj, frame_index, out)
                     and self._looks_like(obj, out.pred_masks))
        out.admitted = confident and motion >= s.admit_motion
        predicted = pending.predicted if pending is not None else self._prediction(
            obj, frame_index)
        if score_logit <= 0 and self._trusted(predicted):  # hidden: where motion puts it
            out.predicted_box = tuple(float(v) for v in predicted.box)
            out.covered = pending is not None and pending.covered
        if predicted is None:
            if box is not None and confident:
                obj.motion[frame_index] = BoxState.start(box)
            return
        agrees = box is not None and (predicted.updates < s.warmup
                                      or box_iou(box, predicted.box) >= s.admit_motion)
        if box is not None and (out.admitted or (confident and agrees)):
            obj.motion[frame_index] = predicted.update(box)
        else:
            obj.motion[frame_index] = predicted  # coast on the prediction

    def on_prompt(self, obj: ObjectMemory, frame_index: int, out: FrameOutput,
                  features: torch.Tensor | None = None) -> None:
        out.admitted = True
        out.area = _area_of(out)
        self._pending.pop(obj.object_id, None)
        if features is not None and out.pred_masks is not None:
            look = pooled(features, out.pred_masks)
            if look is not None:  # the prompt says what the object looks like
                obj.appearance = look
        box = _box_of(out)
        if box is None:
            return
        # The prompt is the truth about where the object is: the filter starts again there.
        obj.motion[frame_index] = BoxState.start(box)
        self.rewind(obj, frame_index)

    def rewind(self, obj: ObjectMemory, frame_index: int) -> None:
        for index in [i for i in obj.motion if i > frame_index]:
            del obj.motion[index]


def _one_batch(entries: Sequence[tuple]) -> bool:
    """Whether the frame's objects are one whole batch, in its order."""
    decoded = entries[0][1]
    return (all(d is decoded and b == k for k, (_, d, b) in enumerate(entries))
            and len(entries) == decoded.pred_masks.size(0))


def _area_of(out: FrameOutput) -> float | None:
    """Pixels of the output's mask in the low-res grid."""
    return None if out.pred_masks is None else float((out.pred_masks > 0).sum())


def _box_of(out: FrameOutput) -> np.ndarray | None:
    if out.pred_masks is None:
        return None
    return mask_box((out.pred_masks[0, 0] > 0).cpu().numpy())


def make_policy(mode: str, model: torch.nn.Module,
                settings: MotionSettings | None = None) -> Sam2Policy:
    """The policy of a ``tracking_mode``."""
    if mode == "sam2":
        return Sam2Policy()
    if mode == "motion":
        return MotionPolicy(model, settings)
    raise ValueError(f"tracking_mode must be one of {', '.join(TRACKING_MODES)}, got {mode!r}")
