"""The node's helpers on their own (real rclpy messages and a real tracker, no processes):
frame slot, parameters, image conversions, depth positions and markers, service handlers."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
import torch
import yaml
from geometry_msgs.msg import Point
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.parameter import Parameter
from sam2_ros.srv import AddPrompt, RemoveObjects, ResetTracks
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from sam2_ros import names
from sam2_ros.engine.model_loading import build_model
from sam2_ros.engine.results import ObjectResult
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.evaluation.synthetic_scene import SceneConfig, camera_intrinsics, render_scene
from sam2_ros.imaging.codec import (
    ImageDecodeError,
    compressed_msg_to_rgb,
    decode_depth,
    decode_image,
    depth_msg_to_metres,
    encode_mono16,
    encode_rgb,
    image_msg_to_rgb,
    mask_msg_to_array,
)
from sam2_ros.messages import stamp_to_ns
from sam2_ros.ros.depth_pairing import DepthPairing
from sam2_ros.ros.frame_slot import FrameSlot, FrameSlots
from sam2_ros.ros.outputs import (
    NodeStats,
    WarnThrottle,
    build_markers,
    depth_positions,
    failure_kind,
)
from sam2_ros.ros.parameters import (
    NodeParameters,
    ParameterError,
    RuntimeSettings,
    declare_parameters,
    descriptor,
)
from sam2_ros.ros.received_frames import ReceivedFrames
from sam2_ros.ros.services import TrackerServices
from sam2_ros.settings import PARAMETERS, RUNTIME_PARAMETERS, ParameterSpec, check_value

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------- frame slot
def test_frame_slot_newest_frame_wins_and_counts_drops():
    started, release = threading.Event(), threading.Event()
    seen = []

    def process(item):
        seen.append(item)
        if item == 1:
            started.set()
            assert release.wait(10)

    slot = FrameSlot(process)
    try:
        slot.put(1)
        assert started.wait(10)  # 1 is being processed: the model is busy
        assert slot.put(2) is False
        assert slot.put(3) is True  # replaced 2, which is dropped
        assert slot.put(4) is True
        release.set()
        assert slot.wait_idle(10)
        assert seen == [1, 4]
        assert slot.counts() == (4, 2, 2)
    finally:
        slot.stop()


def test_frame_slot_worker_survives_an_exception():
    errors = []
    done = threading.Event()

    def process(item):
        if item == "bad":
            raise RuntimeError("boom")
        done.set()

    slot = FrameSlot(process, errors.append)
    try:
        slot.put("bad")
        assert slot.wait_idle(10)
        slot.put("good")
        assert done.wait(10)
        assert [str(e) for e in errors] == ["boom"]
    finally:
        slot.stop()


def test_frame_slots_take_the_newest_of_every_camera_each_cycle():
    """A camera ten times faster only drops more of its own frames; a silent one is not
    in the batch; every camera with a waiting frame gets one per cycle."""
    started, release = threading.Event(), threading.Event()
    batches = []

    def process(batch):
        batches.append(batch)
        if len(batches) == 1:
            started.set()
            assert release.wait(10)

    slots = FrameSlots(process)
    try:
        slots.put("front", 0)
        assert started.wait(10)  # busy with front's first frame
        for i in range(10):
            slots.put("wrist", i)  # ten times faster
        slots.put("front", 1)
        release.set()
        assert slots.wait_idle(10)
        assert batches == [[("front", 0)], [("wrist", 9), ("front", 1)]]
        assert slots.counts("wrist") == (10, 1, 9) and slots.counts("front") == (2, 2, 0)
        assert slots.counts("rear") == (0, 0, 0) and slots.counts() == (12, 3, 9)
    finally:
        slots.stop()


def test_frame_slots_workers_share_the_cameras_fairly_one_worker_per_camera():
    """Two workers: both track at once, a camera is never on two workers at a time, each
    worker runs its start hook, and under overload (every camera always has a frame
    waiting) the three cameras get equal shares, taken one per cycle."""
    lock, running, started_on = threading.Lock(), set(), set()
    both = threading.Barrier(2, timeout=10)
    overlapped, batches, done = [], [], threading.Event()

    def process(batch):
        keys = {k for k, _ in batch}
        with lock:
            assert not keys & running, f"{keys & running} on two workers at once"
            running.update(keys)
            batches.append(sorted(keys))
            first = len(batches) <= 2
        if first:  # the first two batches wait for each other: two workers at once
            both.wait()
            overlapped.append(True)
        time.sleep(0.002)  # some work, so that the workers' batches interleave
        for key in ("a", "b", "c"):
            slots.put(key, 0)  # overload: every camera has a new frame again
        with lock:
            running.difference_update(keys)
            if len(batches) >= 60:
                done.set()

    slots = FrameSlots(process, name="test-worker", workers=2,
                       on_start=lambda: started_on.add(threading.current_thread().name))
    try:
        for key in ("a", "b", "c"):
            slots.put(key, 0)
        assert done.wait(30)
    finally:
        slots.stop()
    assert overlapped == [True, True] and started_on == {"test-worker", "test-worker-1"}
    assert all(len(b) == 1 for b in batches)  # a share of 3 cameras // 2 workers
    processed = [slots.counts(k)[1] for k in ("a", "b", "c")]
    assert max(processed) - min(processed) <= 2, processed


def test_frame_slots_one_worker_takes_every_waiting_camera():
    """With one worker the share is every camera: a batch holds all that wait."""
    seen, release, first = [], threading.Event(), threading.Event()

    def process(batch):
        seen.append([k for k, _ in batch])
        first.set()
        assert release.wait(10)

    slots = FrameSlots(process, workers=1)
    try:
        slots.put("a", 0)
        assert first.wait(10)
        slots.put("b", 0)
        slots.put("c", 0)
        slots.put("a", 1)
        release.set()
        assert slots.wait_idle(10)
    finally:
        slots.stop()
    assert seen == [["a"], ["b", "c", "a"]]


def test_worker_threads_on_a_cpu_fill_the_cores_and_on_a_gpu_batch_all():
    from sam2_ros.settings import worker_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert worker_threads(0, 3, "cpu") == (2, 1)  # a core each
        assert worker_threads(0, 1, "cpu") == (1, 0)  # one camera: today's single worker
        assert worker_threads(0, 3, "cuda") == (1, 0)  # every camera in one batch
        assert worker_threads(1, 3, "cpu") == (1, 0)
        assert worker_threads(5, 2, "cpu") == (2, 1)  # never more workers than cameras
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------- parameters
def test_config_yaml_holds_every_parameter_with_its_default():
    config = yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())
    assert list(config) == ["/**/sam2_tracker"]
    values = config["/**/sam2_tracker"]["ros__parameters"]
    assert values == {name: list(p.default) if isinstance(p.default, tuple) else p.default
                      for name, p in PARAMETERS.items()}
    assert set(NodeParameters.__dataclass_fields__) == set(PARAMETERS)


def test_descriptors_have_ranges_and_read_only_flags():
    for name, p in PARAMETERS.items():
        default = p.default
        desc = descriptor(name)
        assert isinstance(desc, ParameterDescriptor) and desc.description
        assert desc.read_only == (name not in RUNTIME_PARAMETERS), name
        if (
            isinstance(default, int | float)
            and not isinstance(default, bool)
            and name not in ("mask_threshold",)
        ):
            assert desc.integer_range or desc.floating_point_range, name
    assert descriptor("overlay_alpha").floating_point_range[0].to_value == 1.0
    assert descriptor("image_size").integer_range[0].step == 32


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("image_transport", "theora", "one of raw, compressed"),
        ("cameras", ("front", "front"), "names a camera twice"),
        ("cameras", ("front/left",), "must start with a letter and hold only"),
        ("cameras", "front", "must be an array of strings"),
        ("qos_reliability", "sometimes", "best_effort, reliable"),
        ("overlay_alpha", 1.5, "within [0.0, 1.0]"),
        ("depth_scale", 0.0, "within"),
        ("mask_threshold", float("nan"), "finite"),
        ("image_size", 48, "multiple of 32 >= 64"),
        ("publish_overlay", 1, "bool"),
    ],
)
def test_check_value_names_the_problem(name, value, needle):
    reason = check_value(name, value)
    assert reason and needle in reason and name in reason


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"default": 5, "bounds": (0, 4)}, "default breaks its own rules: x must be within"),
        ({"default": "c", "choices": ("a", "b")}, "x must be one of a, b"),
        ({"default": 1.0, "step": 2, "bounds": (0.0, 4.0)}, "a step needs an integer"),
        ({"default": True, "bounds": (0, 1)}, "bounds must be (low, high) of a number"),
        ({"default": 3, "choices": ("3",)}, "choices are for strings"),
        ({"default": [1]}, "default must be a bool, int, float, str or tuple"),
    ],
)
def test_a_parameter_entry_that_contradicts_itself_fails_when_made(fields, needle):
    with pytest.raises((TypeError, ValueError), match=re.escape(needle)):
        ParameterSpec("x", text="x", **fields)


def test_parameter_rules_live_in_the_table():
    """image_size's and precision's rules are the table's, read by model loading too."""
    size = PARAMETERS["image_size"]
    assert size.check(0) is None and size.check(256) is None
    assert "multiple of 32 >= 64" in size.check(96 + 8) and "within" in size.check(8192)
    assert size.check(256.0) and "integer" in size.check(256.0)
    assert PARAMETERS["overlay_alpha"].coerce(1) == 1.0
    assert isinstance(PARAMETERS["overlay_alpha"].coerce(1), float)
    assert PARAMETERS["qos_depth"].coerce(True) is True  # no silent bool -> number
    assert PARAMETERS["precision"].check("bfloat16") is None
    depth = PARAMETERS["input_bit_depth"]
    assert depth.check(0) is None and depth.check(12) is None
    assert "10, 12, 14 or 16" in depth.check(9)
    assert set(RUNTIME_PARAMETERS) == {
        "mask_threshold", "publish_overlay", "overlay_alpha", "depth_scale"}


def test_runtime_settings_apply_and_reject():
    settings = RuntimeSettings(_defaults())
    changed = []
    settings.add_listener(lambda name, value: changed.append((name, value)))
    ok = settings.on_set_parameters(
        [Parameter("mask_threshold", value=1.5), Parameter("publish_overlay", value=False)]
    )
    assert ok.successful and settings.mask_threshold == 1.5 and settings.publish_overlay is False
    assert changed == [("mask_threshold", 1.5), ("publish_overlay", False)]
    bad = settings.on_set_parameters(
        [Parameter("overlay_alpha", value=0.2), Parameter("depth_scale", value=-1.0)]
    )
    assert not bad.successful and "depth_scale" in bad.reason
    assert settings.overlay_alpha == 0.5  # all or nothing


def _defaults() -> NodeParameters:
    return NodeParameters(**{name: p.default for name, p in PARAMETERS.items()})


@pytest.fixture(scope="module")
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=0)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def test_declare_parameters_refuses_bad_start_values(context):
    node = rclpy.create_node(
        "sam2_params_test",
        context=context,
        start_parameter_services=False,
        parameter_overrides=[Parameter("image_transport", value="theora")],
    )
    try:
        with pytest.raises(ParameterError, match="image_transport must be one of raw"):
            declare_parameters(node)
    finally:
        node.destroy_node()


def test_declare_parameters_reads_overrides(context):
    node = rclpy.create_node(
        "sam2_params_test2",
        context=context,
        start_parameter_services=False,
        parameter_overrides=[
            Parameter("max_objects", value=5),
            Parameter("image_transport", value="compressed"),
        ],
    )
    try:
        params = declare_parameters(node)
        assert params.max_objects == 5 and params.image_transport == "compressed"
        assert params.model == "sam2_ros_demo"  # the default: the bundled demo model
        refused = node.set_parameters([Parameter("model", value="sam2.1_hiera_l")])[0]
        assert not refused.successful and "read-only" in refused.reason
    finally:
        node.destroy_node()


# ---------------------------------------------------------------------- image conversions
def _image(array: np.ndarray, encoding: str, step: int | None = None, data=None) -> Image:
    if data is None:
        if encoding in ("mono16", "16UC1"):
            data, step = encode_mono16(array)
        elif encoding == "32FC1":
            data, step = array.astype(np.float32).tobytes(), array.shape[1] * 4
        else:
            data, step = encode_rgb(array, encoding)
    return Image(
        height=array.shape[0], width=array.shape[1], encoding=encoding, step=step, data=data
    )


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8"])
def test_image_to_rgb_matches_the_core_codec(encoding):
    rgb = next(iter(render_scene(SceneConfig(width=64, height=48, duration_s=0.1)))).rgb
    msg = _image(rgb, encoding)
    expected = decode_image(bytes(msg.data), msg.height, msg.width, encoding, msg.step)
    got = image_msg_to_rgb(msg)
    assert got.dtype == np.uint8 and got.shape == (48, 64, 3)
    np.testing.assert_array_equal(got, expected)
    if encoding != "mono8":
        np.testing.assert_array_equal(got, rgb)


def test_padded_rows_and_mono16():
    values = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    data, step = encode_mono16(values)
    padded = b"".join(data[r * step : (r + 1) * step] + b"\0\0\0\0" for r in range(3))
    got = image_msg_to_rgb(_image(values, "mono16", step + 4, padded))
    np.testing.assert_array_equal(got[:, :, 0], (values >> 8).astype(np.uint8))


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"encoding": "nv21"}, "unsupported image encoding 'nv21'"),
        ({"step": 10}, "step 10 is smaller than one row"),
        ({"height": 100}, "data too short"),
        ({"width": 0, "height": 0}, "zero size"),
    ],
)
def test_bad_images_raise_image_decode_error(changes, needle):
    msg = _image(np.zeros((4, 5, 3), np.uint8), "rgb8")
    for field, value in changes.items():
        setattr(msg, field, value)
    with pytest.raises(ImageDecodeError, match=needle):
        image_msg_to_rgb(msg)


def test_compressed_round_trip_and_corrupt_data():
    rgb = next(iter(render_scene(SceneConfig(width=64, height=48, duration_s=0.1)))).rgb
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    got = compressed_msg_to_rgb(CompressedImage(format="png", data=png.tobytes()))
    np.testing.assert_array_equal(got, rgb)
    for data in (b"", b"\xff\xd8 not a jpeg"):
        with pytest.raises(ImageDecodeError, match="compressed image"):
            compressed_msg_to_rgb(CompressedImage(format="jpeg", data=data))


def test_depth_to_metres_matches_the_core_codec():
    mm = np.array([[0, 1000], [2500, 65535]], dtype=np.uint16)
    msg = _image(mm, "16UC1")
    got = depth_msg_to_metres(msg, 0.001)
    expected = decode_depth(bytes(msg.data), 2, 2, "16UC1", msg.step, depth_scale=0.001)
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[0, 0]) and got[0, 1] == pytest.approx(1.0)
    metres = np.array([[np.nan, 1.5], [-1.0, np.inf]], dtype=np.float32)
    got = depth_msg_to_metres(_image(metres, "32FC1"), 0.001)
    assert got[0, 1] == pytest.approx(1.5) and np.isnan(got[[0, 1, 1], [0, 0, 1]]).all()
    with pytest.raises(ImageDecodeError, match="unsupported depth encoding 'rgb8'"):
        depth_msg_to_metres(_image(np.zeros((2, 2, 3), np.uint8), "rgb8"), 0.001)


def test_mask_to_array():
    assert mask_msg_to_array(Image()) is None
    mask = np.zeros((4, 5), np.uint8)
    mask[1:3, 2:4] = 255
    np.testing.assert_array_equal(mask_msg_to_array(_image(mask, "mono8")), mask)
    with pytest.raises(ImageDecodeError, match="mask must be mono8"):
        mask_msg_to_array(_image(np.zeros((4, 5, 3), np.uint8), "rgb8"))


# ---------------------------------------------------------------------- depth and markers
def _result(object_id: int, mask: np.ndarray, label: str = "") -> ObjectResult:
    ys, xs = np.nonzero(mask)
    return ObjectResult(
        object_id,
        label,
        True,
        0.9,
        0.8,
        mask,
        (int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1),
        (float(xs.mean()), float(ys.mean())),
        int(mask.sum()),
        0,
        logits_source=lambda: mask.astype(np.float32) * 10 - 5,
    )


def test_depth_positions_from_the_scene_and_nan_depth():
    cfg = SceneConfig(width=64, height=48, duration_s=0.1)
    frame = next(iter(render_scene(cfg)))
    fx, fy, cx, cy = camera_intrinsics(cfg)
    k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    results = [
        _result(o.id, frame.labels == o.id, f"obj{o.id}")
        for o in frame.objects
        if o.visible and o.area >= 10
    ]
    positions = depth_positions(results, frame.depth_m, k, (64, 48))
    truth = {o.id: o.depth_m for o in frame.objects}
    assert positions and all(
        positions[i][2] == pytest.approx(truth[i], rel=0.05) for i in positions
    )
    # CameraInfo of a 2x larger image: K is scaled to the depth image, same result.
    k2 = [2 * fx, 0.0, 2 * cx + 0.5, 0.0, 2 * fy, 2 * cy + 0.5, 0.0, 0.0, 1.0]
    scaled = depth_positions(results, frame.depth_m, k2, (128, 96))
    for i in positions:
        np.testing.assert_allclose(scaled[i], positions[i], rtol=1e-5)
    with pytest.raises(ImageDecodeError, match="no valid pixel"):
        depth_positions(results, np.full((48, 64), np.nan, np.float32), k, (64, 48))
    with pytest.raises(ValueError, match="camera_info K is not usable"):
        depth_positions(results, frame.depth_m, [0.0] * 9, (64, 48))

    markers = build_markers(Header(frame_id="cam"), results, positions).markers
    assert markers[0].action == markers[0].DELETEALL
    assert len(markers) == 1 + 2 * len(positions)
    spheres = [m for m in markers[1:] if m.type == m.SPHERE]
    texts = [m for m in markers[1:] if m.type == m.TEXT_VIEW_FACING]
    assert sorted(m.id for m in spheres) == sorted(positions)
    assert all(m.header.frame_id == "cam" for m in markers)
    assert any("obj" in t.text for t in texts)


def test_depth_that_gives_no_position_says_why_in_the_depth_state():
    """All NaN, all zero, data shorter than its size, an uncalibrated K, no valid depth
    under a visible object: each leaves a reason in the state /diagnostics shows, as stale
    depth does; a good pair brings it back to ok."""
    cfg = SceneConfig(width=64, height=48, duration_s=0.1)
    frame = next(iter(render_scene(cfg)))
    fx, fy, cx, cy = camera_intrinsics(cfg)
    good_k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    results = [_result(o.id, frame.labels == o.id) for o in frame.objects
               if o.visible and o.area >= 10]
    millimetres = np.nan_to_num(frame.depth_m * 1000).astype(np.uint16)
    holed = frame.depth_m.copy()
    holed[frame.labels == results[0].object_id] = np.nan
    short = _image(millimetres, "16UC1")
    short.data = bytes(short.data)[:-2]
    cases = [
        (_image(np.full((48, 64), np.nan, np.float32), "32FC1"), good_k, "no valid pixel"),
        (_image(np.zeros((48, 64), np.uint16), "16UC1"), good_k, "no valid pixel"),
        (short, good_k, "data too short"),
        (_image(frame.depth_m, "32FC1"), [0.0] * 9, "camera_info K is not usable"),
        (_image(holed, "32FC1"), good_k, f"visible objects [{results[0].object_id}]"),
        (_image(frame.depth_m, "32FC1"), good_k, None),
    ]
    for stamp, (depth_msg, k, reason) in enumerate(cases, start=1):
        pairing = DepthPairing(0.05)
        header = Header(frame_id="cam")
        header.stamp.sec = stamp
        depth_msg.header = header
        pairing.add_depth(depth_msg)
        pairing.add_info(CameraInfo(header=header, width=64, height=48, k=k))
        if reason is None:
            assert len(pairing.positions(header, results, 0.001)) == len(results)
            assert pairing.state == "ok"
        elif "visible objects" in reason:
            assert len(pairing.positions(header, results, 0.001)) == len(results) - 1
            assert reason in pairing.state
        else:
            with pytest.raises(ValueError, match=reason):
                pairing.positions(header, results, 0.001)
            assert pairing.state.startswith("no positions:") and reason in pairing.state


def test_diagnostics_describe_the_recent_past():
    """A failing frame is an ERROR while frames fail, a WARN once frames are tracked again,
    and gone once it leaves the window; ignored messages are warned about with their kind."""
    now = [100.0]
    stats = NodeStats(window_s=10.0, clock=lambda: now[0])
    assert stats.problems() == ([], [])
    stats.frame_failed()
    stats.frame_failed()
    warnings, errors = stats.problems()
    assert errors == ["frames failing: 2 in the last 10 s (see the log)"] and warnings == []
    now[0] = 101.0
    stats.frame_done(100.9, 101.0, {"total": 0.1})
    stats.bad_message("image: odd-width yuv422")
    warnings, errors = stats.problems()
    assert errors == []
    assert warnings == ["2 frames failed in the last 10 s, tracking again",
                        "messages ignored in the last 10 s: image: odd-width yuv422 x1"]
    now[0] = 111.0
    assert stats.problems() == ([], [])
    assert stats.snapshot(5, 0)["frames_failed"] == 2.0  # the total stays a value


def test_latency_from_stamps_of_another_clock_is_left_out():
    """A bag stamped in 2023 replayed without its clock: its frames' stamp ages are years,
    not a latency; the summary falls back to receipt-to-publication latency."""
    now = [100.0]
    stats = NodeStats(window_s=10.0, clock=lambda: now[0])
    stats.frame_done(100.0, 100.05, {"total": 0.05}, stamp_age_s=0.08)
    now[0] = 101.0
    assert stats.snapshot(1, 0)["latency_from_stamp_ms"] == pytest.approx(80.0)
    for age in (3.0e7, -0.5):  # a 2023 bag; a stamp from a clock ahead of ours
        stats.frame_done(now[0], now[0] + 0.05, {"total": 0.05}, stamp_age_s=age)
        now[0] += 1.0
        snap = stats.snapshot(2, 0)
        assert snap["latency_from_stamp_ms"] == 0.0
        assert snap["latency_ms"] == pytest.approx(50.0)


# ---------------------------------------------------------------------- received frames
def test_received_frames_are_bounded_by_bytes_as_well_as_by_count():
    """Large images fill the byte budget long before the count: the oldest go first, the
    newest always stays, and dropping frames gives their bytes back."""
    frame_bytes = 640 * 480 * 3
    frames = ReceivedFrames(capacity=100, max_bytes=5 * frame_bytes)

    def message(stamp: int, size: int = frame_bytes) -> Image:
        return Image(height=1, width=size // 3, encoding="rgb8", step=size, data=bytes(size))

    for stamp in range(1, 21):
        frames.add(stamp, message(stamp))
    assert len(frames) == 5 and frames.bytes == 5 * frame_bytes
    assert frames.get(15) is None and frames.get(16) is not None and frames.newest() == 20
    frames.add(21, message(21, 8 * frame_bytes))  # larger than the budget alone: still kept
    assert len(frames) == 1 and frames.get(21) is not None
    frames.forget_before(22)
    assert len(frames) == 0 and frames.bytes == 0
    counted = ReceivedFrames(capacity=3, max_bytes=10**9)
    for stamp in range(10):
        counted.add(stamp, message(stamp, 30))
    assert len(counted) == 3 and counted.bytes == 90


def test_the_node_bounds_received_frames_by_its_parameter(context):
    from dataclasses import replace

    from sam2_ros.ros.tracker_shell import TrackerShell

    node = rclpy.create_node("sam2_received_bound", context=context)
    shell = TrackerShell(node, replace(_defaults(), received_frames_mb=3, prompt_history=4))
    try:
        received = shell.cameras[0]._received
        assert received.max_bytes == 3_000_000 and received.capacity == 40
    finally:
        shell.teardown()
        node.destroy_node()


def test_the_node_scales_16_bit_frames_by_the_stream_depth_until_a_reset(context):
    """Dark frames of a 12-bit camera keep the brightness scale of the bright ones (the
    frames a prompt names are decoded alike); resetting all objects starts over."""
    from sam2_ros.ros.tracker_shell import TrackerShell

    node = rclpy.create_node("sam2_bit_depth", context=context)
    shell = TrackerShell(node, _defaults())
    try:
        def grey(value: int) -> int:
            msg = _image(np.full((2, 2), value, np.uint16), "mono16")
            return int(shell.cameras[0].decode(msg)[0, 0, 0])

        assert (grey(4000), grey(800)) == (250, 50)
        shell.cameras[0].stream_restarted()  # what reset-all (and a jump back in time) call
        assert grey(800) == 200
    finally:
        shell.teardown()
        node.destroy_node()


# ---------------------------------------------------------------------- warning throttle
class _Logger:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def error(self, text: str) -> None:
        self.errors.append(text)


def test_warnings_are_throttled_by_the_kind_of_failure_not_its_text():
    """Short-data images of changing sizes are one fault: one warning per period, with
    the repeats counted; another kind of fault gets its own warning."""
    now = [0.0]
    logger = _Logger()
    throttle = WarnThrottle(logger, period_s=5.0, clock=lambda: now[0])
    for size in range(50, 60):  # the message names the size, the kind does not
        try:
            image_msg_to_rgb(_image(np.zeros((4, 5, 3), np.uint8), "rgb8", 15, bytes(size)))
        except ImageDecodeError as exc:
            throttle.warn(f"image: {failure_kind(exc)}", f"bad image: {exc}")
    try:
        image_msg_to_rgb(_image(np.zeros((4, 5), np.uint8), "yuv422", 10, bytes(40)))
    except ImageDecodeError as exc:
        throttle.warn(f"image: {failure_kind(exc)}", f"bad image: {exc}")
    assert len(logger.warnings) == 2
    assert "got 50" in logger.warnings[0] and "even width" in logger.warnings[1]
    now[0] = 5.0
    throttle.warn("image: data too short", "bad image again")
    assert logger.warnings[-1] == "bad image again (9 more like it since the last warning)"
    assert failure_kind(ValueError("same stamp 123")) == "ValueError"


def test_a_lasting_processing_fault_logs_its_error_once_per_period():
    """The worker's failures go through the throttle at error level: a fault that fails
    every frame logs its traceback once per period, then how many frames it failed."""
    now = [0.0]
    logger = _Logger()
    throttle = WarnThrottle(logger, period_s=5.0, clock=lambda: now[0])
    for frame in range(30):
        throttle.warn("frame processing: RuntimeError", f"failed on frame {frame}", level="error")
    assert logger.errors == ["failed on frame 0"] and not logger.warnings
    now[0] = 6.0
    throttle.warn("frame processing: RuntimeError", "failed on frame 30", level="error")
    assert logger.errors[-1] == "failed on frame 30 (29 more like it since the last warning)"


def test_the_warning_throttle_forgets_the_least_recent_kinds():
    logger = _Logger()
    throttle = WarnThrottle(logger, period_s=60.0, max_kinds=8, clock=lambda: 0.0)
    for i in range(1000):
        throttle.warn(f"kind {i}", f"text {i}")
    assert len(throttle) == 8 and len(logger.warnings) == 1000
    throttle.warn("kind 999", "repeat")  # still remembered: throttled
    assert len(logger.warnings) == 1000


# ---------------------------------------------------------------------- service handlers
class _Log:
    def __init__(self):
        self.lines = []

    def info(self, text):
        self.lines.append(("info", text))

    def error(self, text):
        self.lines.append(("error", text))


@pytest.fixture(scope="module")
def tracker():
    loaded = build_model("sam2.1_hiera_t", image_size=64, device="cpu")
    return StreamingTracker(loaded, max_objects=2)


def test_service_handlers_map_errors_to_failed_responses(tracker):
    resets = []
    handlers = TrackerServices(
        lambda: tracker, _Log(), ReceivedFrames(8), lambda msg: None, 1.0,
        on_reset_all=lambda: resets.append(1),
    )
    tracker.reset()
    request = AddPrompt.Request(points=[Point(x=10.0, y=10.0)], point_labels=[1])
    response = handlers.add_prompt(request, AddPrompt.Response())
    assert not response.success and "no frame has been tracked yet" in response.message

    frame = next(iter(render_scene(SceneConfig(width=64, height=48, duration_s=0.1))))
    tracker.track(frame.rgb, frame.stamp_ns)
    response = handlers.add_prompt(request, AddPrompt.Response())
    assert response.success, response.message
    assert stamp_to_ns(response.frame_stamp) == frame.stamp_ns

    bad_mask = AddPrompt.Request(mask=_image(np.ones((4, 4), np.uint8), "mono8"))
    response = handlers.add_prompt(bad_mask, AddPrompt.Response())
    assert not response.success and "mask is 4x4 but the frame is 64x48" in response.message
    negative = AddPrompt.Request(object_id=-3, points=[Point(x=1.0, y=1.0)], point_labels=[1])
    response = handlers.add_prompt(negative, AddPrompt.Response())
    assert not response.success and "object_id must be 0" in response.message

    removed = handlers.remove_objects(
        RemoveObjects.Request(object_ids=[42]), RemoveObjects.Response()
    )
    assert not removed.success and "unknown object id 42" in removed.message
    assert list(removed.remaining_ids) == tracker.object_ids
    reset = handlers.reset(ResetTracks.Request(), ResetTracks.Response())
    assert reset.success and resets == [1] and tracker.object_ids == []


# ---------------------------------------------------------------------- depth path in process
def test_paired_depth_frames_and_diagnostics_in_process(context):
    """What the node does with bad input and failures, and what /diagnostics says of them:
    NaN-only depth and an uncalibrated camera_info are reported with their reason and the
    frames still published; an odd-width YUV 4:2:2 image is an ignored message (not a
    failed frame); a frame that fails makes the status ERROR only until frames are tracked
    again."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.executors import SingleThreadedExecutor
    from ros_processes import Inbox, image_msg, set_stamp, wait_until
    from sam2_ros.msg import TrackedObjectArray

    from sam2_ros.ros.tracker_node import TrackerNode

    node = TrackerNode(
        context=context,
        parameter_overrides=[
            Parameter("model", value="sam2.1_hiera_t"),
            Parameter("image_size", value=64),
            Parameter("use_depth", value=True),
            Parameter("diagnostics_period", value=0.0),
        ],
    )
    shell = node.shell
    probe = rclpy.create_node("sam2_depth_probe", context=context)
    inbox, diagnostics = Inbox(), Inbox()
    subscription = probe.create_subscription(
        TrackedObjectArray, names.resolved(names.OBJECTS), inbox, 10
    )
    diag_sub = probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    def status() -> DiagnosticStatus:
        seen = len(diagnostics.messages)
        shell._publish_diagnostics()
        return diagnostics.wait_for(
            lambda m: diagnostics.messages.index(m) >= seen, 30, "a diagnostics message"
        ).status[0]

    try:
        wait_until(lambda: subscription.get_publisher_count() > 0, 30, "the objects publisher")
        wait_until(lambda: diag_sub.get_publisher_count() > 0, 30, "the diagnostics publisher")
        cfg = SceneConfig(width=64, height=48, duration_s=0.5)
        frames = list(render_scene(cfg))
        fx, fy, cx, cy = camera_intrinsics(cfg)
        good_k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]

        def send(frame, depth=None, k=good_k) -> None:
            image = image_msg(frame.rgb, frame.stamp_ns, "cam")
            depth_msg = _image(frame.depth_m if depth is None else depth, "32FC1")
            info = CameraInfo(width=64, height=48, k=k)
            for msg in (depth_msg, info):
                set_stamp(msg.header, frame.stamp_ns, "cam")
            shell.cameras[0]._depth.add_depth(depth_msg)
            shell.cameras[0]._depth.add_info(info)
            shell.cameras[0]._on_image(image)
            assert shell._slot.wait_idle(60)

        send(frames[0], np.full((48, 64), np.nan, np.float32))
        assert inbox.with_stamp(frames[0].stamp_ns, 60).header.frame_id == "cam"
        assert "depth: no positions: depth image (64x48) has no valid pixel" in status().message
        send(frames[1])
        inbox.with_stamp(frames[1].stamp_ns, 60)
        # the NaN-only depth image, not the good one
        assert shell.cameras[0]._stats.bad_messages == 1
        assert "depth: no positions" not in status().message

        odd = Image(height=48, width=63, encoding="yuv422", step=126, data=bytes(126 * 48))
        set_stamp(odd.header, frames[2].stamp_ns, "cam")
        shell.cameras[0]._on_image(odd)
        assert shell._slot.wait_idle(60)
        first = status()
        assert first.level != DiagnosticStatus.ERROR, first.message
        assert "image: odd-width yuv422 x1" in first.message

        track = shell.tracker.track
        shell.tracker.track = lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("boom"))
        try:
            send(frames[3])
        finally:
            shell.tracker.track = track
        failing = status()
        assert failing.level == DiagnosticStatus.ERROR
        assert "frames failing: 1 in the last 10 s" in failing.message

        send(frames[4], k=[0.0] * 9)
        inbox.with_stamp(frames[4].stamp_ns, 60)
        recovered = status()
        assert recovered.level == DiagnosticStatus.WARN, recovered.message
        assert "1 frames failed in the last 10 s, tracking again" in recovered.message
        assert "depth: no positions: camera_info K is not usable" in recovered.message
    finally:
        executor.shutdown(timeout_sec=5)
        spinner.join(5)
        node.destroy_node()
        probe.destroy_node()


def test_generated_parameter_docs_are_current():
    """config/tracker.yaml and docs/parameters.md's table are generated from
    settings.PARAMETERS."""
    from sam2_ros.settings import parameters_markdown, parameters_yaml

    assert (REPO / "config" / "tracker.yaml").read_text() == parameters_yaml(), (
        "run: sam2_ros params --format yaml > config/tracker.yaml"
    )
    assert parameters_markdown() in (REPO / "docs" / "parameters.md").read_text(), (
        "paste `sam2_ros params --format markdown` into docs/parameters.md's table"
    )


def test_frame_messages_are_the_node_and_replays_one_output_with_one_visible_rule():
    """The node (rclpy classes) and replay (rosbags classes) build a frame's outputs with one
    function, so they agree; an object is shown (label image, mask and box, overlay) only
    when SAM 2 says it is visible and its mask has pixels."""
    from sam2_ros.bags.bag_io import rosbags_message_types
    from sam2_ros.imaging.codec import image_msg_to_array
    from sam2_ros.imaging.masks import mask_stats
    from sam2_ros.imaging.overlay import object_color
    from sam2_ros.messages import frame_messages
    from sam2_ros.ros.tracker_shell import message_types
    from sam2_ros.track_state import OCCLUDED, TRACKING, TrackStates

    h, w = 48, 64
    rgb = np.full((h, w, 3), 90, np.uint8)

    def result(object_id: int, visible: bool, box: tuple[int, int, int, int] | None):
        mask = np.zeros((h, w), bool)
        if box is not None:
            mask[box[0] : box[1], box[2] : box[3]] = True
        logits = np.where(mask, 5.0, -5.0).astype(np.float32)
        stats = mask_stats(mask)
        return ObjectResult(
            object_id, f"o{object_id}", visible, 0.9 if visible else 0.1, 0.8, mask,
            stats.bbox, stats.centroid, stats.area, 0, logits_source=lambda: logits,
        )  # fmt: skip

    shown = result(1, True, (4, 20, 4, 40))
    empty = result(2, True, None)  # visible by the occlusion head, no pixel at camera size
    hidden = result(3, False, (30, 44, 40, 60))  # a mask, but SAM 2 says it is not there
    outs = [
        frame_messages(
            types, 7, "cam", rgb, [shown, empty, hidden], TrackStates(), 0, overlay_alpha=1.0
        )
        for types in (message_types(), rosbags_message_types())
    ]
    assert not any(r.shown for r in (empty, hidden)) and shown.shown
    node, replay = outs
    for out in outs:
        labels = image_msg_to_array(out.labels)
        assert labels[10, 20] == 1 and not (labels == 2).any() and not (labels == 3).any()
        one, two, three = out.objects.objects
        assert (one.visible, two.visible, three.visible) == (True, True, False)
        assert one.area == 16 * 36 and one.mask.width == 36 and one.mask.height == 16
        assert (two.area, two.mask.width, three.area, three.bbox.width) == (0, 0, 0, 0)
        assert out.states == {1: (TRACKING, 0.0), 2: (TRACKING, 0.0), 3: (OCCLUDED, 0.0)}
        np.testing.assert_array_equal(out.overlay_bgr[18, 6], object_color(1))
        np.testing.assert_array_equal(out.overlay_bgr[40, 58], [90, 90, 90])  # not drawn
    for field in ("overlay", "labels"):
        np.testing.assert_array_equal(
            image_msg_to_array(getattr(node, field)), image_msg_to_array(getattr(replay, field))
        )
    without = frame_messages(rosbags_message_types(), 7, "cam", rgb, [shown], TrackStates(), 0)
    assert without.overlay is None and without.overlay_bgr is None  # nobody asked for it


def test_an_object_hidden_behind_others_is_occluded_with_its_predicted_box_flagged():
    """Motion mode's predicted box of an unseen object reaches ~/objects flagged
    box_predicted while it is OCCLUDED, for the node's and replay's classes alike; covered
    by other objects it stays OCCLUDED past occluded_frames, uncovered it turns LOST and
    its box goes. Without a prediction (sam2 mode) the box is zeros, as always."""
    from sam2_ros.bags.bag_io import rosbags_message_types
    from sam2_ros.messages import frame_messages
    from sam2_ros.ros.tracker_shell import message_types
    from sam2_ros.track_state import LOST, OCCLUDED, TRACKING, TrackStates

    h, w = 48, 64
    rgb = np.zeros((h, w, 3), np.uint8)
    seen_mask = np.zeros((h, w), bool)
    seen_mask[10:30, 20:50] = True

    def frame(covered: bool, predicted: bool) -> list[ObjectResult]:
        seen = ObjectResult(1, "box", True, 0.9, 0.8, seen_mask, (20, 10, 30, 20),
                            (34.5, 19.5), 600, 3)
        hidden = ObjectResult(2, "mug", False, 0.1, 0.3, np.zeros((h, w), bool), (0, 0, 0, 0),
                              (0.0, 0.0), 0, 3,
                              predicted_box=(24, 12, 10, 8) if predicted else None,
                              covered=covered)
        return [seen, hidden]

    for types in (message_types(), rosbags_message_types()):
        tracks = TrackStates(occluded_frames=1)
        got = []
        for covered in (False, True, True, True, False, False):
            out = frame_messages(types, 7 + len(got), "cam", rgb, frame(covered, True),
                                 tracks, 0)
            got.append(out.objects.objects)
        states = [hidden.state for _, hidden in got]
        assert states == [OCCLUDED, OCCLUDED, OCCLUDED, OCCLUDED, LOST, LOST]
        for seen, hidden in got:
            assert seen.state == TRACKING and not seen.box_predicted
            assert (seen.bbox.x_offset, seen.bbox.width) == (20, 30)
            box = (hidden.bbox.x_offset, hidden.bbox.y_offset, hidden.bbox.width,
                   hidden.bbox.height)
            if hidden.state == OCCLUDED:
                assert hidden.box_predicted and box == (24, 12, 10, 8)
            else:
                assert not hidden.box_predicted and box == (0, 0, 0, 0)
            assert hidden.area == 0 and hidden.mask.width == 0 and not hidden.visible
        sam2 = frame_messages(types, 7, "cam", rgb, frame(False, False), TrackStates(), 0)
        hidden = sam2.objects.objects[1]
        assert hidden.state == OCCLUDED and not hidden.box_predicted
        assert (hidden.bbox.width, hidden.bbox.height) == (0, 0)


# ---------------------------------------------------------------------- lost objects
def test_lost_objects_are_removed_even_if_never_seen_or_removed_meanwhile(context):
    """remove_lost_after: an object never visible is removed once lost for that long, and
    one a service removed in the meantime is skipped, not a failed frame."""
    from sam2_ros.engine.results import FrameResult
    from sam2_ros.ros.tracker_node import TrackerNode

    node = TrackerNode(
        context=context,
        parameter_overrides=[
            Parameter("model", value="sam2.1_hiera_t"),
            Parameter("image_size", value=64),
            Parameter("occluded_frames", value=0),
            Parameter("remove_lost_after", value=1.0),
            Parameter("diagnostics_period", value=0.0),
        ],
    )
    try:
        frame = next(iter(render_scene(SceneConfig(width=64, height=48, duration_s=0.1))))
        tracker = node.shell.tracker
        tracker.track(frame.rgb, 1)
        known = tracker.add_prompt(points=[[20, 20]], labels=[1]).object_id

        def unseen(object_id: int) -> ObjectResult:
            empty = np.zeros((48, 64), bool)
            return ObjectResult(object_id, "", False, 0.0, 0.1, empty, (0, 0, 0, 0),
                                (0.0, 0.0), 0, 1)

        header = Header(frame_id="cam")
        for stamp in (10**9, 3 * 10**9):  # never visible, 2 s apart; 99 is already gone
            result = FrameResult(0, stamp, (48, 64), [unseen(known), unseen(99)])
            node.shell.cameras[0]._publish(header, stamp, frame.rgb, result)
        assert tracker.object_ids == []  # the never-seen object was removed
    finally:
        node.destroy_node()
