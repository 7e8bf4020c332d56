"""Validate camera frames and turn them into SAM 2's input tensor.

The resize is PIL's bicubic resize to a square image_size followed by ImageNet mean/std
normalisation, exactly the steps of Meta's video frame loader, so that the streaming
engine sees the same pixels as the official predictor does for the same frame.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from sam2_ros.engine.hardware import host_sync
from sam2_ros.errors import FrameError

IMG_MEAN = (0.485, 0.456, 0.406)
IMG_STD = (0.229, 0.224, 0.225)


def validate_frame(frame: object) -> np.ndarray:
    """Return the frame as a contiguous HxWx3 uint8 RGB array, or raise FrameError.

    Float frames are accepted when they hold RGB in [0, 1] (and then scaled to uint8);
    NaN, inf and out-of-range values are refused instead of silently clipped.
    """
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.ndim != 3:
        raise FrameError(f"frame must be HxWx3 (RGB), got shape {frame.shape}")
    if frame.shape[2] != 3:
        raise FrameError(f"frame must have 3 channels (RGB), got {frame.shape[2]}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"frame is empty (shape {frame.shape})")
    if frame.dtype == np.uint8:
        return np.ascontiguousarray(frame)
    if np.issubdtype(frame.dtype, np.floating):
        if not np.all(np.isfinite(frame)):
            raise FrameError("frame contains NaN or infinite values")
        if frame.min() < 0.0 or frame.max() > 1.0:
            raise FrameError(
                f"float frames must hold RGB in [0, 1]; got [{frame.min():.3g}, {frame.max():.3g}]"
            )
        return np.round(frame * 255.0).astype(np.uint8)
    raise FrameError(f"frame dtype must be uint8 (or float in [0, 1]), got {frame.dtype}")


def frame_to_tensor(rgb: np.ndarray, image_size: int, device: torch.device) -> torch.Tensor:
    """HxWx3 uint8 RGB -> normalised 1x3xSxS float32 tensor on the device."""
    resized = np.array(Image.fromarray(rgb).resize((image_size, image_size), Image.BICUBIC))
    img = torch.from_numpy(resized / 255.0).permute(2, 0, 1).to(torch.float32)
    mean = torch.tensor(IMG_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMG_STD, dtype=torch.float32)[:, None, None]
    img = (img - mean) / std
    # Non-blocking: a blocking copy to a GPU waits for the device's queue first.
    return host_sync.upload(img.unsqueeze(0), device)
