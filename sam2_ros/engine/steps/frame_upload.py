"""The camera frame to SAM 2's input tensor: Meta's exact host path, or on the device.

``meta``: PIL's bicubic resize and a float normalisation on the host, then the float image
to the device (``preprocessing.frame_to_tensor``, the pixels Meta's predictor sees: the
parity tests pin it). ``device``: the uint8 frame goes to the device (through a reused
pinned buffer on CUDA, a quarter of the bytes of the float image at the model's size when
the camera is smaller, far less work on the host) and is resized there (torch's bicubic
with antialiasing, PIL's filter, rounded to uint8 levels like PIL) and normalised. Its pixels
differ from PIL's by a level here and there. ``auto``: ``device`` on CUDA, ``meta``
elsewhere (on a CPU both run on the same cores: docs/benchmarks.md has the cost of each).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.steps.preprocessing import IMG_MEAN, IMG_STD, frame_to_tensor

PREPROCESSING_MODES = ("auto", "meta", "device")


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

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        if self.mode == "meta":
            return frame_to_tensor(rgb, self.image_size, self.device)
        return self._on_device(self._upload(rgb))

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
