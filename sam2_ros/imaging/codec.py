"""The one image codec: ROS image fields <-> numpy, for every path (node, bags, replay, tools).

Why our own and not cv_bridge: cv_bridge's Python conversion shifts rows of padded images
and breaks on big-endian 16-bit data with NumPy 2, it is missing on PyPI-only installs,
and it is tied to the distribution's NumPy/OpenCV build. The fields of
``sensor_msgs/Image`` (``data``, ``height``, ``width``, ``encoding``, ``step``,
``is_bigendian``) are the same on rclpy's and rosbags' messages, so the message-level
helpers here take either.

Colour images come out as HxWx3 uint8 RGB (what SAM 2 consumes): grey is replicated,
alpha dropped, Bayer mosaics demosaiced, YUV 4:2:2 converted, and 16-bit colour input
scaled by its bit depth (``bit_depth``; 0 = the smallest of 10/12/14/16 bits that holds
the frame's largest value, so a 10- or 12-bit camera is not made nearly black; a stream
judges it with ``StreamBitDepth``, which keeps the largest depth seen). Depth
comes out as float32 metres with NaN where there is no measurement.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TypeAlias

import cv2
import numpy as np

Buffer: TypeAlias = bytes | bytearray | memoryview | np.ndarray

#: encoding -> (numpy dtype, channels) of the buffer's pixels.
LAYOUTS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3), "bgr8": ("u1", 3), "8UC3": ("u1", 3),
    "rgba8": ("u1", 4), "bgra8": ("u1", 4), "8UC4": ("u1", 4),
    "mono8": ("u1", 1), "8UC1": ("u1", 1),
    "mono16": ("u2", 1), "16UC1": ("u2", 1),
    "rgb16": ("u2", 3), "bgr16": ("u2", 3),
    "32FC1": ("f4", 1), "64FC1": ("f8", 1), "16SC1": ("i2", 1), "32SC1": ("i4", 1),
    "bayer_rggb8": ("u1", 1), "bayer_bggr8": ("u1", 1),
    "bayer_gbrg8": ("u1", 1), "bayer_grbg8": ("u1", 1),
    "yuv422": ("u1", 2), "uyvy": ("u1", 2), "yuyv": ("u1", 2), "yuv422_yuy2": ("u1", 2),
}

# OpenCV names a Bayer pattern by the 2x2 block starting at pixel (1, 1); ROS by (0, 0).
_BAYER = {
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}
# ROS' "yuv422" is UYVY (the UYVY byte order), "yuv422_yuy2" is YUYV.
_YUV = {
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
}
_BGR_ORDER = ("bgr8", "8UC3", "bgra8", "8UC4", "bgr16")

#: Encodings a camera image may have (values, not colours, are in the others).
SUPPORTED_IMAGE_ENCODINGS: tuple[str, ...] = tuple(
    e for e, (code, _) in LAYOUTS.items() if code in ("u1", "u2"))
SUPPORTED_DEPTH_ENCODINGS: tuple[str, ...] = ("16UC1", "mono16", "32FC1")


class ImageDecodeError(ValueError):
    """Raised when a buffer cannot be interpreted as the image its header describes.

    ``kind`` names the failure in a few words that never embed sizes or stamps (for
    example ``"data too short"``), so a node can count and throttle repeats of one kind
    of fault while the message says exactly what was wrong with this image.
    """

    def __init__(self, message: str, kind: str = "undecodable image") -> None:
        super().__init__(message)
        self.kind = kind


def _convert(pixels: np.ndarray, code: int, encoding: str) -> np.ndarray:
    """cv2.cvtColor with OpenCV's assertion errors turned into ImageDecodeError."""
    try:
        return cv2.cvtColor(pixels, code)
    except cv2.error as exc:
        shape = "x".join(str(n) for n in pixels.shape)
        reason = str(exc).strip().splitlines()[-1]
        raise ImageDecodeError(
            f"{encoding} image ({shape}) cannot be converted to RGB: {reason}",
            "colour conversion failed") from exc


# --------------------------------------------------------------------------- decoding
def _as_bytes(data: Buffer) -> np.ndarray:
    """View any buffer (bytes, memoryview, array.array, ndarray) as flat uint8 without copying."""
    try:
        if isinstance(data, np.ndarray):
            return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise ImageDecodeError(
            f"image data is not a byte buffer ({type(data).__name__}): {exc}",
            "data not a buffer") from exc


def decode_pixels(
    data: Buffer, height: int, width: int, encoding: str, step: int, is_bigendian: bool = False
) -> np.ndarray:
    """The buffer's pixels as a native-order HxW or HxWxC array of the encoding's type.

    ``step`` may exceed a row's bytes (drivers pad rows for alignment); the padding is
    dropped here so nothing downstream sees it.
    """
    if encoding not in LAYOUTS:
        raise ImageDecodeError(
            f"unsupported image encoding {encoding!r}; supported: " + ", ".join(LAYOUTS),
            "unsupported encoding")
    code, channels = LAYOUTS[encoding]
    dtype = np.dtype(code).newbyteorder(">" if is_bigendian else "<")
    if height <= 0 or width <= 0:
        raise ImageDecodeError(
            f"{encoding} image has zero size: width={width}, height={height}", "zero size")
    if encoding in _YUV and width % 2:
        # In 4:2:2 two neighbouring pixels share one U and one V sample.
        raise ImageDecodeError(
            f"{encoding} (YUV 4:2:2) needs an even width (2 pixels share U and V), got "
            f"width {width}", "odd-width yuv422")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageDecodeError(
            f"{encoding} step {step} is smaller than one row "
            f"({width} px * {channels * dtype.itemsize} B = {row_bytes} B)", "step too small")
    flat = _as_bytes(data)
    if flat.size < step * height:
        raise ImageDecodeError(
            f"{encoding} image data too short: expected {step * height} bytes "
            f"(step {step} * height {height}), got {flat.size}", "data too short")
    rows = np.ascontiguousarray(flat[: step * height].reshape(height, step)[:, :row_bytes])
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rows.view(dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def judged_bit_depth(values: np.ndarray) -> int:
    """The fewest significant bits (8, 10, 12, 14 or 16) that hold every value."""
    top = int(values.max()) if values.size else 0
    return next((b for b in (8, 10, 12, 14) if top < (1 << b)), 16)


def sixteen_bit_shift(values: np.ndarray, bit_depth: int = 0) -> int:
    """Right shift that brings ``bit_depth``-bit values (0: judged from the data) to 8 bits."""
    if bit_depth <= 0:
        bit_depth = judged_bit_depth(values)
    return max(0, min(16, bit_depth) - 8)


class StreamBitDepth:
    """The bit depth of one camera stream's 16-bit images: fixed, or judged automatically
    as the largest depth any of its frames needed so far.

    Why not judge each frame alone: a dark frame of a 12-bit camera (values below 1024)
    would be taken for 10-bit and come out four times brighter than a bright frame, so
    brightness would flicker with the scene. The largest depth seen only grows, so after
    the first bright frame every frame is scaled alike; ``reset`` starts over (with the
    tracker: a new stream may come from another camera).
    """

    def __init__(self, fixed: int = 0) -> None:
        self.fixed = fixed
        self._seen = 0
        self._lock = threading.Lock()

    @property
    def bits(self) -> int:
        """The depth in force: the fixed one, else the largest seen (0 before any frame)."""
        return self.fixed if self.fixed > 0 else self._seen

    def judge(self, values: np.ndarray) -> int:
        """The depth to scale these values by, after counting them as part of the stream."""
        if self.fixed > 0:
            return self.fixed
        depth = judged_bit_depth(values)
        with self._lock:
            self._seen = max(self._seen, depth)
            return self._seen

    def reset(self) -> None:
        with self._lock:
            self._seen = 0


def to_rgb(
    pixels: np.ndarray, encoding: str, bit_depth: int | StreamBitDepth = 0
) -> np.ndarray:
    """Pixels from ``decode_pixels`` -> a new HxWx3 uint8 RGB array.

    ``bit_depth`` of 16-bit input: a number (0 = judged from this frame alone) or a
    stream's ``StreamBitDepth``."""
    if encoding in _BAYER:
        return _convert(pixels, _BAYER[encoding], encoding)
    if encoding in _YUV:
        return _convert(pixels, _YUV[encoding], encoding)
    if pixels.dtype == np.uint16:
        if isinstance(bit_depth, StreamBitDepth):
            bit_depth = bit_depth.judge(pixels)
        pixels = (pixels >> sixteen_bit_shift(pixels, bit_depth)).clip(0, 255).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise ImageDecodeError(f"{encoding} is not a colour image encoding", "not a colour image")
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    rgb = pixels[:, :, 2::-1] if encoding in _BGR_ORDER else pixels[:, :, :3]
    return np.array(rgb, order="C")


def decode_image(
    data: Buffer, height: int, width: int, encoding: str, step: int,
    is_bigendian: bool = False, bit_depth: int | StreamBitDepth = 0,
) -> np.ndarray:
    """A raw colour/grey image buffer -> new, writable HxWx3 uint8 RGB."""
    if encoding not in SUPPORTED_IMAGE_ENCODINGS:
        raise ImageDecodeError(
            f"unsupported image encoding {encoding!r}; supported: "
            + ", ".join(SUPPORTED_IMAGE_ENCODINGS), "unsupported encoding")
    return to_rgb(decode_pixels(data, height, width, encoding, step, is_bigendian),
                  encoding, bit_depth)


def decode_depth(
    data: Buffer, height: int, width: int, encoding: str, step: int,
    is_bigendian: bool = False, depth_scale: float = 0.001,
) -> np.ndarray:
    """A depth buffer -> HxW float32 metres with NaN for invalid pixels.

    16UC1/mono16 are integer units (millimetres by REP 118, hence the default scale) with
    0 = no measurement; 32FC1 is metres, NaN/inf/non-positive are invalid.
    """
    if encoding not in SUPPORTED_DEPTH_ENCODINGS:
        raise ImageDecodeError(
            f"unsupported depth encoding {encoding!r}; supported: "
            + ", ".join(SUPPORTED_DEPTH_ENCODINGS), "unsupported depth encoding")
    if not (np.isfinite(depth_scale) and depth_scale > 0):
        raise ValueError(f"depth_scale must be a positive finite number, got {depth_scale}")
    raw = decode_pixels(data, height, width, encoding, step, is_bigendian)
    if raw.dtype == np.uint16:
        depth = raw.astype(np.float32) * np.float32(depth_scale)
        depth[raw == 0] = np.nan
        return depth
    with np.errstate(invalid="ignore"):
        raw[~(np.isfinite(raw) & (raw > 0))] = np.nan
    return raw


def decode_compressed(data: Buffer, fmt: str = "", colour: bool = True) -> np.ndarray:
    """A CompressedImage payload (JPEG/PNG) -> HxWx3 uint8 RGB (``colour``) or its own
    channels and depth (``colour=False``: label and mask PNGs keep their values)."""
    if "compresseddepth" in fmt.lower():
        raise ImageDecodeError(
            f"compressedDepth payloads are not supported (format {fmt!r})", "compressedDepth")
    buf = _as_bytes(data)
    if buf.size == 0:
        raise ImageDecodeError(
            f"compressed image ({fmt or 'unknown format'}) is empty", "empty compressed image")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR if colour else cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageDecodeError(f"cannot decode compressed image ({fmt!r}): {exc}",
                               "corrupt compressed image") from exc
    if img is None:
        raise ImageDecodeError(
            f"cannot decode compressed image ({fmt or 'unknown format'}, {buf.size} bytes): "
            "corrupt or unsupported data", "corrupt compressed image")
    if img.ndim == 3 and img.shape[2] == 3:
        img = _convert(img, cv2.COLOR_BGR2RGB, fmt or "compressed")
    return img


# ----------------------------------------------------------------- message-level helpers
def image_msg_to_rgb(msg: Any, bit_depth: int | StreamBitDepth = 0) -> np.ndarray:
    """sensor_msgs/Image (rclpy or rosbags) -> HxWx3 uint8 RGB."""
    return decode_image(msg.data, int(msg.height), int(msg.width), msg.encoding,
                        int(msg.step), bool(msg.is_bigendian), bit_depth)


def image_msg_to_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> its values as stored (labels, masks, raw depth), native order."""
    return decode_pixels(msg.data, int(msg.height), int(msg.width), msg.encoding,
                         int(msg.step), bool(msg.is_bigendian))


def depth_msg_to_metres(msg: Any, depth_scale: float) -> np.ndarray:
    """sensor_msgs/Image depth -> HxW float32 metres, NaN where invalid."""
    return decode_depth(msg.data, int(msg.height), int(msg.width), msg.encoding,
                        int(msg.step), bool(msg.is_bigendian), depth_scale)


def compressed_msg_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage -> HxWx3 uint8 RGB."""
    return decode_compressed(msg.data, msg.format)


def camera_msg_to_rgb(msg: Any, bit_depth: int | StreamBitDepth = 0) -> np.ndarray:
    """A camera frame, sensor_msgs/Image or CompressedImage alike -> HxWx3 uint8 RGB."""
    if hasattr(msg, "format"):
        return compressed_msg_to_rgb(msg)
    return image_msg_to_rgb(msg, bit_depth)


def mask_msg_to_array(msg: Any) -> np.ndarray | None:
    """A mono8/8UC1 prompt mask -> HxW uint8; None for an empty message (no mask prompt)."""
    if msg.width == 0 and msg.height == 0 and not len(msg.data):
        return None
    if msg.encoding not in ("mono8", "8UC1"):
        raise ImageDecodeError(
            f"mask must be mono8 (nonzero = object), got encoding {msg.encoding!r}",
            "mask not mono8")
    return image_msg_to_array(msg)


# --------------------------------------------------------------------------- encoding
def encode_fields(array: np.ndarray, encoding: str, bigendian: bool | None = None) -> dict:
    """The Image fields (height, width, encoding, is_bigendian, step, data) of an array laid
    out as ``encoding`` says; rows unpadded, byte order the host's unless ``bigendian``.

    No colour conversion happens here (see ``rgb_as``): the caller names the layout its
    array already has, which keeps RGB/BGR swaps out.
    """
    if encoding not in LAYOUTS:
        raise ValueError(f"cannot encode {encoding!r}; supported: {', '.join(LAYOUTS)}")
    code, channels = LAYOUTS[encoding]
    array = np.asarray(array)
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ValueError(f"{encoding} needs shape (H, W{'' if channels == 1 else f', {channels}'})"
                         f", got {array.shape}")
    if not np.can_cast(array.dtype, np.dtype(code), "same_kind"):
        raise ValueError(f"{encoding} needs {np.dtype(code)} data, got {array.dtype}")
    big = (sys.byteorder == "big") if bigendian is None else bigendian
    data = np.ascontiguousarray(array, dtype=np.dtype(code).newbyteorder(">" if big else "<"))
    height, width = array.shape[:2]
    itemsize = data.dtype.itemsize
    return {
        "height": height, "width": width, "encoding": encoding,
        "is_bigendian": int(big and itemsize > 1), "step": width * channels * itemsize,
        "data": data.reshape(-1).view(np.uint8),
    }


def rgb_as(image: np.ndarray, encoding: str) -> np.ndarray:
    """An HxWx3 uint8 RGB image converted to the layout of rgb8, bgr8 or mono8 (an HxW grey
    image passes as mono8)."""
    image = np.asarray(image)
    if encoding == "mono8" and image.ndim == 2 and image.dtype == np.uint8:
        return image
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
    if encoding == "rgb8":
        return image
    if encoding == "bgr8":
        return np.ascontiguousarray(image[:, :, ::-1])
    if encoding == "mono8":
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"rgb_as supports rgb8, bgr8 and mono8, not {encoding!r}")


def encode_rgb(image: np.ndarray, encoding: str = "rgb8") -> tuple[bytes, int]:
    """``(data, step)`` of an RGB image as rgb8, bgr8 or mono8 (tests and tools)."""
    fields = encode_fields(rgb_as(image, encoding), encoding, bigendian=False)
    return fields["data"].tobytes(), fields["step"]


def encode_mono16(image: np.ndarray, bigendian: bool = False) -> tuple[bytes, int]:
    """``(data, step)`` of an HxW uint16 array as mono16/16UC1."""
    image = np.asarray(image)
    if image.dtype != np.uint16:
        raise ValueError(f"expected an HxW uint16 array, got {image.dtype} {image.shape}")
    fields = encode_fields(image, "mono16", bigendian=bigendian)
    return fields["data"].tobytes(), fields["step"]
