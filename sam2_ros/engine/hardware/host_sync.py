"""Host waits and host<->device copies, counted where they happen (``HostTransfer``).

On a GPU every read of a device tensor by the host (``.cpu()``, ``.item()``, ``float(t)``,
``bool(t)``, ``.tolist()``, ``nonzero``) waits until the device has computed it, and a
blocking copy to the device waits for the device's queue. The engine reads device tensors
and copies to the device only through this module, so each call counts what a GPU pays,
on a CPU too (where nothing waits). ``counting`` makes a call's ``HostSync`` the current one
of its thread; code deep in the engine reaches it through ``current()``.

A read can also wait for later (``later``): the next ``read`` or ``flush`` brings every
queued tensor with its own in one copy (one wait) and hands each its values, so a policy's
per-object numbers ride along with the frame's result copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar

import numpy as np
import torch

from sam2_ros.engine.results import HostTransfer

_CURRENT: ContextVar[HostSync | None] = ContextVar("sam2_ros_host_sync", default=None)

#: dtypes a read converts first (numpy has no bfloat16; half floats read as float32).
_READ_AS = {torch.bfloat16: torch.float32, torch.float16: torch.float32, torch.bool: torch.uint8}


class HostSync:
    """One call's host waits and copies, and its reads queued for the next wait."""

    def __init__(self, transfer: HostTransfer | None = None, eager: bool = False) -> None:
        self.transfer = transfer if transfer is not None else HostTransfer()
        self.eager = eager  # outside ``counting``: nothing would bring a queued read
        self._queued: list[tuple[list[torch.Tensor], Callable[[list[np.ndarray]], None]]] = []

    def read(self, *tensors: torch.Tensor) -> list[np.ndarray]:
        """The tensors' values on the host (shapes kept; bool as bool), in one copy with
        every queued read (one wait; queued callbacks run first)."""
        queued, self._queued = self._queued, []
        flat = [t for ts, _ in queued for t in ts] + list(tensors)
        values = self._copy(flat)
        start = 0
        for ts, then in queued:
            then(values[start : start + len(ts)])
            start += len(ts)
        return values[start:]

    def later(self, tensors: Sequence[torch.Tensor],
              then: Callable[[list[np.ndarray]], None]) -> None:
        """Queue a read: ``then`` gets the values at the next ``read`` or ``flush`` (at
        once outside ``counting``)."""
        self._queued.append((list(tensors), then))
        if self.eager:
            self.flush()

    def flush(self) -> None:
        """Bring every queued read now (one wait when any is queued)."""
        if self._queued:
            self.read()

    @property
    def pending(self) -> bool:
        return bool(self._queued)

    def wait(self) -> None:
        """Count an explicit synchronisation (stage profiling)."""
        self.transfer.syncs += 1

    def upload(self, data: np.ndarray | torch.Tensor, device: torch.device,
               dtype: torch.dtype | None = None, blocking: bool = False) -> torch.Tensor:
        """A host array on the device, counted. Non-blocking by default: pageable memory
        is staged by the driver at once, so the host array may change afterwards; a
        blocking copy waits for the device's queue first (counted as a wait)."""
        tensor = torch.as_tensor(data)
        if dtype is not None:
            tensor = tensor.to(dtype)
        self.transfer.uploads += 1
        self.transfer.upload_bytes += tensor.numel() * tensor.element_size()
        if blocking:
            self.transfer.syncs += 1
        return tensor.to(device, non_blocking=not blocking)

    def _copy(self, tensors: list[torch.Tensor]) -> list[np.ndarray]:
        """One packed device-to-host copy of tensors of any dtype (one wait)."""
        if not tensors:
            return []
        parts, kinds = [], []
        for t in tensors:
            t = t.detach()
            kinds.append((t.dtype, tuple(t.shape)))
            t = t.to(_READ_AS.get(t.dtype, t.dtype))
            parts.append(t.reshape(-1).contiguous().view(torch.uint8))
        packed = (parts[0] if len(parts) == 1 else torch.cat(parts)).cpu().numpy()
        self.transfer.syncs += 1
        self.transfer.bytes += int(packed.nbytes)
        sizes = np.cumsum([p.numel() for p in parts])[:-1]
        out = []
        for chunk, (dtype, shape) in zip(np.split(packed, sizes), kinds, strict=True):
            np_dtype = _numpy_dtype(_READ_AS.get(dtype, dtype))
            value = chunk.view(np_dtype).reshape(shape)
            out.append(value.astype(bool) if dtype == torch.bool else value)
        return out


def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return torch.empty((), dtype=dtype).numpy().dtype


def current() -> HostSync:
    """The current call's HostSync (outside ``counting`` a throwaway one that reads
    queued tensors at once)."""
    sync = _CURRENT.get()
    return sync if sync is not None else HostSync(eager=True)


@contextlib.contextmanager
def counting(transfer: HostTransfer) -> Iterator[HostSync]:
    """Count this thread's host waits and copies into ``transfer`` until the block ends
    (queued reads are brought at the end unless the block raised)."""
    with using(HostSync(transfer)) as sync:
        yield sync
        sync.flush()


@contextlib.contextmanager
def using(sync: HostSync) -> Iterator[HostSync]:
    """Make ``sync`` this thread's current one for a block, its queued reads left queued
    (a frame's steps interleaved with other frames' steps, ``multi_session``)."""
    token = _CURRENT.set(sync)
    try:
        yield sync
    finally:
        _CURRENT.reset(token)


def read(*tensors: torch.Tensor) -> list[np.ndarray]:
    """``current().read``: the tensors on the host in one counted wait."""
    return current().read(*tensors)


def scalars(*tensors: torch.Tensor) -> list[float]:
    """One-element tensors as Python floats, in one counted wait."""
    return [float(v.reshape(-1)[0]) for v in read(*tensors)]


def upload(data: np.ndarray | torch.Tensor, device: torch.device,
           dtype: torch.dtype | None = None, blocking: bool = False) -> torch.Tensor:
    """``current().upload``: a counted copy to the device."""
    return current().upload(data, device, dtype, blocking)
