"""sensor_msgs Image / CompressedImage -> numpy, through cv_bridge where it is installed.

Every real ROS 2 install has cv_bridge; a PyPI-only one does not. Both paths give the same
arrays: colour images as HxWx3 uint8 RGB, depth as HxW float32 metres with NaN where there
is no measurement, masks as HxW uint8. cv_bridge only unpacks the buffer (passthrough);
the channel and depth rules are the core's (``sam2_ros.core.image_codec``) on both paths,
and every failure is an ``ImageDecodeError`` naming the problem.
"""

from __future__ import annotations

import numpy as np

from sam2_ros.core.image_codec import (
    SUPPORTED_DEPTH_ENCODINGS,
    SUPPORTED_IMAGE_ENCODINGS,
    ImageDecodeError,
    decode_compressed,
    decode_depth,
    decode_image,
)

try:  # pragma: no cover - depends on the ROS install
    from cv_bridge import CvBridge

    _BRIDGE = CvBridge()
    BACKEND = "cv_bridge"
except Exception:  # ImportError, or a cv_bridge built against another NumPy
    _BRIDGE = None
    BACKEND = "sam2_ros.core.image_codec"

_BYTES_PER_PIXEL = {
    "rgb8": 3,
    "bgr8": 3,
    "8UC3": 3,
    "rgba8": 4,
    "bgra8": 4,
    "mono8": 1,
    "8UC1": 1,
    "mono16": 2,
    "16UC1": 2,
    "32FC1": 4,
}


def backend_description() -> str:
    """One line for the node's start-up log."""
    if _BRIDGE is not None:
        return "image conversion: cv_bridge (passthrough) with sam2_ros channel/depth rules"
    return "image conversion: cv_bridge not importable, using sam2_ros.core.image_codec"


def _check_header(msg, supported: tuple[str, ...], what: str) -> None:
    """The checks cv_bridge does not do in words a person can act on."""
    if msg.encoding not in supported:
        raise ImageDecodeError(
            f"unsupported {what} encoding {msg.encoding!r}; supported: " + ", ".join(supported)
        )
    if msg.height <= 0 or msg.width <= 0:
        raise ImageDecodeError(
            f"{msg.encoding} {what} has zero size: width={msg.width}, height={msg.height}"
        )
    row = msg.width * _BYTES_PER_PIXEL[msg.encoding]
    if msg.step < row:
        raise ImageDecodeError(
            f"{msg.encoding} {what} step {msg.step} is smaller than one row ({row} B)"
        )
    if len(msg.data) < msg.step * msg.height:
        raise ImageDecodeError(
            f"{msg.encoding} {what} data too short: expected {msg.step * msg.height} bytes "
            f"(step {msg.step} * height {msg.height}), got {len(msg.data)}"
        )


def _passthrough(msg) -> np.ndarray:
    try:
        return np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
    except Exception as exc:  # CvBridgeError, TypeError from a short buffer ...
        raise ImageDecodeError(f"cv_bridge cannot convert {msg.encoding} image: {exc}") from exc


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> HxWx3 uint8 RGB (grey replicated, 16 bit reduced to the high byte)."""
    _check_header(msg, SUPPORTED_IMAGE_ENCODINGS, "image")
    if _BRIDGE is None:
        return decode_image(
            msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian)
        )
    array = _passthrough(msg)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    if array.ndim == 2 or array.shape[2] == 1:
        return np.repeat(array.reshape(msg.height, msg.width, 1), 3, axis=2)
    if msg.encoding in ("rgb8", "rgba8"):
        return np.array(array[:, :, :3], order="C")
    return np.array(array[:, :, 2::-1], order="C")


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG) -> HxWx3 uint8 RGB."""
    if _BRIDGE is None or not len(msg.data):
        return decode_compressed(msg.data, msg.format)
    if "compresseddepth" in msg.format.lower():
        return decode_compressed(msg.data, msg.format)  # raises the core's clear error
    try:
        rgb = _BRIDGE.compressed_imgmsg_to_cv2(msg, desired_encoding="rgb8")
    except Exception as exc:
        raise ImageDecodeError(
            f"cannot decode compressed image ({msg.format or 'unknown format'}, "
            f"{len(msg.data)} bytes): corrupt or unsupported data ({exc})"
        ) from exc
    if rgb is None or rgb.ndim != 3:
        raise ImageDecodeError(f"cannot decode compressed image ({msg.format!r})")
    return np.ascontiguousarray(rgb)


def depth_to_metres(msg, depth_scale: float) -> np.ndarray:
    """16UC1/mono16 (units of depth_scale metres) or 32FC1 (metres) -> float32 metres, NaN
    where invalid (0, NaN, inf, negative)."""
    _check_header(msg, SUPPORTED_DEPTH_ENCODINGS, "depth image")
    if _BRIDGE is None:
        return decode_depth(
            msg.data,
            msg.height,
            msg.width,
            msg.encoding,
            msg.step,
            bool(msg.is_bigendian),
            depth_scale,
        )
    raw = _passthrough(msg)
    if raw.dtype == np.uint16:
        depth = raw.astype(np.float32) * np.float32(depth_scale)
        depth[raw == 0] = np.nan
        return depth
    depth = raw.astype(np.float32, copy=True)
    with np.errstate(invalid="ignore"):
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return depth


def mask_to_array(msg) -> np.ndarray | None:
    """A mono8/8UC1 prompt mask -> HxW uint8; None for an empty message (no mask prompt)."""
    if msg.width == 0 and msg.height == 0 and not len(msg.data):
        return None
    if msg.encoding not in ("mono8", "8UC1"):
        raise ImageDecodeError(
            f"mask must be mono8 (nonzero = object), got encoding {msg.encoding!r}"
        )
    rgb = image_to_rgb(msg)
    return np.ascontiguousarray(rgb[:, :, 0])
