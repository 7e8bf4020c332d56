"""The sam2_tracker node end to end: a real node process, real rclpy, real DDS, no mocks.

One node process per configuration, shared by the tests of this module (module-scoped
fixtures): the main one (raw images, reliable QoS, max_objects 3, prompt_history 4, in a
unique namespace, parameters from config/tracker.yaml plus an override file) and one with
image_transport compressed and use_depth. SAM 2 runs at image_size 64 with random
weights on 64x48 frames of the synthetic scene, so masks are meaningless but every code
path (prompts, memory, re-tracking, outputs) is the real one.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Point
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_processes import (
    REPO,
    START_WAIT,
    NodeProcess,
    RosClient,
    image_msg,
    set_stamp,
    stamp_of,
    unique_domain_and_namespace,
    wait_until,
)
from sam2_ros.msg import TrackedObject, TrackedObjectArray
from sam2_ros.srv import AddPrompt, RemoveObjects, ResetTracks
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from sam2_ros import names
from sam2_ros.evaluation.synthetic_scene import BASE_STAMP_S, SceneConfig, render_scene
from sam2_ros.imaging.codec import decode_image
from sam2_ros.messages import stamp_to_ns

SCENE = SceneConfig(width=64, height=48, fps=10.0, duration_s=2.0, num_objects=2)
FRAME_ID = "camera_color_optical_frame"
WAIT = 60.0  # generous: other jobs may share the CPU
IN_FLIGHT = 100  # service requests a test may keep in flight (the default history holds 10)


class Harness:
    """The test side of one node process: publishers, inboxes, service clients, stamps."""

    def __init__(self, node: NodeProcess, client: RosClient, ns: str, compressed: bool = False,
                 camera: str = ""):
        """``camera``: one of the node's ``cameras`` (its topics and services under
        ``camera/``); empty for a node without."""
        self.node, self.client, self.ns = node, client, ns
        self.camera = camera
        self.scene = list(render_scene(SCENE))
        self._count = 0
        self._lock = threading.Lock()
        self.compressed = compressed
        inputs = f"{ns}/{camera}" if camera else ns
        topic = f"{inputs}/image/compressed" if compressed else f"{inputs}/image"
        self.image_pub = client.publisher(CompressedImage if compressed else Image, topic)
        self.depth_pub = client.publisher(Image, f"{inputs}/depth")
        self.info_pub = client.publisher(CameraInfo, f"{inputs}/camera_info")
        base = f"{ns}/sam2_tracker"
        self.set_params = client.client(SetParameters, f"{base}/set_parameters")
        base = f"{base}/{camera}" if camera else base
        self.masks = client.subscribe(Image, f"{base}/masks")
        self.objects = client.subscribe(TrackedObjectArray, f"{base}/objects")
        self.overlay = client.subscribe(Image, f"{base}/overlay")
        self.diagnostics = client.subscribe(DiagnosticArray, names.DIAGNOSTICS_TOPIC)
        node.wait_ready()
        # Tests keep up to 50 requests in flight: clients whose history holds them all.
        self.add_prompt = client.client(AddPrompt, f"{base}/add_prompt", depth=IN_FLIGHT)
        self.remove = client.client(RemoveObjects, f"{base}/remove_objects", depth=IN_FLIGHT)
        self.reset_srv = client.client(ResetTracks, f"{base}/reset", depth=IN_FLIGHT)
        client.wait_for_matches(
            [self.image_pub], [self.masks, self.objects, self.overlay, self.diagnostics], WAIT
        )
        RosClient.publish_until_answered(
            lambda stamp: self.publish(0, stamp),
            (self.masks, self.objects, self.overlay),
            self.next_stamp(),
            "the node's first masks, objects and overlay",
        )

    # ------------------------------------------------------------------ frames
    def next_stamp(self) -> int:
        with self._lock:
            self._count += 1
            return BASE_STAMP_S * 1_000_000_000 + self._count * 100_000_000

    def rgb(self, index: int) -> np.ndarray:
        return self.scene[index % len(self.scene)].rgb

    def publish(
        self,
        index: int = 0,
        stamp: int | None = None,
        depth: np.ndarray | None = None,
        with_depth: bool = True,
    ) -> int:
        """Publish frame ``index`` with depth and camera_info of the same stamp."""
        stamp = self.next_stamp() if stamp is None else stamp
        rgb = self.rgb(index)
        if self.compressed:
            ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            assert ok
            msg = CompressedImage(format="png", data=png.tobytes())
            set_stamp(msg.header, stamp, FRAME_ID)
        else:
            msg = image_msg(rgb, stamp, FRAME_ID)
        if with_depth:
            self.publish_depth(
                stamp, self.scene[index % len(self.scene)].depth_m if depth is None else depth
            )
        self.image_pub.publish(msg)
        return stamp

    def publish_depth(self, stamp: int, depth: np.ndarray, millimetres: bool = False) -> None:
        """Depth (32FC1 metres, or 16UC1 millimetres as RGB-D cameras send it) and the
        scene's camera_info, stamped ``stamp``."""
        if millimetres:
            mm = np.nan_to_num(depth * 1000.0).astype(np.uint16)
            depth_msg = Image(height=depth.shape[0], width=depth.shape[1], encoding="16UC1",
                              step=depth.shape[1] * 2, data=mm.tobytes())
        else:
            depth_msg = Image(height=depth.shape[0], width=depth.shape[1], encoding="32FC1",
                              step=depth.shape[1] * 4, data=depth.astype(np.float32).tobytes())
        set_stamp(depth_msg.header, stamp, FRAME_ID)
        fx = 0.8 * SCENE.width
        info = CameraInfo(
            width=SCENE.width,
            height=SCENE.height,
            k=[fx, 0.0, SCENE.width / 2, 0.0, fx, SCENE.height / 2, 0.0, 0.0, 1.0],
        )
        set_stamp(info.header, stamp, FRAME_ID)
        self.depth_pub.publish(depth_msg)
        self.info_pub.publish(info)

    def process(self, index: int = 0, stamp: int | None = None, **kw):
        """Publish a frame and wait for its masks and objects; returns (stamp, masks, objects)."""
        stamp = self.publish(index, stamp, **kw)
        return stamp, self.masks.with_stamp(stamp, WAIT), self.objects.with_stamp(stamp, WAIT)

    # ------------------------------------------------------------------ services
    def prompt(
        self,
        object_id: int = 0,
        points=(),
        labels=(),
        box=None,
        mask=None,
        stamp: int = 0,
        label: str = "",
        clear_previous: bool = False,
    ):
        request = AddPrompt.Request(object_id=object_id, label=label, clear_previous=clear_previous)
        request.stamp.sec, request.stamp.nanosec = divmod(int(stamp), 1_000_000_000)
        request.points = [Point(x=float(x), y=float(y)) for x, y in points]
        request.point_labels = [int(v) for v in labels]
        if box is not None:
            request.use_box = True
            request.box = [float(v) for v in box]
        if mask is not None:
            request.mask = mask
        return request

    def call_prompt(self, **kw):
        return RosClient.call(self.add_prompt, self.prompt(**kw), WAIT)

    def reset(self, ids=()):
        response = RosClient.call(self.reset_srv, ResetTracks.Request(object_ids=list(ids)), WAIT)
        assert response.success, response.message
        return response


def _start(tmp_path_factory, name: str, overrides: dict, extra_args=(), compressed=False,
           camera: str = ""):
    domain, ns = unique_domain_and_namespace(name)
    tmp = tmp_path_factory.mktemp(name)
    override_file = tmp / "overrides.yaml"
    override_file.write_text(yaml.safe_dump({"/**/sam2_tracker": {"ros__parameters": overrides}}))
    node = NodeProcess(
        [
            "--params-file",
            str(REPO / "config" / "tracker.yaml"),
            "--params-file",
            str(override_file),
            "-p",
            "model:=sam2.1_hiera_t",  # random weights at 64 px: the node's machinery only
            "-p",
            "image_size:=64",
            "-p",
            "qos_reliability:=reliable",
            *extra_args,
            "-r",
            f"__ns:={ns}",
        ],
        domain,
        tmp,
    )
    client = RosClient(domain)
    try:
        return Harness(node, client, ns, compressed=compressed, camera=camera)
    except BaseException:
        client.close()
        node.stop()
        raise


def _stop(harness: Harness) -> None:
    harness.client.close()
    code = harness.node.stop()
    assert code == 0, f"node exited with {code}; log tail:\n{harness.node.tail()}"


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    harness = _start(
        tmp_path_factory,
        "sam2_node",
        {"max_objects": 3, "prompt_history": 4, "diagnostics_period": 0.5},
    )
    yield harness
    _stop(harness)


@pytest.fixture(scope="module")
def ros_compressed(tmp_path_factory):
    harness = _start(
        tmp_path_factory,
        "sam2_node_cd",
        {"image_transport": "compressed", "use_depth": True, "frame_id_override": "override_frame",
         "preprocessing": "device", "diagnostics_period": 0.5},
        compressed=True,
    )
    yield harness
    _stop(harness)


def mono8(mask: np.ndarray) -> Image:
    mask = np.ascontiguousarray(mask.astype(np.uint8) * 255)
    return Image(
        height=mask.shape[0],
        width=mask.shape[1],
        encoding="mono8",
        step=mask.shape[1],
        data=mask.tobytes(),
    )


def label_array(msg: Image) -> np.ndarray:
    assert msg.encoding == "16UC1"
    return np.frombuffer(bytes(msg.data), dtype=np.uint16).reshape(msg.height, msg.width)


# ---------------------------------------------------------------------- start-up
def test_startup_logs_backend_and_random_weights(ros):
    ros.node.wait_for_log(
        r"image decoding: sam2_ros\.imaging\.codec \(raw; 16-bit input bit depth auto\)"
    )
    ros.node.wait_for_log(r"RANDOM weights")
    ros.node.wait_for_log(r"image_size 64")


# ---------------------------------------------------------------------- frames
def test_frames_produce_masks_and_objects_with_the_source_stamp(ros):
    ros.reset()
    for index in range(2):
        stamp, masks, objects = ros.process(index)
        assert stamp_of(masks.header) == stamp and masks.header.frame_id == FRAME_ID
        assert stamp_of(objects.header) == stamp and objects.header.frame_id == FRAME_ID
        assert (masks.width, masks.height, masks.encoding) == (64, 48, "16UC1")
        assert masks.step == 128 and len(masks.data) == 128 * 48
        assert not label_array(masks).any()  # nothing prompted yet
        assert list(objects.objects) == []


def test_point_box_and_mask_prompts(ros):
    ros.reset()
    stamp, _, _ = ros.process(0)
    first = ros.scene[0]
    point = ros.call_prompt(points=[(20, 24)], labels=[1], label="circle")
    assert point.success, point.message
    assert stamp_of_time(point.frame_stamp) == stamp  # stamp zero = the latest frame
    box = ros.call_prompt(box=(30, 10, 50, 40), label="box")
    assert box.success, box.message
    mask = ros.call_prompt(mask=mono8(first.labels == 1), label="masked")
    assert mask.success, mask.message
    ids = [point.object_id, box.object_id, mask.object_id]
    assert len(set(ids)) == 3 and min(ids) >= 1
    for response in (point, box, mask):
        assert 0.0 <= response.score <= 1.0
        assert response.bbox.x_offset + response.bbox.width <= 64
        assert f"object {response.object_id}" in response.message

    stamp, masks, objects = ros.process(1)
    assert [o.id for o in objects.objects] == sorted(ids)  # one entry each, visible or not
    assert [o.label for o in objects.objects] == ["circle", "box", "masked"]
    for obj in objects.objects:
        assert obj.frames_since_prompt == 1
        if not obj.visible:
            assert obj.area == 0 and obj.mask.width == 0
        # Track state: visible now = TRACKING; unseen for one frame = OCCLUDED.
        expected = TrackedObject.TRACKING if obj.visible else TrackedObject.OCCLUDED
        assert obj.state == expected and obj.seconds_since_seen >= 0.0
    assert set(np.unique(label_array(masks))) <= {0, *ids}


def stamp_of_time(time_msg) -> int:
    return stamp_to_ns(time_msg)


def test_second_object_mid_stream_then_remove_one(ros):
    ros.reset()
    ros.process(0)
    first = ros.call_prompt(points=[(12, 24)], labels=[1])
    assert first.success, first.message
    ros.process(1)
    ros.process(2)
    second = ros.call_prompt(box=(36, 14, 60, 40))
    assert second.success, second.message
    _, _, objects = ros.process(3)
    assert [o.id for o in objects.objects] == [first.object_id, second.object_id]
    by_id = {o.id: o for o in objects.objects}
    assert by_id[first.object_id].frames_since_prompt == 3
    assert by_id[second.object_id].frames_since_prompt == 1

    removed = RosClient.call(ros.remove, RemoveObjects.Request(object_ids=[first.object_id]))
    assert removed.success, removed.message
    assert list(removed.remaining_ids) == [second.object_id]
    _, _, objects = ros.process(4)
    assert [o.id for o in objects.objects] == [second.object_id]

    unknown = RosClient.call(ros.remove, RemoveObjects.Request(object_ids=[first.object_id]))
    assert not unknown.success and f"unknown object id {first.object_id}" in unknown.message
    assert list(unknown.remaining_ids) == [second.object_id]


def test_reset_some_then_all(ros):
    ros.reset()
    ros.process(0)
    a = ros.call_prompt(points=[(12, 24)], labels=[1])
    b = ros.call_prompt(points=[(40, 24)], labels=[1])
    assert a.success and b.success
    partial = ros.reset([a.object_id])
    assert str(a.object_id) in partial.message
    _, _, objects = ros.process(1)
    assert [o.id for o in objects.objects] == [a.object_id, b.object_id]  # a keeps its id
    assert not {o.id: o for o in objects.objects}[a.object_id].visible
    bad = RosClient.call(ros.reset_srv, ResetTracks.Request(object_ids=[999]))
    assert not bad.success and "unknown object id 999" in bad.message
    everything = ros.reset()
    assert "everything" in everything.message
    _, masks, objects = ros.process(2)
    assert list(objects.objects) == [] and not label_array(masks).any()


def test_prompt_on_a_past_stamp_and_a_too_old_one(ros):
    ros.reset()
    stamps = [ros.process(i)[0] for i in range(3)]
    past = ros.call_prompt(points=[(20, 24)], labels=[1], stamp=stamps[0])
    assert past.success, past.message
    assert stamp_of_time(past.frame_stamp) == stamps[0]
    assert "re-tracked 2 later frames" in past.message
    for i in range(3, 6):  # prompt_history is 4: stamps[0] and [1] fall out of the ring
        ros.process(i)
    old = ros.call_prompt(points=[(20, 24)], labels=[1], stamp=stamps[0])
    assert not old.success and "older than the 4 frames kept" in old.message
    unknown = ros.call_prompt(points=[(20, 24)], labels=[1], stamp=stamps[-1] + 1)
    assert not unknown.success and "no kept frame has stamp" in unknown.message


def test_add_prompt_failures_name_the_problem(ros):
    ros.reset()
    no_frame = ros.call_prompt(points=[(20, 24)], labels=[1])
    assert not no_frame.success and "no frame has been tracked yet" in no_frame.message
    ros.process(0)
    cases = {
        "unknown object id 77": dict(object_id=77, points=[(20, 24)], labels=[1]),
        "mask is 32x24 but the frame is 64x48": dict(mask=mono8(np.ones((24, 32), bool))),
        "mask must be mono8": dict(mask=image_msg(ros.rgb(0), 0, "")),
        "outside the 64x48 image": dict(points=[(99, 24)], labels=[1]),
        "empty prompt": dict(),
        "2 points but 1 labels": dict(points=[(1, 1), (2, 2)], labels=[1]),
    }
    for needle, kwargs in cases.items():
        response = ros.call_prompt(**kwargs)
        assert not response.success, needle
        assert needle in response.message, (needle, response.message)
    ids = []
    for x in (10, 30, 50):  # max_objects is 3 (override file)
        response = ros.call_prompt(points=[(x, 24)], labels=[1])
        assert response.success, response.message
        ids.append(response.object_id)
    too_many = ros.call_prompt(points=[(40, 30)], labels=[1])
    assert not too_many.success
    assert "already tracking 3 objects (max_objects=3)" in too_many.message
    _, _, objects = ros.process(1)  # the refused prompts changed nothing
    assert [o.id for o in objects.objects] == ids


# ---------------------------------------------------------------------- bad input
BAD_IMAGES = {
    "unknown encoding": (dict(encoding="yuv_weird"), r"unsupported image encoding 'yuv_weird'"),
    "step/data mismatch": (dict(step=64 * 3 + 16), r"data too short: expected \d+ bytes"),
    "zero size": (dict(width=0, height=0, step=0, data=b""), r"zero size"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_image_is_reported_and_the_next_frame_processed(ros, case):
    changes, pattern = BAD_IMAGES[case]
    mark = ros.node.mark()
    for _ in range(2):  # the same problem twice in a row: one warning (throttled)
        msg = image_msg(ros.rgb(0), ros.next_stamp(), FRAME_ID)
        for field, value in changes.items():
            setattr(msg, field, value)
        ros.image_pub.publish(msg)
    ros.node.wait_for_log(r"bad image message .*ignored: .*" + pattern, WAIT, since=mark)
    stamp, masks, _ = ros.process(1)
    assert stamp_of(masks.header) == stamp
    assert ros.node.count(r"bad image message", since=mark) == 1
    assert ros.node.alive()


def test_time_going_backwards_resets_the_tracker(ros):
    ros.reset()
    stamp, _, _ = ros.process(0)
    assert ros.call_prompt(points=[(20, 24)], labels=[1]).success
    _, _, objects = ros.process(1)
    assert len(objects.objects) == 1
    mark = ros.node.mark()
    earlier = stamp - 1_000_000_000 + 7  # a stamp no earlier message carries
    _, _, objects = ros.process(2, stamp=earlier)
    assert list(objects.objects) == []  # reset, then the frame was processed
    ros.node.wait_for_log(r"time went backwards.*resetting the tracker", WAIT, since=mark)
    assert ros.node.count(r"time went backwards", since=mark) == 1
    _, _, objects = ros.process(3)  # the stream goes on from the new stamps
    assert list(objects.objects) == []


def test_zero_stamps_are_replaced_by_the_receive_time(ros):
    mark = ros.node.mark()
    for index in range(2):
        ros.image_pub.publish(image_msg(ros.rgb(index), 0, f"unstamped_{index}"))
        masks = ros.masks.wait_for(
            lambda m, i=index: m.header.frame_id == f"unstamped_{i}",
            WAIT,
            "the output of an unstamped frame",
        )
        assert stamp_of(masks.header) > 0
    assert ros.node.count(r"zero stamps: using their receive time", since=mark) == 1
    ros.reset()  # the receive time is later than the test's stamps: start over


# ---------------------------------------------------------------------- outputs
def test_overlay_is_bgr8_with_the_source_header(ros):
    ros.reset()
    ros.process(0)
    assert ros.call_prompt(points=[(20, 24)], labels=[1]).success
    stamp, _, _ = ros.process(1)
    overlay = ros.overlay.with_stamp(stamp, WAIT)
    assert overlay.header.frame_id == FRAME_ID
    assert (overlay.encoding, overlay.width, overlay.height) == ("bgr8", 64, 48)
    pixels = decode_image(bytes(overlay.data), 48, 64, "bgr8", overlay.step)
    assert pixels.shape == (48, 64, 3)


def test_diagnostics_report_rate_latency_drops_and_stage_timing(ros):
    ros.process(0)
    msg = ros.diagnostics.wait_for(
        lambda m: any(
            names.is_tracker_status(s.name, ros.ns) and float(_kv(s).get("output_rate_hz", 0)) > 0
            for s in m.status
        ),
        WAIT,
        "diagnostics on /diagnostics with a processed frame",
    )
    status = msg.status[0]
    assert status.name.startswith(f"{ros.ns}/sam2_tracker") and status.hardware_id
    assert status.level == DiagnosticStatus.WARN, status.message  # random weights
    values = _kv(status)
    for key in (
        "input_rate_hz",
        "output_rate_hz",
        "latency_ms",
        "latency_from_stamp_ms",
        "depth",
        "model",
        "frames_dropped",
        "encoder_ms",
        "memory_attention_ms",
        "decoder_ms",
        "memory_encoder_ms",
        "total_ms",
        "bad_messages",
        "device",
    ):
        assert key in values, key
    assert float(values["encoder_ms"]) > 0
    assert "RANDOM weights" in msg.status[0].message


def _kv(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_runtime_parameters_are_checked(ros):
    def set_param(name, value):
        kind = {
            float: ParameterType.PARAMETER_DOUBLE,
            bool: ParameterType.PARAMETER_BOOL,
            str: ParameterType.PARAMETER_STRING,
        }[type(value)]
        pv = ParameterValue(type=kind)
        setattr(
            pv, {float: "double_value", bool: "bool_value", str: "string_value"}[type(value)], value
        )
        request = SetParameters.Request(parameters=[Parameter(name=name, value=pv)])
        return RosClient.call(ros.set_params, request).results[0]

    assert set_param("mask_threshold", 0.5).successful
    assert set_param("overlay_alpha", 0.25).successful
    bad = set_param("overlay_alpha", 2.0)
    assert not bad.successful and "overlay_alpha" in bad.reason
    frozen = set_param("model", "sam2.1_hiera_l")
    assert not frozen.successful and "read-only" in frozen.reason
    assert set_param("mask_threshold", 0.0).successful
    stamp, masks, _ = ros.process(0)  # still tracking after the changes
    assert stamp_of(masks.header) == stamp


def test_50_concurrent_service_calls_while_streaming(ros):
    ros.reset()
    ros.process(0)
    target = ros.call_prompt(points=[(20, 24)], labels=[1])
    assert target.success, target.message
    stop = threading.Event()
    published: list[int] = []

    def stream():
        index = 1
        while not stop.is_set():
            published.append(ros.publish(index))
            index += 1
            stop.wait(0.05)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        wait_until(lambda: published, WAIT, "the first streamed frame")
        # Any streamed frame: the node may drop any one of them (the newest frame wins).
        ros.masks.wait_for(
            lambda m: stamp_of(m.header) in set(published), WAIT, "a streamed frame's masks"
        )
        calls = []
        for i in range(30):
            point = [(22 + i % 5, 24)]
            if i % 6 != 5:
                calls.append(
                    (
                        ros.add_prompt,
                        ros.prompt(object_id=target.object_id, points=point, labels=[1]),
                    )
                )
            if i % 3 == 0:
                calls.append(
                    (ros.add_prompt, ros.prompt(object_id=500 + i, points=point, labels=[1]))
                )
            if i % 3 == 1:
                calls.append((ros.remove, RemoveObjects.Request(object_ids=[900 + i])))
            if i % 6 == 2:
                calls.append((ros.reset_srv, ResetTracks.Request(object_ids=[900 + i])))
        assert len(calls) == 50
        answers = RosClient.call_all(calls, timeout=120)
    finally:
        stop.set()
        streamer.join(WAIT)
    # Frames from here on must be newer than every streamed one (arrival order = stamp order).
    assert not streamer.is_alive(), "the streaming thread did not stop"
    for (service, request), answer in zip(calls, answers, strict=True):
        assert answer is not None
        if service is ros.add_prompt and request.object_id == target.object_id:
            assert answer.success, answer.message
            assert answer.object_id == target.object_id
        else:
            assert not answer.success and "unknown object id" in answer.message
    assert ros.node.alive()
    _, _, objects = ros.process(0)  # still processing after the burst
    assert [o.id for o in objects.objects] == [target.object_id]
    processed = {stamp_of(m.header) for m in ros.masks.messages}
    assert processed & set(published), "no streamed frame was processed during the burst"


def test_no_unexpected_errors_in_the_node_log(ros):
    log = ros.node.log()
    assert "Traceback" not in log and "frame processing failed" not in log, log


# ---------------------------------------------------------------------- compressed + depth
def test_compressed_frames_and_corrupt_data(ros_compressed):
    h = ros_compressed
    h.node.wait_for_log(r"depth on: .* paired by stamp .*frames without a pair are still tracked")
    stamp, masks, objects = h.process(0)
    assert (masks.width, masks.height) == (64, 48)
    assert masks.header.frame_id == objects.header.frame_id == "override_frame"
    mark = h.node.mark()
    bad = CompressedImage(format="jpeg", data=b"\xff\xd8\xff\xe0 this is not a jpeg")
    set_stamp(bad.header, h.next_stamp(), FRAME_ID)
    h.image_pub.publish(bad)
    h.node.wait_for_log(r"bad image message .*cannot decode compressed image", WAIT, since=mark)
    stamp, masks, _ = h.process(1)
    assert stamp_of(masks.header) == stamp


def test_nan_depth_is_reported_and_the_next_frame_processed(ros_compressed):
    h = ros_compressed
    h.process(0)
    assert h.call_prompt(points=[(20, 24)], labels=[1]).success
    mark = h.node.mark()
    nan_depth = np.full((48, 64), np.nan, np.float32)
    stamp, _, objects = h.process(1, depth=nan_depth)
    assert not any(o.has_position for o in objects.objects)
    h.node.wait_for_log(r"bad depth message .*no valid pixel", WAIT, since=mark)
    stamp, masks, _ = h.process(2)
    assert stamp_of(masks.header) == stamp


def test_depth_gives_positions_and_never_holds_a_frame_back(ros_compressed):
    """Image + 32FC1 depth + camera_info in: positions out. Depth missing, stale or in
    another frame: the frame is still tracked, without positions, and diagnostics say why."""
    h = ros_compressed
    h.reset()
    stamp, _, _ = h.process(0)
    assert h.call_prompt(points=[(20, 24)], labels=[1], stamp=stamp).success
    for millimetres in (False, True):  # 32FC1 metres, then 16UC1 millimetres
        stamp = h.next_stamp()
        h.publish_depth(stamp, h.scene[1].depth_m, millimetres=millimetres)
        _, _, objects = h.process(1, stamp=stamp, with_depth=False)
        positioned = [o for o in objects.objects if o.visible]
        assert positioned and all(o.has_position for o in positioned), millimetres
        assert all(0.5 < o.position.z < 5.0 for o in positioned)
    # No depth for this frame (its depth comes 1 s late): tracked anyway, no positions.
    for name, depth_stamp_shift, frame_id in (("stale", 10**9, FRAME_ID),
                                              ("unregistered", 0, "other_depth_frame")):
        stamp = h.next_stamp()
        depth = Image(height=48, width=64, encoding="32FC1", step=64 * 4,
                      data=h.scene[0].depth_m.astype(np.float32).tobytes())
        set_stamp(depth.header, stamp + depth_stamp_shift, frame_id)
        h.depth_pub.publish(depth)
        stamp, masks, objects = h.process(2, stamp=stamp, with_depth=False)
        assert stamp_of(masks.header) == stamp, name
        assert not any(o.has_position for o in objects.objects), name
    # Diagnostics published before the depth arrived say "no depth received yet": wait for
    # the warning about these frames' depth.
    status = h.diagnostics.wait_for(
        lambda m: any("differs from the image" in s.message or "stale" in s.message
                      for s in m.status), WAIT, "a stale or unregistered depth warning"
    ).status[0]
    assert "depth" in status.message and status.level == status.WARN


def test_frames_are_uploaded_ahead_on_the_device_path(ros_compressed):
    """``preprocessing: device``: a frame is decoded and its upload started on the camera's
    thread (``FrameUpload.prefetch``), overlapping the frame in progress; the worker tracks
    that copy, and diagnostics count the frames that found it."""
    h = ros_compressed
    before = h.node.mark()
    for i in range(3):
        h.process(i)
    msg = h.diagnostics.wait_for(
        lambda m: any(int(_kv(s).get("frames_uploaded_ahead", 0)) >= 3 for s in m.status),
        WAIT, "diagnostics counting frames uploaded ahead",
    )
    values = _kv(msg.status[0])
    assert int(values["frames_uploaded_ahead"]) <= int(values["frames_processed"])
    assert "bad image" not in h.node.log(before)


# ---------------------------------------------------------------------- start-up failures
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-p", "image_transport:=theora"], "image_transport must be one of raw, compressed"),
        (["-p", "model:=sam3_hiera_x"], "unknown model 'sam3_hiera_x'"),
        (["-p", "checkpoint:=/nonexistent/sam2.pt"], "checkpoint not found"),
        (["-p", "model:=sam2_ros_demo", "-p", "image_size:=512"],
         "sam2_ros_demo cannot run at image_size 512"),
    ],
)
def test_bad_start_parameters_exit_with_a_clear_message(tmp_path, args, needle):
    domain, ns = unique_domain_and_namespace("sam2_bad")
    node = NodeProcess(["-p", "model:=sam2.1_hiera_t", "-p", "image_size:=64", *args,
                        "-r", f"__ns:={ns}"], domain, tmp_path)
    try:
        line = node.wait_for_log(r"cannot run: ", timeout=START_WAIT)
        assert needle in line, node.log()
        assert node.proc.wait(WAIT) == 1
    finally:
        node.stop()
