"""SAM 2's per-frame steps, called on Meta's SAM2Base: encode, attend, decode, remember.

Each method is one of SAM2Base's own steps (``forward_image``,
``_prepare_backbone_features``, ``memory_attention``, ``_forward_sam_heads`` /
``_use_mask_as_output``, ``_encode_new_memory``) applied to a batch of objects on one
frame, with the stage time added to a ``StageTiming``. Nothing here keeps tracking state;
what never changes for a model and image size (position encodings, RoPE tables) lives in
the model's ``ModelCaches``, shared by every session of that model and safe across threads.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sam2_ros.engine.frame_ring import RingFrame
from sam2_ros.engine.memory_bank import Memory, ObjectMemory, assemble_memory
from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.results import StageTiming
from sam2_ros.engine.steps.frame_upload import FrameUpload
from sam2_ros.engine.steps.memory_attention import MemoryAttentionRunner


@dataclass
class Decoded:
    """Batched SAM head outputs for B objects on one frame."""

    pred_masks: torch.Tensor  # [B, 1, S/4, S/4] low-res logits
    high_res_masks: torch.Tensor  # [B, 1, S, S]
    ious: torch.Tensor  # [B]
    obj_ptr: torch.Tensor  # [B, C]
    object_score_logits: torch.Tensor  # [B, 1]
    # Every multimask candidate (``decode(candidates=True)``), for a policy to choose from:
    multi_low_res: torch.Tensor | None = None  # [B, K, S/4, S/4] logits
    multi_ious: torch.Tensor | None = None  # [B, K] predicted IoUs
    tokens: torch.Tensor | None = None  # [B, K, C] the decoder's output tokens
    # With the candidates: the frame's features without memory ([1, C, H/16, W/16], made
    # when called) and SAM 2's high-res skip features, so a policy can run the heads again
    # for one object with a box prompt, as on a first prompted frame (finding it again);
    # and the image encoder's finest level [1, C, S/4, S/4] (the masks' grid), for looks.
    plain_feat: Callable[[], torch.Tensor] | None = None
    high_res_feats: list[torch.Tensor] | None = None
    fine_feat: torch.Tensor | None = None


@dataclass
class TrackPart:
    """One session's objects to track on its newest frame (``Sam2Steps.decode_sessions``)."""

    ring_frame: RingFrame
    memories: list[Memory]
    candidates: bool = False  # the session's tracking policy chooses among candidates


def _rows_of(feats: tuple, rows: slice) -> tuple:
    """``features_of``'s output for a slice of its objects (views)."""
    vision_feats, vision_pos, feat_sizes, high_res = feats
    return ([x[:, rows] for x in vision_feats], [x[:, rows] for x in vision_pos], feat_sizes,
            None if high_res is None else [x[rows] for x in high_res])


class ModelCaches:
    """What depends only on one loaded model and its image size, shared by its sessions.

    The position encodings are set once (by whichever session encodes first; every
    session would compute the same). The mask decoder's output tokens are caught by one
    hook installed for good, into a per-thread sink: a hook added and removed per call
    would catch another session's decoder call running on another thread."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.vision_pos_enc: list[torch.Tensor] | None = None
        self.maskmem_pos_enc: torch.Tensor | None = None
        model = loaded.model
        self.attention = MemoryAttentionRunner(model.memory_attention, model.maskmem_tpos_enc,
                                               loaded.device)
        self._sinks = threading.local()
        loaded.model.sam_mask_decoder.register_forward_hook(self._on_decoder)

    def _on_decoder(self, _module, _inputs, outputs) -> None:
        sink = getattr(self._sinks, "sink", None)
        if sink is not None:
            sink.append(outputs[2])

    @contextlib.contextmanager
    def decoder_tokens(self) -> Iterator[list[torch.Tensor]]:
        """The output tokens of the mask decoder calls this thread makes inside."""
        sink: list[torch.Tensor] = []
        self._sinks.sink = sink
        try:
            yield sink
        finally:
            self._sinks.sink = None


_CACHES_LOCK = threading.Lock()


def eager_forward_image(model: torch.nn.Module, image: torch.Tensor) -> dict:
    """SAM2Base.forward_image with the image encoder's own (not compiled) forward: on a
    thread other than the one the CUDA graphs were recorded on (``hardware.device_rules``)."""
    encoder = model.image_encoder
    out = type(encoder).forward(encoder, image)
    if model.use_high_res_features_in_sam:
        out["backbone_fpn"][0] = model.sam_mask_decoder.conv_s0(out["backbone_fpn"][0])
        out["backbone_fpn"][1] = model.sam_mask_decoder.conv_s1(out["backbone_fpn"][1])
    return out


def compute_mode(loaded: LoadedModel) -> contextlib.AbstractContextManager:
    """Inference mode and the model's autocast, around every call of the model."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if loaded.autocast_dtype is not None:
        stack.enter_context(torch.autocast(loaded.device.type, dtype=loaded.autocast_dtype))
    return stack


def model_caches(loaded: LoadedModel) -> ModelCaches:
    """The loaded model's shared caches (made once, whichever thread asks first)."""
    with _CACHES_LOCK:
        if loaded.caches is None:
            loaded.caches = ModelCaches(loaded)
        return loaded.caches


class Sam2Steps:
    """The SAM 2 calls of one frame, for a batch of objects at a time."""

    def __init__(self, loaded: LoadedModel, profile_stages: bool = False,
                 preprocessing: str = "auto") -> None:
        self.model = loaded.model
        self.facts = loaded.facts
        self.profile_stages = profile_stages
        self.device = loaded.device
        self.cuda_graphs = loaded.cuda_graphs
        self._graph_thread: int | None = None  # the thread the CUDA graphs belong to
        self.image_size = loaded.image_size
        self.frames = FrameUpload(loaded.image_size, loaded.device, preprocessing)
        self.caches = model_caches(loaded)
        self.attention = self.caches.attention

    def sync(self, timing: StageTiming) -> float:
        """Wall time; when profiling stages, after the device finished its queued work (a
        host wait, counted in ``timing.transfer``). Without profiling nothing waits: on a
        GPU each wait stalls the queue several times a frame."""
        if self.profile_stages:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            timing.transfer.syncs += 1
        return time.perf_counter()

    def encode_image(self, rgb: np.ndarray, timing: StageTiming) -> list[torch.Tensor]:
        """The image encoder's feature pyramid of one camera frame (run once for all objects)."""
        t0 = self.sync(timing)
        image = self.frames(rgb)
        backbone_out = self.forward_image(image)
        self.note_vision_pos_enc(backbone_out)
        fpn = list(backbone_out["backbone_fpn"])
        if self.cuda_graphs:  # the graph's next call overwrites its outputs
            fpn = [f.clone() for f in fpn]
        timing.encoder += self.sync(timing) - t0
        return fpn

    def forward_image(self, image: torch.Tensor) -> dict:
        """The encoder; with CUDA graphs, the compiled one only on the first thread that
        encodes (the camera's), eager elsewhere (graphs are recorded per thread)."""
        if not self.cuda_graphs:
            return self.model.forward_image(image)
        thread = threading.get_ident()
        if self._graph_thread is None:
            self._graph_thread = thread
        if thread != self._graph_thread:
            return eager_forward_image(self.model, image)
        return self.model.forward_image(image)

    def note_vision_pos_enc(self, backbone_out: dict) -> None:
        """Keep the image encoder's position encodings (one image's) the first time."""
        if self.caches.vision_pos_enc is None:
            # cloned: CUDA graphs overwrite their outputs on the next call
            self.caches.vision_pos_enc = [p[:1].clone() for p in backbone_out["vision_pos_enc"]]

    def features(self, ring_frame: RingFrame, batch: int):
        """SAM 2's flattened features of a ring frame, expanded to a batch of objects."""
        return self.features_of([(ring_frame, batch)])

    def features_of(self, parts: Sequence[tuple[RingFrame, int]]):
        """SAM 2's flattened features of ring frames (several sessions' newest), each
        expanded to its number of objects, in one batch in the parts' order."""
        total = sum(n for _, n in parts)
        if len(parts) == 1:
            fpn = [f.expand(total, -1, -1, -1) for f in parts[0][0].backbone_fpn]
        else:
            fpn = [torch.cat([frame.backbone_fpn[level].expand(n, -1, -1, -1)
                              for frame, n in parts])
                   for level in range(len(parts[0][0].backbone_fpn))]
        expanded = {
            "backbone_fpn": fpn,
            "vision_pos_enc": [p.expand(total, -1, -1, -1) for p in self.caches.vision_pos_enc],
        }
        _, vision_feats, vision_pos, feat_sizes = self.model._prepare_backbone_features(expanded)
        high_res = None
        if len(vision_feats) > 1:
            high_res = [
                x.permute(1, 2, 0).view(x.size(1), x.size(2), *s)
                for x, s in zip(vision_feats[:-1], feat_sizes[:-1], strict=True)
            ]
        return vision_feats, vision_pos, feat_sizes, high_res

    def memory(self, obj: ObjectMemory, frame_index: int, selective: bool = False) -> Memory:
        """The memory tokens SAM 2 would attend to for this object on this frame (the newest
        admitted frames instead of fixed distances when ``selective``)."""
        return assemble_memory(self.facts, obj, frame_index, self.device, selective,
                               self.project_pointer_pos)

    def decode(
        self,
        ring_frame: RingFrame,
        memories: list[Memory] | None,
        timing: StageTiming,
        points: dict[str, torch.Tensor] | None = None,
        mask_in: torch.Tensor | None = None,
        prev_logits: torch.Tensor | None = None,
        candidates: bool = False,
    ) -> Decoded:
        """SAM 2's step on one frame for B objects with prompts or memories (memory
        attention batched per memory layout, the heads once for all), or (memories None)
        for one object on its initial prompted frame.

        ``candidates``: also return every multimask candidate with its predicted IoU and
        the decoder's output token, so a tracking policy can choose another candidate than
        SAM 2's best predicted IoU and build the object pointer from that candidate."""
        is_init = memories is None
        batch = 1 if is_init else len(memories)
        feats = self.features(ring_frame, batch)
        if mask_in is not None and self.facts.use_mask_input_as_output_without_sam:
            t0 = self.sync(timing)
            vision_feats, _, feat_sizes, high_res = feats
            h, w = feat_sizes[-1]
            pix_feat = vision_feats[-1].permute(1, 2, 0).view(-1, self.facts.hidden_dim, h, w)
            outs = self.model._use_mask_as_output(pix_feat, high_res, mask_in)
            timing.decoder += self.sync(timing) - t0
            return self._split(outs, [], feats, [(ring_frame, batch, False)])[0]
        if is_init:
            def condition() -> torch.Tensor:
                return self._plain_features(ring_frame.index, feats[0][-1:], feats[1][-1:],
                                            feats[2])
        else:
            def condition() -> torch.Tensor:
                return self._conditioned_features(memories, feats)
        mask_inputs = prev_logits if prev_logits is not None else mask_in
        multimask = self.model._use_multimask(is_init, points)
        outs, tokens = self._heads(condition, feats, points, mask_inputs, multimask, candidates,
                                   timing)
        return self._split(outs, tokens, feats, [(ring_frame, batch, candidates)])[0]

    def decode_sessions(self, parts: Sequence[TrackPart], timing: StageTiming) -> list[Decoded]:
        """SAM 2's track step for the objects of one or several sessions, each part on
        its own frame, in one batch: memory attention grouped by memory layout across all
        the parts, the heads once. Per part its Decoded, as tracking it alone gives it up
        to the batched kernels (bitwise for one part)."""
        feats = self.features_of([(p.ring_frame, len(p.memories)) for p in parts])
        memories = [m for p in parts for m in p.memories]
        multimask = self.model._use_multimask(False, None)
        candidates = any(p.candidates for p in parts)
        outs, tokens = self._heads(lambda: self._conditioned_features(memories, feats), feats,
                                   None, None, multimask, candidates, timing)
        return self._split(outs, tokens, feats,
                           [(p.ring_frame, len(p.memories), p.candidates) for p in parts])

    def _heads(self, condition: Callable[[], torch.Tensor], feats: tuple, points: dict | None,
               mask_inputs: torch.Tensor | None, multimask: bool, candidates: bool,
               timing: StageTiming) -> tuple[tuple, list[torch.Tensor]]:
        """The conditioned features (``condition``, timed as memory attention), then
        SAM2Base's prompt encoder and mask decoder on them: its outputs and
        (``candidates``) the decoder's output tokens, which it drops."""
        t0 = self.sync(timing)
        pix_feat = condition()
        t1 = self.sync(timing)
        timing.memory_attention += t1 - t0
        tokens = self.caches.decoder_tokens() if candidates else contextlib.nullcontext([])
        with tokens as captured:
            outs = self.model._forward_sam_heads(
                backbone_features=pix_feat,
                point_inputs=points,
                mask_inputs=mask_inputs,
                high_res_features=feats[3],
                multimask_output=multimask,
            )
        timing.decoder += self.sync(timing) - t1
        return outs, captured

    def _split(self, outs: tuple, captured: list[torch.Tensor], feats: tuple,
               parts: list[tuple[RingFrame, int, bool]]) -> list[Decoded]:
        """The heads' outputs as one Decoded per part (ring frame, objects, candidates)."""
        multi_low, _, ious, low_res, high_res_masks, obj_ptr, score_logits = outs
        best_iou = (ious.max(dim=-1).values if ious.size(-1) > 1 else ious[:, 0]).float()
        with_tokens = bool(captured) and captured[0].size(1) == multi_low.size(1)
        decoded, start = [], 0
        for ring_frame, n, candidates in parts:
            rows = slice(start, start + n)
            start += n
            part = Decoded(low_res[rows], high_res_masks[rows], best_iou[rows], obj_ptr[rows],
                           score_logits[rows])
            if candidates and with_tokens:
                self._add_candidates(part, ring_frame, _rows_of(feats, rows), multi_low[rows],
                                     ious[rows], captured[0][rows])
            decoded.append(part)
        return decoded

    def _conditioned_features(self, memories: list[Memory], feats: tuple) -> torch.Tensor:
        """The frames' features conditioned on each object's memory [B, C, H/16, W/16]."""
        vision_feats, vision_pos, feat_sizes, _ = feats
        h, w = feat_sizes[-1]
        spatial_pos = self.caches.maskmem_pos_enc.flatten(2).permute(2, 0, 1)
        pix_feat = self.attention(memories, vision_feats[-1], vision_pos[-1], spatial_pos)
        return pix_feat.permute(1, 2, 0).view(len(memories), self.facts.hidden_dim, h, w)

    def _plain_features(self, frame_index: int, feats: list[torch.Tensor],
                        pos: list[torch.Tensor], feat_sizes: list) -> torch.Tensor:
        """SAM2Base's features of a frame without memory (the no-memory embedding added)."""
        return self.model._prepare_memory_conditioned_features(
            frame_idx=frame_index,
            is_init_cond_frame=True,
            current_vision_feats=feats,
            current_vision_pos_embeds=pos,
            feat_sizes=feat_sizes[-1:],
            output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
            num_frames=None,
        )

    def _add_candidates(self, decoded: Decoded, ring_frame: RingFrame, feats: tuple,
                        multi_low: torch.Tensor, ious: torch.Tensor,
                        tokens: torch.Tensor) -> None:
        """Every multimask candidate into ``decoded``, with what running the heads again
        for one object needs (its features without memory, made when called)."""
        vision_feats, vision_pos, feat_sizes, high_res = feats
        decoded.multi_low_res, decoded.multi_ious, decoded.tokens = multi_low, ious, tokens
        decoded.high_res_feats = high_res
        decoded.fine_feat = ring_frame.backbone_fpn[0]
        decoded.plain_feat = lambda: self._plain_features(
            ring_frame.index, [vision_feats[-1][:, :1]], [vision_pos[-1][:, :1]], feat_sizes)

    def box_prompt_heads(self, features: torch.Tensor, points: dict[str, torch.Tensor],
                         high_res: list[torch.Tensor] | None) -> tuple:
        """SAM2Base's heads for one object with a box prompt and no mask, one mask out
        (``identity.reacquire``): ``_forward_sam_heads``'s outputs."""
        return self.model._forward_sam_heads(
            backbone_features=features,
            point_inputs=points,
            mask_inputs=None,
            high_res_features=high_res,
            multimask_output=False,
        )

    def object_pointer(self, token: torch.Tensor, score_logits: torch.Tensor) -> torch.Tensor:
        """The object pointer SAM 2 builds from a decoder output token (as
        ``_forward_sam_heads`` does), for a candidate a tracking policy chose."""
        model, facts = self.model, self.facts
        ptr = model.obj_ptr_proj(token)
        if facts.pred_obj_scores:
            appearing = (score_logits.sigmoid() if facts.soft_no_obj_ptr
                         else (score_logits > 0).float())
            if facts.fixed_no_obj_ptr:
                ptr = appearing * ptr
            ptr = ptr + (1 - appearing) * model.no_obj_ptr
        return ptr

    def no_object_pointer(self) -> torch.Tensor:
        """SAM 2's pointer of a hidden object [C] (only with ``facts.pred_obj_scores``)."""
        return self.model.no_obj_ptr[0]

    def project_pointer_pos(self, pos_enc: torch.Tensor) -> torch.Tensor:
        """SAM2Base's projection of object-pointer temporal encodings (memory_bank)."""
        return self.model.obj_ptr_tpos_proj(pos_enc)

    def encode_memory(
        self,
        ring_frame: RingFrame,
        high_res_masks: torch.Tensor,
        score_logits: torch.Tensor,
        from_prompt: bool,
        timing: StageTiming,
    ) -> torch.Tensor:
        """The memory encoder on the frame's features and the objects' masks (kept in bf16,
        as SAM 2 stores them)."""
        feats = self.features(ring_frame, high_res_masks.size(0))
        return self._encode_memory(feats, high_res_masks, score_logits, from_prompt, timing)

    def encode_memories(self, parts: Sequence[tuple[RingFrame, Decoded]],
                        timing: StageTiming) -> list[torch.Tensor]:
        """The memory encoder for the tracked objects of one or several sessions, each part
        on its own frame with the masks its policy chose, in one batch: per part its memory
        features (as ``encode_memory`` gives them alone, up to the batched kernels)."""
        if len(parts) == 1:
            ring_frame, decoded = parts[0]
            return [self.encode_memory(ring_frame, decoded.high_res_masks,
                                       decoded.object_score_logits, False, timing)]
        counts = [d.high_res_masks.size(0) for _, d in parts]
        feats = self.features_of([(frame, n) for (frame, _), n in zip(parts, counts, strict=True)])
        features = self._encode_memory(
            feats, torch.cat([d.high_res_masks for _, d in parts]),
            torch.cat([d.object_score_logits for _, d in parts]), False, timing)
        return list(torch.split(features, counts))

    def _encode_memory(self, feats: tuple, high_res_masks: torch.Tensor,
                       score_logits: torch.Tensor, from_prompt: bool,
                       timing: StageTiming) -> torch.Tensor:
        """SAM2Base's memory encoder on ``features_of``'s features (bf16 out)."""
        t0 = self.sync(timing)
        vision_feats, _, feat_sizes, _ = feats
        features, pos_enc = self.model._encode_new_memory(
            current_vision_feats=vision_feats,
            feat_sizes=feat_sizes,
            pred_masks_high_res=high_res_masks,
            object_score_logits=score_logits,
            is_mask_from_pts=from_prompt,
        )
        if self.caches.maskmem_pos_enc is None:
            self.caches.maskmem_pos_enc = pos_enc[-1][0:1].clone()
        timing.memory_encoder += self.sync(timing) - t0
        return features.to(torch.bfloat16)
