"""Tests for sam2_ros.imaging.codec (no ROS needed)."""

import array

import cv2
import numpy as np
import pytest

from sam2_ros.imaging.codec import (
    SUPPORTED_IMAGE_ENCODINGS,
    ImageDecodeError,
    StreamBitDepth,
    decode_compressed,
    decode_depth,
    decode_image,
    encode_mono16,
    encode_rgb,
)

H, W = 4, 5


@pytest.fixture
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _pad_rows(rows: np.ndarray, extra: int, fill: int = 0xAB) -> tuple[bytes, int]:
    """Append ``extra`` garbage bytes to every row, like a driver aligning rows."""
    flat = rows.reshape(rows.shape[0], -1)
    padded = np.concatenate([flat, np.full((flat.shape[0], extra), fill, np.uint8)], axis=1)
    return padded.tobytes(), padded.shape[1]


# --------------------------------------------------------------------------- colour


def test_rgb8_roundtrip_returns_writable_copy(rgb):
    data, step = encode_rgb(rgb, "rgb8")
    assert step == W * 3
    out = decode_image(data, H, W, "rgb8", step, False)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    np.testing.assert_array_equal(out, rgb)
    out[:] = 0  # must not raise (bytes are read-only) and must not alias the input
    np.testing.assert_array_equal(decode_image(data, H, W, "rgb8", step, False), rgb)


@pytest.mark.parametrize("encoding", ["bgr8", "8UC3"])
def test_bgr_channel_order_is_swapped_to_rgb(encoding):
    bgr = np.zeros((H, W, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30  # B, G, R
    out = decode_image(bgr.tobytes(), H, W, encoding, W * 3, False)
    assert tuple(out[0, 0]) == (30, 20, 10)
    assert out.flags.c_contiguous


def test_encode_bgr8_then_decode_matches(rgb):
    data, step = encode_rgb(rgb, "bgr8")
    raw = np.frombuffer(data, np.uint8).reshape(H, W, 3)
    np.testing.assert_array_equal(raw[..., ::-1], rgb)
    np.testing.assert_array_equal(decode_image(data, H, W, "bgr8", step, False), rgb)


def test_rgba_and_bgra_drop_alpha(rgb):
    alpha = np.full((H, W, 1), 7, np.uint8)
    rgba = np.concatenate([rgb, alpha], axis=2)
    bgra = np.concatenate([rgb[..., ::-1], alpha], axis=2)
    np.testing.assert_array_equal(decode_image(rgba.tobytes(), H, W, "rgba8", W * 4), rgb)
    np.testing.assert_array_equal(decode_image(bgra.tobytes(), H, W, "bgra8", W * 4), rgb)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_replicated_to_three_channels(encoding):
    grey = np.arange(H * W, dtype=np.uint8).reshape(H, W)
    out = decode_image(grey.tobytes(), H, W, encoding, W)
    assert out.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_mono8_encode_from_rgb_uses_luminance():
    img = np.zeros((1, 2, 3), np.uint8)
    img[0, 0] = (255, 0, 0)
    img[0, 1] = (0, 255, 0)
    data, step = encode_rgb(img, "mono8")
    assert step == 2
    red, green = data
    assert green > red > 0  # green dominates luma; a plain channel pick would fail


@pytest.mark.parametrize("encoding,bpp", [("rgb8", 3), ("bgr8", 3), ("mono8", 1), ("rgba8", 4)])
def test_padded_rows_are_ignored(rgb, encoding, bpp):
    if encoding == "mono8":
        pixels, expected = rgb[..., 0], np.repeat(rgb[..., :1], 3, axis=2)
    elif encoding == "bgr8":
        pixels, expected = rgb[..., ::-1], rgb
    elif encoding == "rgba8":
        pixels, expected = np.concatenate([rgb, rgb[..., :1]], axis=2), rgb
    else:
        pixels, expected = rgb, rgb
    data, step = _pad_rows(np.ascontiguousarray(pixels), extra=7)
    assert step == W * bpp + 7
    np.testing.assert_array_equal(decode_image(data, H, W, encoding, step, False), expected)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_uses_high_byte_for_both_byte_orders(encoding, bigendian):
    values = np.array(
        [[0x0000, 0x00FF, 0x0100, 0x1234], [0xFF00, 0xFFFF, 0x8000, 0x7FFF]], np.uint16
    )
    data, step = encode_mono16(values, bigendian=bigendian)
    out = decode_image(data, 2, 4, encoding, step, bigendian)
    expected = np.array([[0x00, 0x00, 0x01, 0x12], [0xFF, 0xFF, 0x80, 0x7F]], np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)


def test_mono16_big_endian_bytes_are_interpreted_correctly():
    # 0x12 0x34 is 0x1234 in big endian but 0x3412 in little endian (16 significant bits).
    data = bytes([0x12, 0x34])
    assert decode_image(data, 1, 1, "mono16", 2, True, bit_depth=16)[0, 0, 0] == 0x12
    assert decode_image(data, 1, 1, "mono16", 2, False, bit_depth=16)[0, 0, 0] == 0x34


@pytest.mark.parametrize(("bits", "shift"), [(10, 2), (12, 4), (14, 6)])
def test_10_and_12_bit_cameras_keep_their_brightness(bits, shift):
    """A 10/12-bit camera in a 16-bit image: auto and an explicit bit depth agree, and the
    brightest pixel stays bright (>> 8 would make it nearly black)."""
    values = np.linspace(0, (1 << bits) - 1, H * W).astype(np.uint16).reshape(H, W)
    data, step = encode_mono16(values)
    auto = decode_image(data, H, W, "mono16", step)
    fixed = decode_image(data, H, W, "mono16", step, bit_depth=bits)
    np.testing.assert_array_equal(auto, fixed)
    np.testing.assert_array_equal(auto[..., 0], (values >> shift).astype(np.uint8))
    assert auto.max() == 255


def test_a_stream_keeps_the_largest_bit_depth_seen_so_dark_frames_do_not_brighten():
    """A 12-bit camera: judged per frame, a dark frame (values < 1024) passes for 10-bit and
    comes out 4x brighter than the same pixels in a bright frame; judged over the stream it
    keeps the bright frame's 12 bits, until the stream starts over."""
    bright = np.full((H, W), 4000, np.uint16)
    dark = np.full((H, W), 800, np.uint16)
    (bright_data, step), (dark_data, _) = encode_mono16(bright), encode_mono16(dark)
    alone = decode_image(dark_data, H, W, "mono16", step)[0, 0, 0]
    stream = StreamBitDepth()
    assert stream.bits == 0
    assert decode_image(bright_data, H, W, "mono16", step, bit_depth=stream)[0, 0, 0] == 250
    in_stream = decode_image(dark_data, H, W, "mono16", step, bit_depth=stream)[0, 0, 0]
    assert (alone, in_stream) == (200, 50) and stream.bits == 12
    stream.reset()
    assert decode_image(dark_data, H, W, "mono16", step, bit_depth=stream)[0, 0, 0] == 200
    fixed = StreamBitDepth(fixed=16)
    assert decode_image(bright_data, H, W, "mono16", step, bit_depth=fixed)[0, 0, 0] == 15
    assert fixed.bits == 16


def test_8_bit_values_in_16_bit_images_are_kept():
    values = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 10  # all < 256
    data, step = encode_mono16(values)
    np.testing.assert_array_equal(decode_image(data, H, W, "16UC1", step)[..., 1], values)


@pytest.mark.parametrize(
    ("encoding", "pattern"),
    [("bayer_rggb8", "RGGB"), ("bayer_bggr8", "BGGR"), ("bayer_gbrg8", "GBRG"),
     ("bayer_grbg8", "GRBG")],
)
def test_bayer_patterns_demosaic_to_the_right_colour(encoding, pattern):
    """A flat colour mosaicked with ROS' pattern (the 2x2 block at pixel (0, 0)) comes back
    as that colour: a swapped pattern would swap red and blue."""
    colour = {"R": 200, "G": 120, "B": 40}
    h, w = 8, 10
    mosaic = np.zeros((h, w), np.uint8)
    for dy in range(2):
        for dx in range(2):
            mosaic[dy::2, dx::2] = colour[pattern[dy * 2 + dx]]
    out = decode_image(mosaic.tobytes(), h, w, encoding, w)
    centre = out[2:-2, 2:-2].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(centre, [200, 120, 40], atol=3)


@pytest.mark.parametrize("encoding", ["uyvy", "yuv422", "yuyv", "yuv422_yuy2"])
def test_yuv422_decodes_to_rgb(encoding):
    """YUV 4:2:2 of a flat colour (BT.601, video range, as OpenCV) decodes to that colour."""
    r, g, b = 180, 90, 30
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    y, u, v = (round(c) for c in (y, u, v))
    h, w = 4, 6
    pair = [u, y, v, y] if encoding in ("uyvy", "yuv422") else [y, u, y, v]
    data = bytes(pair * (h * w // 2))
    out = decode_image(data, h, w, encoding, w * 2)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), [r, g, b], atol=6)


def test_mono16_with_odd_row_padding():
    values = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 1000
    data, _ = encode_mono16(values, bigendian=True)
    rows = np.frombuffer(data, np.uint8).reshape(H, W * 2)
    padded, step = _pad_rows(rows, extra=3)  # odd: rows start on unaligned offsets
    out = decode_image(padded, H, W, "mono16", step, True)
    np.testing.assert_array_equal(out[..., 0], (values >> 8).astype(np.uint8))


@pytest.mark.parametrize(
    "wrap",
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: np.frombuffer(b, np.uint8),
        lambda b: array.array("B", b),
    ],
)
def test_accepts_any_buffer_type(rgb, wrap):
    data, step = encode_rgb(rgb, "rgb8")
    np.testing.assert_array_equal(decode_image(wrap(data), H, W, "rgb8", step, False), rgb)


def test_extra_trailing_bytes_are_tolerated(rgb):
    data, step = encode_rgb(rgb, "rgb8")
    np.testing.assert_array_equal(decode_image(data + b"\0" * 5, H, W, "rgb8", step), rgb)


# --------------------------------------------------------------------------- errors


def test_unknown_encoding_lists_supported_ones():
    with pytest.raises(ImageDecodeError) as err:
        decode_image(b"\0" * 12, 2, 2, "nv21", 4, False)
    msg = str(err.value)
    assert "nv21" in msg
    assert all(enc in msg for enc in SUPPORTED_IMAGE_ENCODINGS)


def test_decode_error_is_a_value_error():
    assert issubclass(ImageDecodeError, ValueError)


@pytest.mark.parametrize("height,width", [(0, 5), (4, 0), (0, 0)])
def test_zero_size_is_rejected(height, width):
    with pytest.raises(ImageDecodeError, match="zero size"):
        decode_image(b"\0" * 60, height, width, "rgb8", 15, False)


def test_step_smaller_than_row_is_rejected():
    with pytest.raises(ImageDecodeError, match=r"step 14 is smaller than one row.*15"):
        decode_image(b"\0" * 60, H, W, "rgb8", 14, False)


def test_short_data_reports_expected_and_got():
    with pytest.raises(ImageDecodeError, match=r"expected 60 bytes.*got 59"):
        decode_image(b"\0" * 59, H, W, "rgb8", 15, False)


def test_short_data_counts_padding_of_last_row():
    # step*height is the documented size even though the last row's padding is unused.
    with pytest.raises(ImageDecodeError, match=r"expected 80 bytes.*got 75"):
        decode_image(b"\0" * 75, H, W, "rgb8", 20, False)


@pytest.mark.parametrize("encoding", ["uyvy", "yuv422", "yuyv", "yuv422_yuy2"])
def test_odd_width_yuv422_is_a_decode_error_not_an_opencv_error(encoding):
    """Two pixels share U and V in 4:2:2; an odd width used to escape as cv2.error."""
    with pytest.raises(ImageDecodeError, match=r"needs an even width.*got width 5") as err:
        decode_image(b"\0" * 4 * 5 * 2, 4, 5, encoding, 10)
    assert err.value.kind == "odd-width yuv422"


def test_a_failure_kind_does_not_change_with_the_sizes_in_its_message():
    """Kinds name the fault, messages the image: a node throttles by the kind."""
    errors = []
    for size in (59, 58):
        with pytest.raises(ImageDecodeError) as err:
            decode_image(b"\0" * size, H, W, "rgb8", 15)
        errors.append(err.value)
    assert str(errors[0]) != str(errors[1])
    assert errors[0].kind == errors[1].kind == "data too short"


def test_malformed_headers_raise_only_the_codec_error():
    """Every encoding with sizes, steps and data lengths that do not fit: each call decodes
    or raises ImageDecodeError, never another exception (cv2.error, numpy's)."""
    rng = np.random.default_rng(0)
    escaped = []
    for encoding in [*SUPPORTED_IMAGE_ENCODINGS, "32FC1", "16SC1", "nv21"]:
        for height, width in ((1, 1), (2, 3), (3, 5), (0, 2)):
            for step in (0, width, width * 2 + 1, width * 6):
                for size in (0, step * height - 1, step * height):
                    data = rng.integers(0, 256, max(size, 0), dtype=np.uint8).tobytes()
                    args = (data, height, width, encoding, step)
                    for decode, extra in ((decode_image, (True, 0)), (decode_depth, ())):
                        try:
                            decode(*args, *extra)
                        except ImageDecodeError:
                            pass
                        except Exception as exc:  # what escapes is the finding
                            escaped.append((decode.__name__, *args[1:], size, repr(exc)))
    with pytest.raises(ImageDecodeError, match="not a byte buffer"):
        decode_image([1, 2, 3], 1, 1, "rgb8", 3)
    assert escaped == []


# --------------------------------------------------------------------------- depth


@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_16bit_scaled_with_zero_as_nan(encoding, bigendian):
    mm = np.array([[0, 1000, 1500], [65535, 1, 0]], np.uint16)
    data, step = encode_mono16(mm, bigendian=bigendian)
    depth = decode_depth(data, 2, 3, encoding, step, bigendian)
    assert depth.dtype == np.float32 and depth.shape == (2, 3)
    expected = np.array([[np.nan, 1.0, 1.5], [65.535, 0.001, np.nan]], np.float32)
    np.testing.assert_allclose(depth, expected, rtol=1e-6)


def test_depth_custom_scale_and_padding():
    mm = np.full((H, W), 250, np.uint16)
    data, _ = encode_mono16(mm)
    padded, step = _pad_rows(np.frombuffer(data, np.uint8).reshape(H, W * 2), extra=5, fill=0xFF)
    depth = decode_depth(padded, H, W, "16UC1", step, False, depth_scale=0.0001)
    np.testing.assert_allclose(depth, 0.025, rtol=1e-6)


@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_32fc1_invalid_values_become_nan(bigendian):
    values = np.array([[1.25, np.nan, np.inf], [-np.inf, 0.0, -2.0]], np.float32)
    data = values.astype(">f4" if bigendian else "<f4").tobytes()
    depth = decode_depth(data, 2, 3, "32FC1", 12, bigendian)
    assert depth.dtype == np.float32
    assert depth[0, 0] == pytest.approx(1.25)
    assert np.isnan(depth.ravel()[1:]).all()


def test_depth_rejects_colour_encoding_and_bad_scale():
    with pytest.raises(ImageDecodeError, match=r"'rgb8'.*16UC1.*32FC1"):
        decode_depth(b"\0" * 12, 2, 2, "rgb8", 6, False)
    with pytest.raises(ValueError, match="depth_scale"):
        decode_depth(b"\0" * 8, 2, 2, "16UC1", 4, False, depth_scale=0.0)


def test_depth_validation_errors():
    with pytest.raises(ImageDecodeError, match="zero size"):
        decode_depth(b"", 0, 2, "16UC1", 4, False)
    with pytest.raises(ImageDecodeError, match="smaller than one row"):
        decode_depth(b"\0" * 16, 2, 2, "32FC1", 7, False)
    with pytest.raises(ImageDecodeError, match=r"expected 8 bytes.*got 6"):
        decode_depth(b"\0" * 6, 2, 2, "16UC1", 4, False)


# --------------------------------------------------------------------------- compressed


def test_decode_png_gives_rgb(rgb):
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(decode_compressed(png.tobytes(), "png"), rgb)


def test_decode_jpeg_keeps_colour_order():
    bgr = np.zeros((16, 16, 3), np.uint8)
    bgr[..., 2] = 200  # pure red in BGR
    ok, jpg = cv2.imencode(".jpg", bgr)
    assert ok
    out = decode_compressed(jpg.tobytes(), "rgb8; jpeg compressed bgr8")
    assert out.shape == (16, 16, 3)
    r, g, b = out[8, 8].astype(int)
    assert r > 150 and g < 50 and b < 50


@pytest.mark.parametrize("payload", [b"", b"definitely not an image", b"\x89PNG\r\n\x1a\n"])
def test_corrupt_or_empty_compressed_raises(payload):
    with pytest.raises(ImageDecodeError):
        decode_compressed(payload, "png")


def test_compressed_depth_is_rejected():
    with pytest.raises(ImageDecodeError, match="compressedDepth"):
        decode_compressed(b"\0" * 32, "16UC1; compressedDepth png")


# --------------------------------------------------------------------------- encoders


def test_encoders_reject_bad_input(rgb):
    with pytest.raises(ValueError):
        encode_rgb(rgb, "rgba8")
    with pytest.raises(ValueError):
        encode_rgb(rgb.astype(np.uint16), "rgb8")
    with pytest.raises(ValueError):
        encode_rgb(rgb[..., 0], "rgb8")
    with pytest.raises(ValueError):
        encode_mono16(rgb[..., 0])
