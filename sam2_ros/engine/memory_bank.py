"""Per-object memory of the streaming tracker: what SAM 2 can attend to, and nothing else.

For each object the bank keeps its prompted ("conditioning") frames, at most
``max_prompt_frames`` (this project's bound; SAM 2.1 attends to all of them), and ordinary
frames only while SAM 2 can still use them for the newest frame or for a prompt on a frame
of the frame ring. Everything older is released, so resident memory stays flat on an
endless stream (docs/architecture.md, "Memory bank").

What an object attends to is selected here, with the same selection and order as SAM 2,
instead of by ``SAM2Base._prepare_memory_conditioned_features``: that method reads one
shared output dict for a whole batch, which forces every object in a batch to have been
prompted on the same frames. Selecting per object lets objects prompted at different
times share one batched memory-attention call (``memory_attention``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from sam2.modeling.sam2_utils import get_1d_sine_pe, select_closest_cond_frames

from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.steps.model_facts import ModelFacts

#: The model's projection of the object pointers' temporal encodings
#: (``Sam2Steps.project_pointer_pos``): the one model call a memory needs.
PointerPosProjection = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class FrameOutput:
    """What the tracker keeps of one object on one frame (the compact SAM 2 output)."""

    obj_ptr: torch.Tensor  # [1, C]
    object_score_logits: torch.Tensor  # [1, 1]
    pred_masks: torch.Tensor | None  # [1, 1, S/4, S/4] mask logits, holes filled
    maskmem_features: torch.Tensor | None  # [1, mem_dim, S/16, S/16], bfloat16 like SAM 2
    iou: torch.Tensor  # [1] SAM 2's predicted IoU of the chosen mask (on the device)
    point_inputs: dict[str, torch.Tensor] | None = None  # clicks given on this frame
    prompted: bool = False  # the output came from a prompt on this frame
    refined: bool = False  # clicks on top of the tracked mask: depends on the memory
    admitted: bool = True  # may be attended to by a selective memory (tracking_mode motion)
    # Hidden on this frame: the tracking policy's predicted box (x0, y0, x1, y1, low-res
    # grid) when it has one, and whether that box lies behind other objects of the frame.
    predicted_box: tuple[float, float, float, float] | None = None
    covered: bool = False
    area: float | None = None  # mask pixels (low-res grid), when the policy measured it
    score_logit: float | None = None  # the object score logit, once the host read it


@dataclass
class ObjectMemory:
    """One tracked object: its identity, prompts and memory."""

    object_id: int
    label: str = ""
    cond: dict[int, FrameOutput] = field(default_factory=dict)
    non_cond: dict[int, FrameOutput] = field(default_factory=dict)
    last_prompt_frame: int | None = None
    # Per-frame state of the tracking policy (the motion filter's belief after each frame).
    motion: dict[int, object] = field(default_factory=dict)
    # The tracking policy's record of what the object looks like (from its newest prompt).
    appearance: torch.Tensor | None = None

    @property
    def is_tracked(self) -> bool:
        """SAM 2 can only track an object that has at least one prompted frame."""
        return bool(self.cond)

    def output_at(self, frame_index: int) -> FrameOutput | None:
        out = self.cond.get(frame_index)
        return out if out is not None else self.non_cond.get(frame_index)

    def set_cond(self, frame_index: int, out: FrameOutput, max_prompt_frames: int) -> None:
        """Store a prompted frame; past the cap, the oldest other prompted frame becomes an
        ordinary frame (never this one: it holds the prompt just given)."""
        self.cond[frame_index] = out
        self.non_cond.pop(frame_index, None)
        while max_prompt_frames > 0 and len(self.cond) > max_prompt_frames:
            oldest = min(i for i in self.cond if i != frame_index)
            self.non_cond.setdefault(oldest, self.cond.pop(oldest))

    def make_room(self, frame_index: int) -> None:
        """Frame indices from ``frame_index`` on move up by one: a frame the tracker had
        dropped was placed there (``FrameRing.insert``). Insertion order is kept, because
        SAM 2 attends to prompted frames in the order they were given."""
        def moved(index: int) -> int:
            return index + 1 if index >= frame_index else index

        self.cond = {moved(i): o for i, o in self.cond.items()}
        self.non_cond = {moved(i): o for i, o in self.non_cond.items()}
        if self.last_prompt_frame is not None:
            self.last_prompt_frame = moved(self.last_prompt_frame)

    def clear(self) -> None:
        self.cond.clear()
        self.non_cond.clear()
        self.motion.clear()
        self.appearance = None
        self.last_prompt_frame = None

    def prune(self, keep_ptr_from: int, keep_mem_from: int, keep_mask_from: int,
              keep_admitted: int = 0, keep_admitted_memory: int | None = None) -> None:
        """Release what no future frame and no prompt on a ring frame can attend to.

        A selective memory attends to the newest admitted frames however old: of the
        admitted frames before the ring (``keep_mask_from``), the newest ``keep_admitted``
        keep their object pointer and the newest ``keep_admitted_memory`` their memory
        features (None: as many as ``keep_admitted``), what a prompt on the oldest ring frame
        attends to (bounded)."""
        if keep_admitted_memory is None:
            keep_admitted_memory = keep_admitted
        before = sorted(i for i, o in self.non_cond.items() if o.admitted and i < keep_mask_from)
        kept = set(before[-keep_admitted:]) if keep_admitted > 0 else set()
        kept_memory = set(before[-keep_admitted_memory:]) if keep_admitted_memory > 0 else set()
        for index in [i for i in self.non_cond if i < keep_ptr_from and i not in kept]:
            del self.non_cond[index]
        for index, out in self.non_cond.items():
            if index < keep_mem_from and index not in kept_memory:
                out.maskmem_features = None
            if index < keep_mask_from:
                out.pred_masks = None
                out.point_inputs = None
        for index, out in self.cond.items():
            if index < keep_mask_from:
                out.point_inputs = None
        older = [i for i in self.motion if i < keep_mask_from]
        for index in older[:-1] if older else []:  # the newest before the ring stays
            del self.motion[index]


@dataclass
class Memory:
    """What one object attends to on one frame, in SAM 2's order.

    ``spatial`` holds the memory frames with the index of the temporal encoding each gets
    (``maskmem_tpos_enc[slot]``); ``ptrs``/``ptr_pos`` the object-pointer tokens and their
    encodings ([P, 1, mem_dim]) or None.
    """

    spatial: list[tuple[FrameOutput, int]]
    ptrs: torch.Tensor | None
    ptr_pos: torch.Tensor | None

    @property
    def num_ptr_tokens(self) -> int:
        return 0 if self.ptrs is None else self.ptrs.shape[0]

    @property
    def layout(self) -> tuple[int, int]:
        """Objects whose memories share a layout can attend in one batched call."""
        return len(self.spatial), self.num_ptr_tokens


def assemble_memory(facts: ModelFacts, obj: ObjectMemory, frame_index: int,
                    device: torch.device, selective: bool = False,
                    project: PointerPosProjection | None = None) -> Memory:
    """The memory frames (with their temporal slots) and object pointers one object attends
    to on a frame: same frames, order and encodings as SAM2Base._prepare_memory_conditioned_
    features for forward tracking in eval mode with an unbounded video length.

    ``selective`` (tracking_mode motion): instead of the frames at fixed distances, the
    newest admitted frames before this one, the nearest in the nearest temporal slot, and
    object pointers of admitted frames only (at their true distance, capped at SAM 2's
    range), so a frame where the object was hidden or taken by another is never attended.
    ``project``: needed where the pointers get a temporal encoding (``facts``).
    """
    num_maskmem = facts.num_maskmem
    selected, unselected = select_closest_cond_frames(
        frame_index, obj.cond, facts.max_cond_frames_in_attn
    )
    if selective:
        return _assemble_selective(facts, obj, frame_index, device, selected, unselected,
                                   project)
    t_pos_and_prevs: list[tuple[int, FrameOutput | None]] = [(0, o) for o in selected.values()]
    stride = facts.memory_temporal_stride_for_eval
    for t_pos in range(1, num_maskmem):
        t_rel = num_maskmem - t_pos
        if t_rel == 1:
            prev = frame_index - 1
        else:
            prev = ((frame_index - 2) // stride) * stride - (t_rel - 2) * stride
        out = obj.non_cond.get(prev)
        t_pos_and_prevs.append((t_pos, out if out is not None else unselected.get(prev)))
    spatial = []
    for t_pos, prev in t_pos_and_prevs:
        if prev is None:
            continue
        if prev.maskmem_features is None:
            raise RuntimeError(f"memory of frame needed at t_pos {t_pos} was released")
        spatial.append((prev, num_maskmem - t_pos - 1))

    ptrs = ptr_pos = None
    if facts.use_obj_ptrs_in_encoder:
        max_ptrs = facts.max_obj_ptrs_in_encoder
        ptr_cond = selected
        if facts.only_obj_ptrs_in_the_past_for_eval:
            ptr_cond = {t: o for t, o in selected.items() if t <= frame_index}
        signed = facts.use_signed_tpos_enc_to_obj_ptrs
        pos_and_ptrs = [
            ((frame_index - t) if signed else abs(frame_index - t), o.obj_ptr)
            for t, o in ptr_cond.items()
        ]
        for t_diff in range(1, max_ptrs):
            t = frame_index - t_diff
            if t < 0:
                break
            out = obj.non_cond.get(t, unselected.get(t))
            if out is not None:
                pos_and_ptrs.append((t_diff, out.obj_ptr))
        ptrs, ptr_pos = _pointer_tokens(facts, pos_and_ptrs, device, project)
    return Memory(spatial, ptrs, ptr_pos)


def _assemble_selective(facts: ModelFacts, obj: ObjectMemory, frame_index: int,
                        device: torch.device, selected: dict, unselected: dict,
                        project: PointerPosProjection | None) -> Memory:
    """``assemble_memory`` from the newest admitted frames (see there)."""
    num_maskmem = facts.num_maskmem
    spatial = [(o, num_maskmem - 1) for o in selected.values()]
    pool = {**unselected, **obj.non_cond}
    admitted = sorted((i for i, o in pool.items()
                       if i < frame_index and o.admitted and o.maskmem_features is not None),
                      reverse=True)
    for rank, index in enumerate(admitted[: num_maskmem - 1]):
        spatial.append((pool[index], rank))  # slot 0: the nearest, as t_rel 1 in SAM 2
    ptrs = ptr_pos = None
    if facts.use_obj_ptrs_in_encoder:
        max_ptrs = facts.max_obj_ptrs_in_encoder
        signed = facts.use_signed_tpos_enc_to_obj_ptrs
        ptr_cond = selected
        if facts.only_obj_ptrs_in_the_past_for_eval:
            ptr_cond = {t: o for t, o in selected.items() if t <= frame_index}
        pos_and_ptrs = [
            ((frame_index - t) if signed else abs(frame_index - t), o.obj_ptr)
            for t, o in ptr_cond.items()
        ]
        recent = [i for i, o in sorted(pool.items(), reverse=True)
                  if i < frame_index and o.admitted][: max_ptrs - 1]
        pos_and_ptrs += [(min(frame_index - i, max_ptrs - 1), pool[i].obj_ptr) for i in recent]
        ptrs, ptr_pos = _pointer_tokens(facts, pos_and_ptrs, device, project)
    return Memory(spatial, ptrs, ptr_pos)


def _pointer_tokens(facts: ModelFacts, pos_and_ptrs: list, device: torch.device,
                    project: PointerPosProjection | None):
    """Object-pointer tokens and their temporal encodings, as SAM 2 builds them."""
    ptrs = ptr_pos = None
    if facts.use_obj_ptrs_in_encoder:
        max_ptrs = facts.max_obj_ptrs_in_encoder
        if pos_and_ptrs:
            pos_list, ptrs_list = zip(*pos_and_ptrs, strict=True)
            ptrs = torch.stack(ptrs_list, dim=0)
            hidden, mem_dim = facts.hidden_dim, facts.mem_dim
            if facts.add_tpos_enc_to_obj_ptrs:
                if project is None:
                    raise ValueError("the model encodes pointer distances: pass ``project``")
                tpos_dim = hidden if facts.proj_tpos_enc_in_obj_ptrs else mem_dim
                # Non-blocking: a blocking copy to a GPU waits for its queue, per object
                # and frame (the positions are a few small integers).
                ptr_pos = host_sync.upload(torch.tensor(pos_list), device)
                ptr_pos = get_1d_sine_pe(ptr_pos / (max_ptrs - 1), dim=tpos_dim)
                ptr_pos = project(ptr_pos).unsqueeze(1).expand(-1, 1, mem_dim)
            else:
                ptr_pos = ptrs.new_zeros(len(pos_list), 1, mem_dim)
            if mem_dim < hidden:
                ptrs = ptrs.reshape(-1, 1, hidden // mem_dim, mem_dim)
                ptrs = ptrs.permute(0, 2, 1, 3).flatten(0, 1)
                ptr_pos = ptr_pos.repeat_interleave(hidden // mem_dim, dim=0)
    return ptrs, ptr_pos
