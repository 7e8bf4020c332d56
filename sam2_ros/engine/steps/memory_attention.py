"""SAM 2's memory attention for a batch of objects, with a faster kernel on CPU bf16.

Memory attention is most of a frame on a CPU, and nearly all of it is the attention
products themselves. Meta's ``RoPEAttention`` calls PyTorch's fused kernel directly, which
on a CPU with bf16 but no AMX is slower than two matrix products and a softmax
(``attend``), so this module runs Meta's memory-attention layers with their own modules
(norms, projections, rotary encoding via Meta's ``apply_rotary_enc``, feed-forward
network, final norm) and only the attention kernel chosen here. In fp32, and on GPUs,
``attend`` is PyTorch's fused kernel, so the result is Meta's to rounding (the parity tests
run this path). Models whose layers are not RoPE attention run Meta's module unchanged.
It never sees SAM2Base: ``Sam2Steps`` hands it the memory-attention module and the memory
frames' temporal encodings (the boundary: docs/architecture.md).
The measurements behind each choice, and what was tried and not kept: docs/benchmarks.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from sam2.modeling.position_encoding import apply_rotary_enc
from sam2.modeling.sam.transformer import RoPEAttention

from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.memory_bank import FrameOutput, Memory
from sam2_ros.engine.model_loading import cpu_flags

#: Memory tokens one memory-attention call takes on a CPU (objects beyond go to the next
#: call): larger batches only add memory traffic once the attention is large enough to
#: fill the cores (docs/benchmarks.md). On GPUs, where one call per object would leave the
#: device mostly idle, all objects of a layout share one call (``attention_budget``).
ATTENTION_TOKENS = 8192


def attention_budget(device: torch.device) -> int:
    """Memory tokens per memory-attention call on this device (0: no limit). The budget
    was tuned on CPU cores; elsewhere one batched call for all objects."""
    return ATTENTION_TOKENS if device.type == "cpu" else 0

#: Attention scores one step of ``attend`` materialises (query rows x memory tokens).
SCORE_ELEMENTS = 1 << 24

#: Whether ``attend`` runs bf16 attention on the CPU as two matrix products and a softmax
#: (True) or as PyTorch's fused kernel: the products only where bf16 has no AMX, since the
#: fused kernel uses the AMX tiles and the products do not (docs/benchmarks.md, "Memory-
#: attention kernel per CPU").
BF16_PRODUCTS = "avx512_bf16" in (_FLAGS := cpu_flags()) and "amx_bf16" not in _FLAGS


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
    """Softmax attention [B, heads, Lq, d]. On the CPU in bf16 without AMX as two oneDNN
    matrix products and a softmax, in blocks of query rows; elsewhere PyTorch's fused kernel.

    Why: without AMX the two products come near the cores' bf16 peak where the fused CPU
    flash kernel reaches about half of it, at about twice its (small) difference to an fp32
    reference; in fp32 the fused kernel is faster (docs/benchmarks.md).
    """
    if (not BF16_PRODUCTS or q.device.type != "cpu" or q.dtype != torch.bfloat16
            or dropout > 0.0):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
    scale = q.shape[-1] ** -0.5
    keys_t = k.transpose(-1, -2)
    rows = max(1, SCORE_ELEMENTS // max(1, k.shape[-2] * q.shape[0] * q.shape[1]))
    if rows >= q.shape[-2]:
        return torch.matmul(torch.softmax(torch.matmul(q * scale, keys_t), dim=-1), v)
    out = q.new_empty(*q.shape[:-1], v.shape[-1])
    for start in range(0, q.shape[-2], rows):
        block = slice(start, start + rows)
        scores = torch.matmul(q[..., block, :] * scale, keys_t)
        torch.matmul(torch.softmax(scores, dim=-1), v, out=out[..., block, :])
    return out


def group_by_layout(memories: list[Memory]) -> list[list[int]]:
    """Indices of the memories, grouped by layout (memory frames, object-pointer tokens):
    objects of one layout can attend in one batched call on a concatenated memory."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, memory in enumerate(memories):
        groups.setdefault(memory.layout, []).append(i)
    return list(groups.values())


def attention_chunk(memory_tokens: int, budget: int) -> int:
    """How many objects share one memory-attention call: as many as keep the batch's memory
    tokens within ``budget`` (at least one; budget <= 0: no limit)."""
    if budget <= 0:
        return 1 << 30
    return max(1, budget // max(1, memory_tokens))


class MemoryAttentionRunner:
    """Runs a model's memory attention for batches of objects (see the module docstring)."""

    def __init__(self, attention: torch.nn.Module, maskmem_tpos_enc: torch.Tensor,
                 device: torch.device) -> None:
        """``attention``: SAM2Base's ``memory_attention``; ``maskmem_tpos_enc``: its
        temporal encodings of the memory slots (both handed over by ``Sam2Steps``)."""
        self.device = device
        self.attention = attention
        self.maskmem_tpos_enc = maskmem_tpos_enc
        self.attention_tokens = attention_budget(device)
        self.own_kernel = all(
            isinstance(layer.self_attn, RoPEAttention)
            and isinstance(layer.cross_attn_image, RoPEAttention)
            for layer in self.attention.layers
        )
        self._freqs: dict[tuple[int, int], torch.Tensor] = {}

    def __call__(self, memories: list[Memory], curr: torch.Tensor, curr_pos: torch.Tensor,
                 spatial_pos: torch.Tensor) -> torch.Tensor:
        """Memory-conditioned features [L, B, C] for B objects, in their order. Objects
        whose memories share a layout attend in one call (in chunks of at most
        ``attention_chunk`` objects); each layout gets its own calls, so objects with
        different memories (a selective memory) still share the rest of the frame's
        batched steps."""
        groups = group_by_layout(memories)
        if len(groups) == 1:
            return self._attend_layout(memories, curr, curr_pos, spatial_pos)
        out = curr.new_empty(curr.shape)
        for members in groups:
            index = host_sync.upload(torch.tensor(members), curr.device)
            out[:, index] = self._attend_layout(
                [memories[i] for i in members], curr[:, index], curr_pos[:, index], spatial_pos)
        return out

    def _attend_layout(self, memories: list[Memory], curr: torch.Tensor, curr_pos: torch.Tensor,
                       spatial_pos: torch.Tensor) -> torch.Tensor:
        """``__call__`` for objects whose memories share one layout."""
        tokens = len(memories[0].spatial) * spatial_pos.shape[0] + memories[0].num_ptr_tokens
        step = attention_chunk(tokens, self.attention_tokens)
        parts = []
        for start in range(0, len(memories), step):
            chunk = memories[start : start + step]
            window = slice(start, start + len(chunk))
            pairs = [self.memory_tokens(m, spatial_pos) for m in chunk]
            memory = torch.cat([p[0] for p in pairs], dim=1)
            memory_pos = torch.cat([p[1] for p in pairs], dim=1)
            num_ptr = chunk[0].num_ptr_tokens
            if self.own_kernel:
                parts.append(self._forward(curr[:, window], curr_pos[:, window], memory,
                                           memory_pos, num_ptr))
            else:
                parts.append(self.attention(
                    curr=[curr[:, window]], curr_pos=[curr_pos[:, window]], memory=memory,
                    memory_pos=memory_pos, num_obj_ptr_tokens=num_ptr))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def memory_tokens(self, memory: Memory, spatial_pos: torch.Tensor):
        """The memory tokens and encodings [L, 1, mem_dim] in SAM 2's order."""
        tokens, pos = [], []
        for out, slot in memory.spatial:
            tokens.append(self._spatial_tokens(out))
            pos.append(spatial_pos + self.maskmem_tpos_enc[slot])
        if memory.ptrs is not None:
            tokens.append(memory.ptrs)
            pos.append(memory.ptr_pos)
        return torch.cat(tokens, dim=0), torch.cat(pos, dim=0)

    def _spatial_tokens(self, out: FrameOutput) -> torch.Tensor:
        """A memory frame's features as tokens [L, 1, mem_dim] in float (stored in bf16)."""
        if out.maskmem_features is None:
            raise RuntimeError("memory of a frame SAM 2 attends to was released")
        return out.maskmem_features.to(self.device).flatten(2).permute(2, 0, 1).float()

    def _forward(self, curr, curr_pos, memory, memory_pos, num_ptr) -> torch.Tensor:
        """MemoryAttention.forward (batch-first layers) with ``attend`` as the kernel."""
        attention = self.attention
        output = curr
        if attention.pos_enc_at_input and curr_pos is not None:
            output = output + 0.1 * curr_pos
        output, query_pos = output.transpose(0, 1), curr_pos.transpose(0, 1)
        memory, memory_pos = memory.transpose(0, 1), memory_pos.transpose(0, 1)
        for layer in attention.layers:
            tgt2 = layer.norm1(output)
            q = tgt2 + query_pos if layer.pos_enc_at_attn else tgt2
            output = output + layer.dropout1(self._rope_attention(layer.self_attn, q, q, tgt2))
            tgt2 = layer.norm2(output)
            output = output + layer.dropout2(self._rope_attention(
                layer.cross_attn_image,
                tgt2 + query_pos if layer.pos_enc_at_cross_attn_queries else tgt2,
                memory + memory_pos if layer.pos_enc_at_cross_attn_keys else memory,
                memory, num_k_exclude_rope=num_ptr))
            hidden = layer.activation(layer.linear1(layer.norm3(output)))
            output = output + layer.dropout3(layer.linear2(layer.dropout(hidden)))
        return attention.norm(output).transpose(0, 1)

    def _rope_attention(self, attn: RoPEAttention, q, k, v, num_k_exclude_rope: int = 0):
        """RoPEAttention.forward with ``attend`` as the kernel."""
        q = attn._separate_heads(attn.q_proj(q), attn.num_heads)
        k = attn._separate_heads(attn.k_proj(k), attn.num_heads)
        v = attn._separate_heads(attn.v_proj(v), attn.num_heads)
        num_rope = k.shape[-2] - num_k_exclude_rope
        q, rotated = apply_rotary_enc(q, k[:, :, :num_rope], self._freqs_for(attn, q.shape[-2]),
                                      repeat_freqs_k=attn.rope_k_repeat)
        k = torch.cat([rotated, k[:, :, num_rope:]], dim=-2) if num_k_exclude_rope else rotated
        out = attend(q, k, v, attn.dropout_p if attn.training else 0.0)
        return attn.out_proj(attn._recombine_heads(out))

    def _freqs_for(self, attn: RoPEAttention, tokens: int) -> torch.Tensor:
        """The layer's RoPE frequencies for a square grid of ``tokens`` (as Meta recomputes
        them when the image size differs from the config's)."""
        key = (id(attn), tokens)
        if key not in self._freqs:
            side = math.sqrt(tokens)
            self._freqs[key] = attn.compute_cis(end_x=side, end_y=side).to(self.device)
        return self._freqs[key]
