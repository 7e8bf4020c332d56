"""What a CUDA device needs that a CPU does not: precision, device placement, CUDA graphs.

- ``auto_dtype``: bf16 only on a GPU that computes it (compute capability 8.0 and up:
  Ampere, Ada, Hopper, Jetson Orin); older cards (T4, V100, Xavier) run fp32. Not fp16:
  SAM 2 is trained and released for bf16, fp16's narrow range can overflow in attention
  (``benchmarks/gpu/checks.py`` checks its finiteness on the first lent GPU before it is offered).
- ``place_caches``: Meta's modules cache tensors on plain "cuda" (the current device, 0)
  at construction (sine position encodings, RoPE frequencies); moved to the configured
  device, so ``cuda:1`` does not copy them across devices every frame.
- With ``compile: true`` on CUDA (Meta's max-autotune, CUDA graphs) the compiled
  encoder's outputs are overwritten by its next call and a graph is recorded per thread;
  the tracker clones what it keeps and encodes on other threads (a prompt on a dropped
  frame) eagerly: ``steps.sam2_steps.eager_forward_image`` (it calls into the model).
"""

from __future__ import annotations

import torch


def cuda_supports_bf16(device: torch.device) -> bool:
    """Whether a CUDA device computes bf16 natively (compute capability >= 8.0)."""
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def auto_dtype(device: torch.device, cpu_native_bf16: bool) -> torch.dtype | None:
    """``precision: auto``: bf16 where the device computes it natively, else None (fp32)."""
    if device.type == "cuda":
        return torch.bfloat16 if cuda_supports_bf16(device) else None
    if device.type == "cpu" and cpu_native_bf16:
        return torch.bfloat16
    return None


def place_caches(root: torch.nn.Module, device: torch.device) -> int:
    """Move the cached position encodings and RoPE frequencies of every module under
    ``root`` (Meta's, at build time) to ``device``; returns how many tensors moved."""
    moved = 0
    for module in root.modules():
        cache = getattr(module, "cache", None)
        if isinstance(cache, dict):
            for key, value in list(cache.items()):
                if isinstance(value, torch.Tensor) and value.device != device:
                    cache[key] = value.to(device)
                    moved += 1
        freqs = getattr(module, "freqs_cis", None)
        if isinstance(freqs, torch.Tensor) and freqs.device != device:
            module.freqs_cis = freqs.to(device)
            moved += 1
    return moved

