"""How the tracker keeps identities: SAM 2's own way, or with motion (``tracking_mode``).

``StreamingTracker`` calls its policy at fixed points of a frame and never branches on the
mode itself: ``select`` (which candidate mask each object takes), ``resolve`` (across all
objects, before memory encoding), ``commit`` (an object's output on a tracked frame is
final), ``on_prompt`` (a prompt set an object's output) and ``rewind`` (an object is about
to be re-tracked after a prompt in the past).

``Sam2Policy`` does nothing at any of them: Meta's behaviour, pinned by the parity tests.
``MotionPolicy`` is SAMURAI's recipe (Yang et al. 2024) plus SAM 2's non-overlap
constraint: a Kalman filter per object on its box, candidates chosen by predicted IoU and
motion agreement, memory admission behind score, motion, area and appearance guards, and
a lost object prompted again where its box is predicted in view. What each piece does and
why, with its measurements: docs/identity.md, "tracking_mode".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.identity.appearance import MIN_WEIGHT, cosine, pooled_on_device
from sam2_ros.engine.identity.candidates import box_iou, box_ious, mask_boxes
from sam2_ros.engine.identity.motion_filter import BoxState
from sam2_ros.engine.identity.overlap import (
    COVERED,
    box_cells,
    box_covered,
    claim_losers,
    claim_strength,
    exclusive_logits,
)
from sam2_ros.engine.identity.reacquire import MIN_INSIDE, accept, box_prompt_heads, inside_share
from sam2_ros.engine.memory_bank import FrameOutput, ObjectMemory
from sam2_ros.settings import default

if TYPE_CHECKING:
    from sam2_ros.engine.steps.sam2_steps import Sam2Steps

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
    """What ``select``/``resolve`` learnt about one object on the frame being tracked.

    ``box`` and ``motion`` are known on the host once read (``resolve``'s wait or the
    commit's); until then they are the device tensors in ``on_device``."""

    box: np.ndarray | None
    motion: float
    predicted: BoxState | None
    occluded: bool = False  # lost its region to another object
    covered: bool = False  # hidden, and its predicted box lies behind other objects
    on_device: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # box, has, motion
    cover: tuple[torch.Tensor, int] | None = None  # covered pixels of its box, box pixels

    def device_values(self) -> list[torch.Tensor]:
        return list(self.on_device) if self.on_device is not None else []

    def take(self, values: Sequence[np.ndarray]) -> None:
        """The read values of ``device_values``."""
        if self.on_device is None:
            return
        box, has, motion = values
        self.box = np.asarray(box, float) if bool(has) else None
        self.motion = float(motion)
        self.on_device = None


class Sam2Policy:
    """Meta's SAM 2: the decoder's best candidate, every frame in memory by position."""

    wants_candidates = False
    selective_memory = False
    keep_admitted = 0
    keep_admitted_memory = 0

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

    def __init__(self, steps: Sam2Steps, settings: MotionSettings | None = None) -> None:
        """``steps``: the session's door into SAM 2 (its facts, object pointers, and the
        heads again for a box prompt)."""
        self.steps = steps
        self.facts = steps.facts
        self.settings = settings or MotionSettings()
        # Admitted frames kept beyond SAM 2's window: pointers for as many as it attends,
        # memory features for as many memory frames (``ObjectMemory.prune``).
        self.keep_admitted = self.facts.max_obj_ptrs_in_encoder - 1
        self.keep_admitted_memory = self.facts.num_maskmem - 1
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
        """Each object's candidate by predicted IoU and motion (``choose_candidate``, here
        on the device in float64, the same numbers): no host wait."""
        self._fine = decoded.fine_feat
        self._frame_index = frame_index
        multi = decoded.multi_low_res
        if multi is None:
            return
        batch = multi.size(0)
        predictions = [self._prediction(obj, frame_index) for obj in objects]
        use = [self._trusted(p) and self.settings.weight > 0 for p in predictions]
        boxes, has = mask_boxes(multi > 0)  # [B, K, 4], [B, K]
        ious = decoded.multi_ious.float()
        best = ious.argmax(dim=-1)
        rows = torch.arange(batch, device=multi.device)
        pick, motion = best, torch.ones(batch, dtype=torch.float64, device=multi.device)
        if any(use):
            w = self.settings.weight
            predicted = host_sync.upload(np.array(
                [p.box if u else np.zeros(4) for p, u in zip(predictions, use, strict=True)]),
                multi.device, torch.float64)
            agree = torch.where(has, box_ious(boxes, predicted[:, None]), 0.0)
            score = (1.0 - w) * ious.double() + w * agree
            trusted = host_sync.upload(np.array(use), multi.device)
            pick = torch.where(trusted, score.argmax(dim=-1), best)
            motion = torch.where(trusted, agree[rows, pick], motion)
        for b, obj in enumerate(objects):
            self._pending[obj.object_id] = _Pending(
                None, 1.0, predictions[b],
                on_device=(boxes[rows, pick][b], has[rows, pick][b], motion[b]))
        self._take_candidates(decoded, pick, pick != best)

    def _take_candidates(self, decoded, pick: torch.Tensor, changed: torch.Tensor) -> None:
        """Where ``changed``, the decoded outputs become candidate ``pick``'s (the mask,
        its high-res logits, IoU and the object pointer SAM 2 builds from its token)."""
        rows = torch.arange(pick.size(0), device=pick.device)
        low = decoded.multi_low_res[rows, pick][:, None].float()
        keep = changed.view(-1, 1, 1, 1)
        decoded.pred_masks = torch.where(keep, low.to(decoded.pred_masks.dtype),
                                         decoded.pred_masks)
        high = F.interpolate(low, size=decoded.high_res_masks.shape[-2:], mode="bilinear",
                             align_corners=False).to(decoded.high_res_masks.dtype)
        decoded.high_res_masks = torch.where(keep, high, decoded.high_res_masks)
        decoded.ious = torch.where(changed, decoded.multi_ious[rows, pick].float(),
                                   decoded.ious)
        pointer = self.steps.object_pointer(decoded.tokens[rows, pick],
                                            decoded.object_score_logits)
        decoded.obj_ptr = torch.where(changed[:, None], pointer.to(decoded.obj_ptr.dtype),
                                      decoded.obj_ptr)

    def resolve(self, groups: Sequence[tuple[Sequence[ObjectMemory], object]]) -> None:
        """Objects claiming one region: the weaker is hidden (or found again where its
        motion puts it). One host wait for the frame's masks and scores (and one more
        only when a lost object is prompted with its predicted box)."""
        entries = [(obj, decoded, b) for objs, decoded in groups
                   for b, obj in enumerate(objs)]
        if len(entries) < 2:
            return
        w = self.settings.weight
        pendings = [self._pending.get(obj.object_id) for obj, _, _ in entries]
        joined = self._joined(entries, "pred_masks")
        exclusive = exclusive_logits(joined)
        scores = torch.cat([d.object_score_logits[b : b + 1, 0] for _, d, b in entries])
        ious = torch.cat([d.ious[b : b + 1] for _, d, b in entries])
        extra = [t for p in pendings if p is not None for t in p.device_values()]
        values = host_sync.read(joined[:, 0] > 0, exclusive[:, 0] > 0, scores.float(),
                                ious.float(), *extra)
        masks, kept_masks, score_values, iou_values = values[:4]
        start = 4
        for pending in pendings:
            if pending is not None and pending.on_device is not None:
                pending.take(values[start : start + 3])
                start += 3
        masks, visible = list(masks), [bool(v > 0) for v in score_values]
        claims = [claim_strength(float(iou_values[k]),
                                 p.motion if p is not None else 1.0, w,
                                 self._seen_before(obj), self.settings.continuity)
                  for k, ((obj, _, _), p) in enumerate(zip(entries, pendings, strict=True))]
        losers = claim_losers(masks, list(kept_masks), visible, claims)
        found = self._find_again(entries, masks, visible, losers)
        for k in losers - found:
            _, decoded, b = entries[k]
            decoded.pred_masks[b] = NO_OBJ_SCORE
            decoded.high_res_masks[b] = NO_OBJ_SCORE
            decoded.object_score_logits[b] = torch.clamp(
                decoded.object_score_logits[b], max=-1.0)
            if self.facts.pred_obj_scores:
                decoded.obj_ptr[b] = self.steps.no_object_pointer().to(decoded.obj_ptr.dtype)
            if pendings[k] is not None:
                pendings[k].occluded = True
        if losers or found:  # masks changed: the constraint again
            exclusive = exclusive_logits(self._joined(entries, "pred_masks"))
        self._write_back(entries, "pred_masks", exclusive)
        self._write_back(entries, "high_res_masks",
                         exclusive_logits(self._joined(entries, "high_res_masks")))
        self._judge_covered(entries)

    def _seen_before(self, obj: ObjectMemory) -> bool:
        """Whether the object was reported visible on its newest output before this frame
        (its score as read when that output was committed; read now otherwise)."""
        earlier = [i for i in (*obj.non_cond, *obj.cond) if i < self._frame_index]
        if not earlier:
            return False
        out = obj.output_at(max(earlier))
        if out.score_logit is None:
            out.score_logit = host_sync.scalars(out.object_score_logits)[0]
        return out.score_logit > 0

    def _find_again(self, entries: list, masks: list[np.ndarray], visible: list[bool],
                    losers: set[int]) -> set[int]:
        """Objects lost on this frame (hidden, beaten to their region, or drawn away from
        where their motion puts them) whose predicted box lies in view and not behind the
        other objects: SAM 2's heads again with that box as a prompt; where the mask is the
        object (``reacquire.accept``, and it looks like it) it replaces the decoded output.
        Every such prompt is run first and read in one wait. Returns the entries found
        again (``masks``/``visible`` updated for them)."""
        s, found = self.settings, set()
        tries: dict[int, tuple] = {}
        for k, (obj, decoded, _) in enumerate(entries):
            pending = self._pending.get(obj.object_id)
            if (pending is None or decoded.plain_feat is None
                    or not self._trusted(pending.predicted)):
                continue
            lost = k in losers or not visible[k] or pending.motion < s.admit_motion
            box = pending.predicted.box
            if lost and inside_share(box, masks[k].shape[-1]) >= MIN_INSIDE:
                out = box_prompt_heads(self.steps, decoded, box)
                tries[k] = (out, self._look_on_device(obj, out.low_res))
        if not tries:
            return found
        flat = [t for out, look in tries.values() for t in (*out.device_values(), *look)]
        values = iter(host_sync.read(*flat))
        for k, (out, look) in tries.items():
            out.take([next(values) for _ in range(3)])
            tries[k] = (out, self._looks_from([next(values) for _ in look]))
        for k, (out, looks_like) in tries.items():
            obj, decoded, b = entries[k]
            pending = self._pending[obj.object_id]
            box = pending.predicted.box
            shown = [m for j, m in enumerate(masks)
                     if j != k and visible[j] and j not in losers - found]
            others = np.logical_or.reduce(shown) if shown else None
            if others is not None and box_covered(box, others):
                continue  # behind the other objects: hidden, not lost
            if not accept(out, box, others, s.reacquire_iou, s.admit_motion) or not looks_like:
                continue
            decoded.pred_masks[b] = out.low_res[0].to(decoded.pred_masks.dtype)
            decoded.high_res_masks[b] = out.high_res[0].to(decoded.high_res_masks.dtype)
            decoded.ious[b] = out.iou[0]
            decoded.obj_ptr[b] = out.obj_ptr[0].to(decoded.obj_ptr.dtype)
            decoded.object_score_logits[b] = out.object_score_logits[0].to(
                decoded.object_score_logits.dtype)
            pending.box, pending.motion = out.box, box_iou(out.box, box)
            masks[k], visible[k] = out.mask, True
            found.add(k)
        return found

    def _look_on_device(self, obj: ObjectMemory,
                        mask_logits: torch.Tensor | None) -> list[torch.Tensor]:
        """What deciding ``_looks_like`` needs from the device: the cosine similarity of
        the mask's look to the prompted look and the mask's weight; [] when the check is
        off or a look is unknown (it then holds)."""
        if (self.settings.admit_appearance <= 0 or mask_logits is None or self._fine is None
                or obj.appearance is None):
            return []
        vector, total = pooled_on_device(self._fine, mask_logits)
        return [cosine(obj.appearance, vector), total]

    def _looks_from(self, values: Sequence[np.ndarray]) -> bool:
        """``_looks_like`` from the read values of ``_look_on_device``."""
        if not values:
            return True
        sim, total = (float(np.asarray(v).reshape(-1)[0]) for v in values)
        return total < MIN_WEIGHT or sim >= self.settings.admit_appearance

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
        """For each object with a trusted prediction, how much of its predicted box the
        other objects' final visible masks of the frame cover (on the device; the commit
        reads it and judges a hidden object covered: occluded by them, not gone)."""
        masks = self._joined(entries, "pred_masks")[:, 0] > 0
        scores = torch.cat([d.object_score_logits[b : b + 1, 0] for _, d, b in entries])
        shown = masks & (scores > 0)[:, None, None]
        total = shown.sum(dim=0)
        height, width = masks.shape[-2:]
        for k, (obj, _, _) in enumerate(entries):
            pending = self._pending.get(obj.object_id)
            if pending is None or not self._trusted(pending.predicted):
                continue
            x0, y0, x1, y1 = box_cells(pending.predicted.box, height, width)
            if x1 <= x0 or y1 <= y0:
                continue
            others = (total - shown[k].int())[y0:y1, x0:x1] > 0
            pending.cover = (others.sum(), (y1 - y0) * (x1 - x0))

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
        """Admission and motion for a tracked output, decided on the host when its numbers
        arrive: they are queued (``host_sync.later``) and ride along with the next read
        (the frame's result copy), so a frame waits once for all of them."""
        pending = self._pending.pop(obj.object_id, None)
        masks = out.pred_masks[0, 0] > 0
        box, has = mask_boxes(masks)
        look = self._look_on_device(obj, out.pred_masks)
        motion = pending.device_values() if pending is not None else []
        cover = [pending.cover[0]] if pending is not None and pending.cover is not None else []
        parts = (len(look), len(motion), len(cover))
        host_sync.current().later(
            [out.object_score_logits.float(), out.iou.float(), masks.sum(), box, has, *look,
             *motion, *cover],
            lambda values: self._commit_read(obj, frame_index, out, pending, values, parts))

    def _commit_read(self, obj: ObjectMemory, frame_index: int, out: FrameOutput,
                     pending: _Pending | None, values: list[np.ndarray],
                     parts: tuple[int, int, int]) -> None:
        """``commit`` once its numbers are on the host (``parts``: how many of them are the
        look, the pending motion and the covered count)."""
        s = self.settings
        score_logit, iou = (float(np.asarray(v).reshape(-1)[0]) for v in values[:2])
        out.score_logit = score_logit
        out.area = float(values[2])
        n_look, n_motion, n_cover = parts
        looks_like = self._looks_from(values[5 : 5 + n_look])
        rest = values[5 + n_look:]
        if pending is not None:
            pending.take(rest[:n_motion])
            if n_cover:
                pending.covered = float(rest[n_motion]) / pending.cover[1] >= COVERED
        box = pending.box if pending is not None else (
            np.asarray(values[3], float) if bool(values[4]) else None)
        motion = pending.motion if pending is not None else 1.0
        # Confident frames feed memory and filter; a mask shrinking while the object goes
        # behind another is not (the filter would learn the shrink: measured, it then loses
        # the object behind the occluder).
        confident = (score_logit > s.admit_object_score and iou >= s.admit_iou
                     and not (pending is not None and pending.occluded)
                     and self._area_holds(obj, frame_index, out) and looks_like)
        out.admitted = confident and motion >= s.admit_motion
        self._move(obj, frame_index, out, pending, box, confident)

    def _move(self, obj: ObjectMemory, frame_index: int, out: FrameOutput,
              pending: _Pending | None, box: np.ndarray | None, confident: bool) -> None:
        """The motion filter after a committed frame: updated by a box it can trust,
        else coasting on its prediction (which a hidden object's output reports)."""
        s = self.settings
        predicted = pending.predicted if pending is not None else self._prediction(
            obj, frame_index)
        if out.score_logit <= 0 and self._trusted(predicted):  # hidden: where motion puts it
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
        """The prompt is the truth about the object: admitted, its look and area taken,
        the filter started again at its box (one host wait)."""
        out.admitted = True
        self._pending.pop(obj.object_id, None)
        if out.pred_masks is None:
            out.area = None
            return
        masks = out.pred_masks[0, 0] > 0
        box, has = mask_boxes(masks)
        look = None
        queued = [masks.sum(), box, has, out.object_score_logits.float()]
        if features is not None:
            look, total = pooled_on_device(features, out.pred_masks)
            queued.append(total)
        values = host_sync.read(*queued)
        out.area = float(values[0])
        out.score_logit = float(values[3].reshape(-1)[0])
        if look is not None and float(values[4]) >= MIN_WEIGHT:
            obj.appearance = look  # the prompt says what the object looks like
        if not bool(values[2]):
            return
        # The prompt is the truth about where the object is: the filter starts again there.
        obj.motion[frame_index] = BoxState.start(np.asarray(values[1], float))
        self.rewind(obj, frame_index)

    def rewind(self, obj: ObjectMemory, frame_index: int) -> None:
        for index in [i for i in obj.motion if i > frame_index]:
            del obj.motion[index]


def _one_batch(entries: Sequence[tuple]) -> bool:
    """Whether the frame's objects are one whole batch, in its order."""
    decoded = entries[0][1]
    return (all(d is decoded and b == k for k, (_, d, b) in enumerate(entries))
            and len(entries) == decoded.pred_masks.size(0))


def make_policy(mode: str, steps: Sam2Steps | None,
                settings: MotionSettings | None = None) -> Sam2Policy:
    """The policy of a ``tracking_mode`` (``steps``: the session's ``Sam2Steps``)."""
    if mode == "sam2":
        return Sam2Policy()
    if mode == "motion":
        return MotionPolicy(steps, settings)
    raise ValueError(f"tracking_mode must be one of {', '.join(TRACKING_MODES)}, got {mode!r}")
