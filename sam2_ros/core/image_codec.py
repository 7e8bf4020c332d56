"""Decode raw ROS-image-like buffers into numpy arrays, without ROS types.

Why not cv_bridge: it is a compiled ROS package whose Python binding is tied to the
distribution's NumPy/OpenCV build, and it cannot be used in plain unit tests. The ROS
shell passes the fields of ``sensor_msgs/Image`` (``data``, ``height``, ``width``,
``encoding``, ``step``, ``is_bigendian``) straight into these functions, so the decoding
rules (row padding, byte order, channel order) are tested here, once, without ROS.

Colour images are always returned as RGB because that is what SAM 2 consumes; depth is
returned as float32 metres with NaN marking invalid pixels so downstream statistics can
simply ignore non-finite values.
"""

from __future__ import annotations

from typing import TypeAlias

import cv2
import numpy as np

Buffer: TypeAlias = bytes | bytearray | memoryview | np.ndarray

#: encoding -> (bytes per pixel, channel count) for :func:`decode_image`.
_COLOR_ENCODINGS: dict[str, tuple[int, int]] = {
    "rgb8": (3, 3),
    "bgr8": (3, 3),
    "8UC3": (3, 3),  # cv_bridge treats an untyped 3-channel image as BGR
    "rgba8": (4, 4),
    "bgra8": (4, 4),
    "mono8": (1, 1),
    "8UC1": (1, 1),
    "mono16": (2, 1),
    "16UC1": (2, 1),
}

#: encoding -> bytes per pixel for :func:`decode_depth`.
_DEPTH_ENCODINGS: dict[str, int] = {"16UC1": 2, "mono16": 2, "32FC1": 4}

SUPPORTED_IMAGE_ENCODINGS: tuple[str, ...] = tuple(_COLOR_ENCODINGS)
SUPPORTED_DEPTH_ENCODINGS: tuple[str, ...] = tuple(_DEPTH_ENCODINGS)


class ImageDecodeError(ValueError):
    """Raised when a buffer cannot be interpreted as the image its header describes."""


def _as_bytes_array(data: Buffer) -> np.ndarray:
    """View any buffer (bytes, memoryview, array.array, ndarray) as flat uint8 without copying."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def _pixel_rows(
    data: Buffer, height: int, width: int, step: int, bytes_per_pixel: int, encoding: str
) -> np.ndarray:
    """Validate the header against the buffer and return the (height, width*bpp) payload.

    ``step`` may exceed ``width * bytes_per_pixel`` (drivers pad rows for alignment); the
    padding is sliced away here so callers only ever see pixel bytes.
    """
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"{encoding} image has zero size: width={width}, height={height}")
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f"{encoding} step {step} is smaller than one row "
            f"({width} px * {bytes_per_pixel} B = {row_bytes} B)"
        )
    flat = _as_bytes_array(data)
    expected = step * height
    if flat.size < expected:
        raise ImageDecodeError(
            f"{encoding} image data too short: expected {expected} bytes "
            f"(step {step} * height {height}), got {flat.size}"
        )
    return flat[:expected].reshape(height, step)[:, :row_bytes]


def _rows_as(rows: np.ndarray, height: int, width: int, dtype: str, bigendian: bool) -> np.ndarray:
    """Reinterpret byte rows as a native-endian (height, width) array of ``dtype``."""
    typed = np.dtype(dtype).newbyteorder(">" if bigendian else "<")
    # The row slice is strided when padded, so make it contiguous before the view.
    values = np.ascontiguousarray(rows).view(typed).reshape(height, width)
    return values.astype(np.dtype(dtype).newbyteorder("="))


def decode_image(
    data: Buffer,
    height: int,
    width: int,
    encoding: str,
    step: int,
    is_bigendian: bool = False,
) -> np.ndarray:
    """Decode a raw image buffer into a new, writable HxWx3 uint8 RGB array.

    Grey images are replicated to three channels and 16-bit images are reduced to their
    high byte (value >> 8), because the tracker only needs a viewable RGB frame, not
    radiometric fidelity. Alpha is dropped.
    """
    if encoding not in _COLOR_ENCODINGS:
        raise ImageDecodeError(
            f"unsupported image encoding {encoding!r}; supported: "
            + ", ".join(SUPPORTED_IMAGE_ENCODINGS)
        )
    bpp, channels = _COLOR_ENCODINGS[encoding]
    rows = _pixel_rows(data, height, width, step, bpp, encoding)

    if bpp == 2:
        grey = (_rows_as(rows, height, width, "u2", is_bigendian) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)

    pixels = rows.reshape(height, width, channels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    # bgr8, 8UC3 and bgra8 store blue first; reverse the first three channels.
    rgb = pixels[:, :, :3] if encoding in ("rgb8", "rgba8") else pixels[:, :, 2::-1]
    # Always copy: the input may be read-only bytes, and callers expect to own the result.
    return np.array(rgb, order="C")


def decode_depth(
    data: Buffer,
    height: int,
    width: int,
    encoding: str,
    step: int,
    is_bigendian: bool = False,
    depth_scale: float = 0.001,
) -> np.ndarray:
    """Decode a depth image into HxW float32 metres with NaN for invalid pixels.

    ``16UC1``/``mono16`` are integer units (millimetres by REP 118 convention, hence the
    default ``depth_scale``) where 0 means "no measurement". ``32FC1`` is already metres;
    NaN, inf and non-positive values are all treated as invalid so that consumers need
    only one test (``np.isfinite``).
    """
    if encoding not in _DEPTH_ENCODINGS:
        raise ImageDecodeError(
            f"unsupported depth encoding {encoding!r}; supported: "
            + ", ".join(SUPPORTED_DEPTH_ENCODINGS)
        )
    if not (np.isfinite(depth_scale) and depth_scale > 0):
        raise ValueError(f"depth_scale must be a positive finite number, got {depth_scale}")
    bpp = _DEPTH_ENCODINGS[encoding]
    rows = _pixel_rows(data, height, width, step, bpp, encoding)

    if bpp == 2:
        raw = _rows_as(rows, height, width, "u2", is_bigendian)
        depth = raw.astype(np.float32) * np.float32(depth_scale)
        depth[raw == 0] = np.nan
        return depth

    depth = _rows_as(rows, height, width, "f4", is_bigendian)
    with np.errstate(invalid="ignore"):
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return depth


def decode_compressed(data: Buffer, fmt: str = "") -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` payload (JPEG/PNG) into HxWx3 RGB uint8.

    OpenCV detects the codec from the magic bytes, so ``fmt`` is only used to reject
    ``compressedDepth`` payloads, which carry a private header that imdecode cannot read.
    """
    if "compresseddepth" in fmt.lower():
        raise ImageDecodeError(f"compressedDepth payloads are not supported (format {fmt!r})")
    buf = _as_bytes_array(data)
    if buf.size == 0:
        raise ImageDecodeError(f"compressed image ({fmt or 'unknown format'}) is empty")
    try:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageDecodeError(f"cannot decode compressed image ({fmt!r}): {exc}") from exc
    if bgr is None:
        raise ImageDecodeError(
            f"cannot decode compressed image ({fmt or 'unknown format'}, {buf.size} bytes): "
            "corrupt or unsupported data"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_rgb(image: np.ndarray, encoding: str = "rgb8") -> tuple[bytes, int]:
    """Pack an RGB uint8 image into unpadded ``(data, step)`` for an Image message.

    For ``mono8`` an HxW array is packed as is and an HxWx3 one is converted to grey.
    Kept minimal: it exists so tests and tools can build messages without cv_bridge.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if encoding == "mono8":
        if image.ndim == 3 and image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if image.ndim != 2:
            raise ValueError(f"mono8 needs an HxW or HxWx3 image, got shape {image.shape}")
        out = image
    elif encoding in ("rgb8", "bgr8"):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{encoding} needs an HxWx3 RGB image, got shape {image.shape}")
        out = image if encoding == "rgb8" else image[:, :, ::-1]
    else:
        raise ValueError(f"encode_rgb supports rgb8, bgr8 and mono8, not {encoding!r}")
    out = np.ascontiguousarray(out)
    return out.tobytes(), out.shape[1] * (out.shape[2] if out.ndim == 3 else 1)


def encode_mono16(image: np.ndarray, bigendian: bool = False) -> tuple[bytes, int]:
    """Pack an HxW uint16 array into unpadded ``(data, step)`` for a mono16/16UC1 message."""
    image = np.asarray(image)
    if image.dtype != np.uint16 or image.ndim != 2:
        raise ValueError(f"expected an HxW uint16 array, got {image.dtype} {image.shape}")
    packed = image.astype(np.dtype(np.uint16).newbyteorder(">" if bigendian else "<"))
    return packed.tobytes(), image.shape[1] * 2
