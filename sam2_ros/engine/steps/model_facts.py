"""What the engine knows about a loaded SAM2Base: one frozen description, read once.

The memory bank, the identity policy and pruning need a few numbers and switches of the
model (memory frames, object-pointer range and encoding, how the pointer of a hidden
object is built). They read them here, not from the model's attributes, so that
``Sam2Steps`` stays the one door into Meta's SAM2Base and the facts cannot change under a
running session. ``ModelFacts.from_model`` builds them when the model is loaded
(``LoadedModel.facts``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ModelFacts:
    """The SAM2Base settings the engine reads (names as SAM2Base's attributes)."""

    image_size: int  # the model's input side in pixels
    hidden_dim: int  # channels of the decoder features and of an object pointer
    mem_dim: int  # channels of a memory token
    num_maskmem: int  # memory frames attended (the prompted one included)
    max_cond_frames_in_attn: int  # prompted frames attended (-1: all)
    memory_temporal_stride_for_eval: int  # distance between remembered frames
    use_obj_ptrs_in_encoder: bool  # object pointers join the memory tokens
    max_obj_ptrs_in_encoder: int  # frames whose pointers are attended (the newest first)
    only_obj_ptrs_in_the_past_for_eval: bool  # prompted frames after this one not attended
    use_signed_tpos_enc_to_obj_ptrs: bool  # pointer distances keep their sign
    add_tpos_enc_to_obj_ptrs: bool  # pointers get a temporal encoding
    proj_tpos_enc_in_obj_ptrs: bool  # that encoding is hidden_dim wide (else mem_dim)
    pred_obj_scores: bool  # an object-score head: hidden objects get the no-object pointer
    soft_no_obj_ptr: bool  # mix by the score's sigmoid (else by score > 0)
    fixed_no_obj_ptr: bool  # the pointer is scaled by "appearing" before the mix
    use_mask_input_as_output_without_sam: bool  # a mask prompt is the output as given
    use_high_res_features_in_sam: bool  # the decoder takes the encoder's finer levels

    @classmethod
    def from_model(cls, model: torch.nn.Module) -> ModelFacts:
        """The facts of a built SAM2Base (read once, at load time)."""
        return cls(
            image_size=int(model.image_size),
            hidden_dim=int(model.hidden_dim),
            mem_dim=int(model.mem_dim),
            num_maskmem=int(model.num_maskmem),
            max_cond_frames_in_attn=int(model.max_cond_frames_in_attn),
            memory_temporal_stride_for_eval=int(model.memory_temporal_stride_for_eval),
            use_obj_ptrs_in_encoder=bool(model.use_obj_ptrs_in_encoder),
            max_obj_ptrs_in_encoder=int(model.max_obj_ptrs_in_encoder),
            only_obj_ptrs_in_the_past_for_eval=bool(model.only_obj_ptrs_in_the_past_for_eval),
            use_signed_tpos_enc_to_obj_ptrs=bool(model.use_signed_tpos_enc_to_obj_ptrs),
            add_tpos_enc_to_obj_ptrs=bool(model.add_tpos_enc_to_obj_ptrs),
            proj_tpos_enc_in_obj_ptrs=bool(model.proj_tpos_enc_in_obj_ptrs),
            pred_obj_scores=bool(model.pred_obj_scores),
            soft_no_obj_ptr=bool(model.soft_no_obj_ptr),
            fixed_no_obj_ptr=bool(model.fixed_no_obj_ptr),
            use_mask_input_as_output_without_sam=bool(
                model.use_mask_input_as_output_without_sam),
            use_high_res_features_in_sam=bool(model.use_high_res_features_in_sam),
        )

