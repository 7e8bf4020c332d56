"""The camera frame to SAM 2's input tensor: Meta's exact host path, or on the device.

``meta``: PIL's bicubic resize and a float normalisation on the host, then the float image
to the device (``preprocessing.frame_to_tensor``: the pixels Meta's predictor sees, pinned
by the parity tests). ``device``: the uint8 frame goes to the device (through a reused
pinned buffer on CUDA) and is resized there (torch's antialiased bicubic, rounded to uint8
levels like PIL: a level off here and there) and normalised; ``prefetch`` starts that copy
from the camera's thread, on its own CUDA stream, while the frame before is tracked.
``auto``: ``device`` on CUDA, ``meta`` elsewhere (docs/benchmarks.md: the cost of each).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.steps.preprocessing import IMG_MEAN, IMG_STD, frame_to_tensor

PREPROCESSING_MODES = ("auto", "meta", "device")
_AHEAD_BUFFERS = 2  # one being copied or waiting while the next frame is written


@dataclass
class _Ahead:
    """A prefetched frame: the array it came from and its uint8 copy on the device."""

    rgb: np.ndarray
    frame: torch.Tensor
    copied: torch.cuda.Event | None  # the copy's end on the upload stream (CUDA)


def resolve_preprocessing(mode: str, device: torch.device) -> str:
    """``meta`` or ``device`` for a mode setting (see the module docstring)."""
    if mode not in PREPROCESSING_MODES:
        raise ValueError(f"preprocessing must be one of {', '.join(PREPROCESSING_MODES)}, "
                         f"got {mode!r}")
    if mode == "auto":
        return "device" if device.type == "cuda" else "meta"
    return mode


class FrameUpload:
    """Turns HxWx3 uint8 RGB frames into normalised 1x3xSxS float32 tensors on a device."""

    def __init__(self, image_size: int, device: torch.device, mode: str = "auto") -> None:
        self.image_size = image_size
        self.device = device
        self.mode = resolve_preprocessing(mode, device)
        self._staging: torch.Tensor | None = None  # the reused host buffer
        self._copied: torch.cuda.Event | None = None  # its last copy to the device
        self._norm: tuple[torch.Tensor, torch.Tensor] | None = None  # mean, std on the device
        self._ahead: _Ahead | None = None  # the newest prefetched frame, not yet used
        self._ahead_lock = threading.Lock()
        self._buffers_lock = threading.Lock()  # cameras' callbacks may run concurrently
        self._ahead_buffers: list[tuple[torch.Tensor, torch.cuda.Event | None]] = []
        self._stream: torch.cuda.Stream | None = None  # prefetch's copies (CUDA), made then
        self.prefetched_used = 0  # frames that found their copy already started

    @property
    def prefetches(self) -> bool:
        """Whether ``prefetch`` starts anything (``device`` mode): Meta's host path would
        resize frames that newest-frame-wins may never track."""
        return self.mode == "device"

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        if self.mode == "meta":
            return frame_to_tensor(rgb, self.image_size, self.device)
        frame = self._take_ahead(rgb)
        return self._on_device(frame if frame is not None else self._upload(rgb))

    def prefetch(self, rgb: np.ndarray) -> None:
        """Start the copy of this (HxWx3 uint8, contiguous) array to the device now; a
        later call with the same array uses it. Replaces a prefetched frame not yet used.
        Thread-safe against the worker's calls; does nothing in ``meta`` mode."""
        if not self.prefetches:
            return
        if self.device.type != "cuda":  # the tensor shares the array (copied if read-only)
            frame = torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy())
            ahead = _Ahead(rgb, frame, None)
        else:
            with self._buffers_lock:
                ahead = self._copy_on_stream(rgb)
        with self._ahead_lock:
            self._ahead = ahead

    def _copy_on_stream(self, rgb: np.ndarray) -> _Ahead:
        """The frame copied from a pinned buffer on the upload stream (CUDA): the buffer's
        previous copy is waited for on this (the camera's) thread, never the worker's."""
        if not self._ahead_buffers or tuple(self._ahead_buffers[0][0].shape) != rgb.shape:
            self._ahead_buffers = [(torch.empty(rgb.shape, dtype=torch.uint8, pin_memory=True),
                                    None) for _ in range(_AHEAD_BUFFERS)]
        if self._stream is None:
            self._stream = torch.cuda.Stream(self.device)
        staging, previous = self._ahead_buffers.pop(0)
        if previous is not None:
            previous.synchronize()
        np.copyto(staging.numpy(), rgb)
        with torch.cuda.stream(self._stream):
            frame = staging.to(self.device, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record(self._stream)
        self._ahead_buffers.append((staging, copied))
        return _Ahead(rgb, frame, copied)

    def _take_ahead(self, rgb: np.ndarray) -> torch.Tensor | None:
        """The prefetched copy of this very array (counted as its upload), or None."""
        with self._ahead_lock:
            ahead = self._ahead
            if ahead is None or ahead.rgb is not rgb:
                return None
            self._ahead = None
        if ahead.copied is not None:  # order the frame's work after the copy, no host wait
            stream = torch.cuda.current_stream(self.device)
            stream.wait_event(ahead.copied)
            ahead.frame.record_stream(stream)
        transfer = host_sync.current().transfer
        transfer.uploads += 1
        transfer.upload_bytes += ahead.frame.numel()
        self.prefetched_used += 1
        return ahead.frame

    def _upload(self, rgb: np.ndarray) -> torch.Tensor:
        """The uint8 frame on the device. Off CUDA a writable frame is shared as it is
        (nothing writes to it); a read-only one (torch warns on sharing it) and every
        CUDA frame go through a host buffer reused while the frame size stays: pinned on
        CUDA for a truly asynchronous copy, written again only once its last copy is done."""
        cuda = self.device.type == "cuda"
        if not cuda and rgb.flags.writeable:
            return host_sync.upload(torch.from_numpy(rgb), self.device)
        if self._staging is None or tuple(self._staging.shape) != rgb.shape:
            self._staging = torch.empty(rgb.shape, dtype=torch.uint8, pin_memory=cuda)
            self._copied = None
        if self._copied is not None and not self._copied.query():
            host_sync.current().wait()  # the previous copy is still running
            self._copied.synchronize()
        np.copyto(self._staging.numpy(), rgb)
        frame = host_sync.upload(self._staging, self.device)
        if cuda:
            self._copied = torch.cuda.Event()
            self._copied.record()
        return frame

    def _on_device(self, frame: torch.Tensor) -> torch.Tensor:
        """Resize (PIL's bicubic, rounded to uint8 levels) and normalise on the device."""
        size = self.image_size
        image = frame.permute(2, 0, 1)[None].float()
        if tuple(image.shape[-2:]) != (size, size):
            image = F.interpolate(image, size=(size, size), mode="bicubic",
                                  align_corners=False, antialias=True)
            image = image.round().clamp(0.0, 255.0)
        if self._norm is None:  # made once (a copy to the device)
            self._norm = tuple(host_sync.upload(torch.tensor(v).view(1, 3, 1, 1), image.device)
                               for v in (IMG_MEAN, IMG_STD))
        mean, std = self._norm
        return (image / 255.0 - mean) / std
