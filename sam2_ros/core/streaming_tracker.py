"""Streaming SAM 2: one frame at a time, forever, with prompts at any moment.

The engine drives Meta's SAM2Base step by step (``forward_image``,
``_prepare_backbone_features``, ``memory_attention``, ``_forward_sam_heads``,
``_use_mask_as_output``, ``_encode_new_memory``) and gives, for the same weights and the
same prompts, the official SAM2VideoPredictor's masks. What differs is the bookkeeping:

- frames arrive one by one; the image encoder runs once per frame for all objects, and
  memory attention, mask decoding and memory encoding run batched across objects whose
  memories have the same length;
- memory is bounded (see ``memory_bank``): prompted frames up to a cap, the recent frames
  SAM 2 attends to, and a ring of the last ``prompt_history`` frames' image features;
- a prompt may name any frame of that ring: it is applied there and the object is
  re-tracked forward to the newest frame, so its memory is what it would have been had
  the prompt come in time. Other objects are not touched.

A prompt on a frame an object was already tracked on refines it the way SAM 2's
interactive refinement does (previous mask logits fed back with the clicks; the frame stays
an ordinary memory frame unless ``add_all_frames_to_correct_as_cond``). A prompt on one of
the object's prompted frames adds to (or, with clear_previous, replaces) that frame's
prompts, as SAM 2 does for clicks before propagation.

All public methods are thread-safe. The image encoder runs outside the state lock, so
prompts are served while a frame is being encoded.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.core.errors import (
    NoFrameError,
    PromptError,
    StampError,
    TooManyObjectsError,
    UnknownObjectError,
)
from sam2_ros.core.frame_input import frame_to_tensor, validate_frame
from sam2_ros.core.masks import mask_stats
from sam2_ros.core.memory_bank import FrameOutput, ObjectMemory, assemble_memory
from sam2_ros.core.model_loading import VIDEO_FILL_HOLE_AREA, LoadedModel
from sam2_ros.core.prompts import (
    check_prompt,
    concat_point_inputs,
    mask_inputs,
    point_inputs,
)
from sam2_ros.core.tracking_results import (
    FrameResult,
    ObjectResult,
    PromptResult,
    StageTiming,
)


@dataclass
class _RingFrame:
    """Image features of one recent frame, kept so prompts can name it."""

    index: int
    stamp: int
    image_hw: tuple[int, int]
    backbone_fpn: list[torch.Tensor]


# An object's memory tokens, their positional encodings and its object-pointer token count.
_Memory = tuple[torch.Tensor, torch.Tensor, int]


@dataclass
class _Decoded:
    """Batched SAM head outputs for B objects on one frame."""

    pred_masks: torch.Tensor  # [B, 1, S/4, S/4] low-res logits
    high_res_masks: torch.Tensor  # [B, 1, S, S]
    ious: torch.Tensor  # [B]
    obj_ptr: torch.Tensor  # [B, C]
    object_score_logits: torch.Tensor  # [B, 1]


class StreamingTracker:
    """Frame-by-frame SAM 2 video object tracking with a bounded memory bank."""

    def __init__(
        self,
        loaded: LoadedModel,
        max_objects: int = 16,
        prompt_history: int = 8,
        max_cond_frames: int = 4,
        mask_threshold: float = 0.0,
        fill_hole_area: int = VIDEO_FILL_HOLE_AREA,
        add_all_frames_to_correct_as_cond: bool = False,
    ) -> None:
        if max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {max_objects}")
        if prompt_history < 1:
            raise ValueError(f"prompt_history must be >= 1, got {prompt_history}")
        if max_cond_frames < 2:
            raise ValueError(
                f"max_cond_frames must be >= 2 (SAM 2's minimum), got {max_cond_frames}"
            )
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        self.image_size = loaded.image_size
        self.max_objects = max_objects
        self.prompt_history = prompt_history
        self.max_cond_frames = max_cond_frames
        self.mask_threshold = mask_threshold
        self.fill_hole_area = fill_hole_area
        self.add_all_frames_to_correct_as_cond = add_all_frames_to_correct_as_cond
        self._lock = threading.RLock()
        self._objects: dict[int, ObjectMemory] = {}
        self._ring: deque[_RingFrame] = deque(maxlen=prompt_history)
        self._next_id = 1
        self._next_index = 0
        self._last_stamp: int | None = None
        self._vision_pos_enc: list[torch.Tensor] | None = None
        self._maskmem_pos_enc: torch.Tensor | None = None
        self._latest: dict[int, ObjectResult] = {}

    # ------------------------------------------------------------------ public API
    @property
    def object_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._objects)

    @property
    def latest_stamp(self) -> int | None:
        with self._lock:
            return self._ring[-1].stamp if self._ring else None

    def labels(self) -> dict[int, str]:
        with self._lock:
            return {i: o.label for i, o in self._objects.items()}

    def ring_stamps(self) -> list[int]:
        """Stamps of the frames a prompt may name, oldest first."""
        with self._lock:
            return [f.stamp for f in self._ring]

    def track(self, frame: np.ndarray, stamp: int | None = None) -> FrameResult:
        """Track every prompted object on a new frame (HxWx3 uint8 RGB)."""
        rgb = validate_frame(frame)
        with self._lock:
            stamp = self._check_new_stamp(stamp)
        timing = StageTiming()
        started = time.perf_counter()
        with self._compute():
            fpn = self._encode_image(rgb, timing)
        with self._lock, self._compute():
            # A reset while the encoder ran may have made this stamp acceptable again.
            stamp = self._check_new_stamp(stamp)
            index = self._next_index
            self._next_index += 1
            self._last_stamp = stamp
            self._ring.append(_RingFrame(index, stamp, rgb.shape[:2], fpn))
            tracked = [o for o in self._objects.values() if o.is_tracked]
            outputs = self._track_objects(self._ring[-1], tracked, timing)
            for obj, out in zip(tracked, outputs, strict=True):
                obj.non_cond[index] = out
            self._prune()
            results = self._results_on(self._ring[-1])
            self._latest = {r.object_id: r for r in results}
            timing.total = time.perf_counter() - started
            return FrameResult(index, stamp, rgb.shape[:2], results, timing)

    def add_prompt(
        self,
        object_id: int | None = None,
        points: object = None,
        labels: object = None,
        box: object = None,
        mask: object = None,
        stamp: int | None = None,
        clear_previous: bool = False,
        label: str = "",
    ) -> PromptResult:
        """Prompt a new (object_id None or 0) or an existing object on a ring frame.

        stamp None (or 0) is the newest frame. Raises a TrackerError subclass, with the
        state unchanged, for anything that cannot be applied.
        """
        timing = StageTiming()
        started = time.perf_counter()
        with self._lock, self._compute():
            ring_frame = self._ring_frame(stamp)
            prompt = check_prompt(ring_frame.image_hw, points, labels, box, mask)
            new_object = object_id is None or object_id == 0
            if new_object:
                if len(self._objects) >= self.max_objects:
                    raise TooManyObjectsError(
                        f"already tracking {len(self._objects)} objects (max_objects="
                        f"{self.max_objects}); remove one first"
                    )
                obj = ObjectMemory(self._next_id, label)
            else:
                obj = self._object(object_id)
            index = ring_frame.index
            previous = obj.output_at(index)
            is_cond_frame = index in obj.cond
            is_init = previous is None or is_cond_frame
            old_points = None
            if previous is not None and not clear_previous and not prompt.is_mask:
                old_points = previous.point_inputs
            if prompt.box is not None and old_points is not None:
                raise PromptError(
                    "a box must come before any click on its frame: set clear_previous "
                    "to replace this object's earlier prompts on that frame"
                )
            points = mask_in = None
            if prompt.is_mask:
                mask_in = mask_inputs(prompt.mask, self.image_size, self.device)
            else:
                new_points = point_inputs(prompt, ring_frame.image_hw, self.image_size, self.device)
                points = concat_point_inputs(old_points, new_points)
            out = self._prompt_output(ring_frame, obj, points, mask_in, previous, is_init, timing)
            # Everything is computed: commit.
            if new_object:
                self._objects[obj.object_id] = obj
                self._next_id += 1
            elif label:
                obj.label = label
            if is_init or self.add_all_frames_to_correct_as_cond:
                obj.set_cond(index, out, self.max_cond_frames)
            else:
                obj.non_cond[index] = out
            obj.last_prompt_frame = max(index, obj.last_prompt_frame or index)
            retracked = self._retrack_forward(obj, index, timing)
            self._prune()
            on_frame = self._object_result(obj, ring_frame, out)
            newest = self._ring[-1]
            self._latest[obj.object_id] = (
                on_frame if newest.index == index else self._object_result(obj, newest)
            )
            timing.total = time.perf_counter() - started
            return PromptResult(obj.object_id, ring_frame.stamp, index, on_frame, retracked, timing)

    def remove(self, object_ids: list[int]) -> list[int]:
        """Forget objects entirely; returns the remaining ids."""
        with self._lock:
            for object_id in object_ids:
                self._object(object_id)
            for object_id in object_ids:
                self._objects.pop(object_id, None)
                self._latest.pop(object_id, None)
            return sorted(self._objects)

    def reset(self, object_ids: list[int] | None = None) -> None:
        """None or []: forget everything (objects, memory, frames). Else clear those
        objects' memory and prompts; they keep id and label until prompted again."""
        with self._lock:
            if not object_ids:
                self._objects.clear()
                self._ring.clear()
                self._latest.clear()
                self._last_stamp = None
                return
            for object_id in object_ids:
                self._object(object_id)
            for object_id in object_ids:
                self._objects[object_id].clear()
                self._latest.pop(object_id, None)

    def latest_results(self) -> list[ObjectResult]:
        """The newest frame's result per object, prompts applied since included."""
        with self._lock:
            return [self._latest[i] for i in sorted(self._latest)]

    # ------------------------------------------------------------------ internals
    def _compute(self) -> contextlib.AbstractContextManager:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.loaded.autocast_dtype is not None:
            stack.enter_context(torch.autocast(self.device.type, dtype=self.loaded.autocast_dtype))
        return stack

    def _check_new_stamp(self, stamp: int | None) -> int:
        if stamp is None:
            stamp = 0 if self._last_stamp is None else self._last_stamp + 1
        stamp = int(stamp)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            raise StampError(
                f"frame stamp {stamp} is not after the previous frame's {self._last_stamp}; "
                "reset the tracker to restart a stream"
            )
        return stamp

    def _object(self, object_id: int | None) -> ObjectMemory:
        obj = self._objects.get(int(object_id)) if object_id is not None else None
        if obj is None:
            known = sorted(self._objects) or "none"
            raise UnknownObjectError(f"unknown object id {object_id} (known ids: {known})")
        return obj

    def _ring_frame(self, stamp: int | None) -> _RingFrame:
        if not self._ring:
            raise NoFrameError("no frame has been tracked yet: a prompt needs a frame")
        if stamp is None or stamp == 0:
            return self._ring[-1]
        for ring_frame in self._ring:
            if ring_frame.stamp == stamp:
                return ring_frame
        oldest, newest = self._ring[0].stamp, self._ring[-1].stamp
        if stamp < oldest:
            raise StampError(
                f"stamp {stamp} is older than the {len(self._ring)} frames kept for prompts "
                f"(oldest {oldest}); raise prompt_history to prompt further back"
            )
        if stamp > newest:
            raise StampError(f"stamp {stamp} is newer than the newest frame ({newest})")
        raise StampError(f"no kept frame has stamp {stamp} (kept: {oldest} .. {newest})")

    def _sync(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def _encode_image(self, rgb: np.ndarray, timing: StageTiming) -> list[torch.Tensor]:
        t0 = self._sync()
        image = frame_to_tensor(rgb, self.image_size, self.device)
        backbone_out = self.model.forward_image(image)
        if self._vision_pos_enc is None:
            self._vision_pos_enc = list(backbone_out["vision_pos_enc"])
        timing.encoder += self._sync() - t0
        return list(backbone_out["backbone_fpn"])

    def _features(self, ring_frame: _RingFrame, batch: int):
        """SAM 2's flattened features of a ring frame, expanded to a batch of objects."""
        expanded = {
            "backbone_fpn": [f.expand(batch, -1, -1, -1) for f in ring_frame.backbone_fpn],
            "vision_pos_enc": [p.expand(batch, -1, -1, -1) for p in self._vision_pos_enc],
        }
        _, vision_feats, vision_pos, feat_sizes = self.model._prepare_backbone_features(expanded)
        high_res = None
        if len(vision_feats) > 1:
            high_res = [
                x.permute(1, 2, 0).view(x.size(1), x.size(2), *s)
                for x, s in zip(vision_feats[:-1], feat_sizes[:-1], strict=True)
            ]
        return vision_feats, vision_pos, feat_sizes, high_res

    def _decode(
        self,
        ring_frame: _RingFrame,
        memories: list[_Memory] | None,
        timing: StageTiming,
        points: dict[str, torch.Tensor] | None = None,
        mask_in: torch.Tensor | None = None,
        prev_logits: torch.Tensor | None = None,
    ) -> _Decoded:
        """SAM 2's track step on one frame for B objects with memories of one length, or
        (memories None) for one object on its initial prompted frame."""
        model = self.model
        is_init = memories is None
        batch = 1 if is_init else len(memories)
        vision_feats, vision_pos, feat_sizes, high_res = self._features(ring_frame, batch)
        hidden = model.hidden_dim
        h, w = feat_sizes[-1]
        t0 = self._sync()
        if mask_in is not None and model.use_mask_input_as_output_without_sam:
            pix_feat = vision_feats[-1].permute(1, 2, 0).view(-1, hidden, h, w)
            outs = model._use_mask_as_output(pix_feat, high_res, mask_in)
        else:
            if is_init:
                pix_feat = model._prepare_memory_conditioned_features(
                    frame_idx=ring_frame.index,
                    is_init_cond_frame=True,
                    current_vision_feats=vision_feats[-1:],
                    current_vision_pos_embeds=vision_pos[-1:],
                    feat_sizes=feat_sizes[-1:],
                    output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
                    num_frames=None,
                )
            else:
                pix_feat = self._attend_memory(memories, vision_feats, vision_pos)
                pix_feat = pix_feat.permute(1, 2, 0).view(batch, hidden, h, w)
            t1 = self._sync()
            timing.memory_attention += t1 - t0
            t0 = t1
            outs = model._forward_sam_heads(
                backbone_features=pix_feat,
                point_inputs=points,
                mask_inputs=prev_logits if prev_logits is not None else mask_in,
                high_res_features=high_res,
                multimask_output=model._use_multimask(is_init, points),
            )
        _, _, ious, low_res, high_res_masks, obj_ptr, score_logits = outs
        timing.decoder += self._sync() - t0
        best_iou = ious.max(dim=-1).values if ious.size(-1) > 1 else ious[:, 0]
        return _Decoded(low_res, high_res_masks, best_iou.float(), obj_ptr, score_logits)

    def _memory(self, obj: ObjectMemory, frame_index: int) -> _Memory:
        return assemble_memory(self.model, obj, frame_index, self._maskmem_pos_enc, self.device)

    def _attend_memory(self, memories: list[_Memory], vision_feats, vision_pos) -> torch.Tensor:
        num_ptr = {m[2] for m in memories}
        assert len(num_ptr) == 1, "objects in one batch need the same memory layout"
        return self.model.memory_attention(
            curr=vision_feats[-1:],
            curr_pos=vision_pos[-1:],
            memory=torch.cat([m[0] for m in memories], dim=1),
            memory_pos=torch.cat([m[1] for m in memories], dim=1),
            num_obj_ptr_tokens=num_ptr.pop(),
        )

    def _encode_memory(
        self,
        ring_frame: _RingFrame,
        high_res_masks: torch.Tensor,
        score_logits: torch.Tensor,
        from_prompt: bool,
        timing: StageTiming,
    ) -> torch.Tensor:
        t0 = self._sync()
        vision_feats, _, feat_sizes, _ = self._features(ring_frame, high_res_masks.size(0))
        features, pos_enc = self.model._encode_new_memory(
            current_vision_feats=vision_feats,
            feat_sizes=feat_sizes,
            pred_masks_high_res=high_res_masks,
            object_score_logits=score_logits,
            is_mask_from_pts=from_prompt,
        )
        if self._maskmem_pos_enc is None:
            self._maskmem_pos_enc = pos_enc[-1][0:1].clone()
        timing.memory_encoder += self._sync() - t0
        return features.to(torch.bfloat16)

    def _fill_holes(self, logits: torch.Tensor) -> torch.Tensor:
        """SAM 2's post-processing: background specks of area <= fill_hole_area become
        foreground (score 0.1). Done with OpenCV so it also runs without sam2's CUDA op."""
        if self.fill_hole_area <= 0:
            return logits
        background = (logits <= 0).cpu().numpy().astype(np.uint8)
        filled = logits.clone()
        for b in range(background.shape[0]):
            count, labels, stats, _ = cv2.connectedComponentsWithStats(
                background[b, 0], connectivity=8
            )
            if count <= 1:
                continue
            small = stats[:, cv2.CC_STAT_AREA] <= self.fill_hole_area
            small[0] = False  # label 0 is the foreground here
            if small.any():
                hole = torch.from_numpy(small[labels]).to(logits.device)
                filled[b, 0] = torch.where(hole, torch.full_like(filled[b, 0], 0.1), filled[b, 0])
        return filled

    def _split(
        self,
        decoded: _Decoded,
        pred_masks: torch.Tensor,
        maskmem: torch.Tensor,
    ) -> list[FrameOutput]:
        ious = decoded.ious.tolist()
        return [
            FrameOutput(
                obj_ptr=decoded.obj_ptr[i : i + 1].clone(),
                object_score_logits=decoded.object_score_logits[i : i + 1].float().clone(),
                pred_masks=pred_masks[i : i + 1].clone(),
                maskmem_features=maskmem[i : i + 1].clone(),
                iou=float(ious[i]),
            )
            for i in range(len(ious))
        ]

    def _track_objects(
        self, ring_frame: _RingFrame, objects: list[ObjectMemory], timing: StageTiming
    ) -> list[FrameOutput]:
        """Track objects on a frame, batching those whose memories have the same length."""
        memories = [self._memory(obj, ring_frame.index) for obj in objects]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (tokens, _, num_ptr) in enumerate(memories):
            groups.setdefault((tokens.shape[0], num_ptr), []).append(i)
        outputs: list[FrameOutput | None] = [None] * len(objects)
        for members in groups.values():
            decoded = self._decode(ring_frame, [memories[i] for i in members], timing)
            maskmem = self._encode_memory(
                ring_frame, decoded.high_res_masks, decoded.object_score_logits, False, timing
            )
            pred_masks = self._fill_holes(decoded.pred_masks.float())
            for i, out in zip(members, self._split(decoded, pred_masks, maskmem), strict=True):
                outputs[i] = out
        return outputs  # type: ignore[return-value]

    def _prompt_output(
        self,
        ring_frame: _RingFrame,
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
        memories = None if is_init else [self._memory(obj, ring_frame.index)]
        decoded = self._decode(ring_frame, memories, timing, points, mask_in, prev_logits)
        pred_masks = self._fill_holes(decoded.pred_masks.float())
        # SAM 2 encodes a prompted frame's memory from the (hole-filled) low-res mask
        # brought back to the model's size, binarised as the user saw it.
        high_res = F.interpolate(
            pred_masks,
            size=(self.image_size, self.image_size),
            mode="bilinear",
            align_corners=False,
        )
        maskmem = self._encode_memory(
            ring_frame, high_res, decoded.object_score_logits, True, timing
        )
        out = self._split(decoded, pred_masks, maskmem)[0]
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
        if not self._ring:
            return
        model = self.model
        oldest = self._ring[0].index
        keep_ptr_from = oldest - (model.max_obj_ptrs_in_encoder - 1)
        keep_mem_from = oldest - (model.num_maskmem - 1) * model.memory_temporal_stride_for_eval - 1
        for obj in self._objects.values():
            obj.prune(keep_ptr_from, keep_mem_from, oldest)

    def _results_on(self, ring_frame: _RingFrame) -> list[ObjectResult]:
        return [self._object_result(o, ring_frame) for _, o in sorted(self._objects.items())]

    def _object_result(
        self, obj: ObjectMemory, ring_frame: _RingFrame, out: FrameOutput | None = None
    ) -> ObjectResult:
        height, width = ring_frame.image_hw
        out = out if out is not None else obj.output_at(ring_frame.index)
        since = 0
        if obj.last_prompt_frame is not None:
            since = max(0, ring_frame.index - obj.last_prompt_frame)
        if out is None or out.pred_masks is None:
            empty = np.zeros((height, width), dtype=bool)
            return ObjectResult(
                obj.object_id,
                obj.label,
                False,
                0.0,
                0.0,
                empty,
                np.full((height, width), -1024.0, dtype=np.float32),
                (0, 0, 0, 0),
                (0.0, 0.0),
                0,
                since,
                tracked=obj.is_tracked,
            )
        logits = (
            F.interpolate(
                out.pred_masks.to(self.device),
                size=(height, width),
                mode="bilinear",
                align_corners=False,
            )[0, 0]
            .float()
            .cpu()
            .numpy()
        )
        score_logit = float(out.object_score_logits.reshape(-1)[0])
        mask = logits > self.mask_threshold
        stats = mask_stats(mask)
        return ObjectResult(
            object_id=obj.object_id,
            label=obj.label,
            visible=score_logit > 0,
            presence=float(1.0 / (1.0 + np.exp(-score_logit))),
            score=out.iou,
            mask=mask,
            logits=logits,
            bbox=stats.bbox,
            centroid=stats.centroid,
            area=stats.area,
            frames_since_prompt=since,
            tracked=obj.is_tracked,
        )
