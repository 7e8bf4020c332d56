"""The process heap a model leaves behind: release it after unloading, bound glibc's arenas.

glibc gives each thread that allocates a malloc arena of its own (up to 8 per core) and keeps
what is freed there. A managed node loads its model on an executor thread and tracks on a
worker thread started at each activation, so every configure/activate cycle touched other
arenas and resident memory grew by about a model's working set per cycle without levelling
off (numbers: docs/benchmarks.md, lifecycle cycles). ``limit_arenas`` caps the arenas for a process
whose threads come and go; ``release_memory`` hands freed pages back after an unload.
Both do nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import gc
import sys

import torch

_M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def _glibc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(count: int = 2) -> bool:
    """Let at most ``count`` malloc arenas exist from now on (call before threads start).

    Returns:
        Whether the C library took the limit (False where it is not glibc).
    """
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, int(count)))


def release_memory() -> None:
    """Give back what a dropped model leaves: its Python objects, graphs compiled for it,
    CUDA's cached blocks and the C heap's free pages (``malloc_trim``, every arena). Call it
    after the last reference to the model is gone."""
    gc.collect()
    if "torch._dynamo" in sys.modules:  # compiled graphs guard on the old model's modules
        torch._dynamo.reset()
        gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
