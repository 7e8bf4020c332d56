"""The node's clock and its control services over real DDS: stamps that go back a little
(dropped) or a lot (a new stream), a looping bag, simulated time before and after /clock,
and reset/remove answering at once while prompts wait and frames run.

Node processes as in test_node (random weights at 64 px: the machinery, not the masks),
one plain and one with use_sim_time; the test of a frame in progress runs the node in this
process, where a frame can be held in the middle.
"""

from __future__ import annotations

import threading
import time

import pytest
import rclpy
from geometry_msgs.msg import Point
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from ros_processes import (
    RosClient,
    image_msg,
    stamp_of,
    unique_domain_and_namespace,
    wait_until,
)
from rosgraph_msgs.msg import Clock
from sam2_ros.msg import TrackedObjectArray
from sam2_ros.srv import AddPrompt, RemoveObjects, ResetTracks
from sensor_msgs.msg import Image
from test_node import FRAME_ID, SCENE, WAIT, Harness, _start, _stop

from sam2_ros.evaluation.synthetic_scene import render_scene
from sam2_ros.messages import stamp_to_ns

S = 1_000_000_000
#: How fast reset and remove must answer, measured by the client over DDS. The issue asks
#: 100 ms for reset and 0.5 s with many prompts queued; answers take a few ms on an idle
#: machine, the margin is for a shared, loaded one. Before the fix they waited for the
#: prompt (4 s here), the 50 queued prompts (seconds) or the held frame (until released).
RESET_WITHIN_S = 1.0


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    harness = _start(
        tmp_path_factory,
        "sam2_time",
        {"max_objects": 3, "prompt_history": 4, "diagnostics_period": 0.5, "prompt_wait": 4.0},
    )
    yield harness
    _stop(harness)


@pytest.fixture(scope="module")
def ros_sim(tmp_path_factory):
    harness = _start(
        tmp_path_factory, "sam2_simtime", {"diagnostics_period": 0.0},
        extra_args=["-p", "use_sim_time:=true"],
    )
    harness.clock = harness.client.publisher(Clock, "/clock")
    wait_until(lambda: harness.clock.get_subscription_count() > 0, WAIT, "the node's /clock")
    yield harness
    _stop(harness)


def _diagnostic(ros: Harness, key: str, predicate) -> float:
    """The value of ``key`` in the first diagnostics message from now that satisfies
    ``predicate``."""
    ros.diagnostics.clear()
    name = f"{ros.ns}/sam2_tracker: tracking"
    msg = ros.diagnostics.wait_for(
        lambda m: any(
            s.name == name and predicate(float(_values(s).get(key, "nan"))) for s in m.status
        ),
        WAIT,
        f"diagnostics with {key} as expected",
    )
    return float(_values(msg.status[0])[key])


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def _ids(objects: TrackedObjectArray) -> list[int]:
    return [o.id for o in objects.objects]


# ---------------------------------------------------------------------- stamps going back
def test_a_frame_a_little_late_is_dropped_not_a_reset(ros):
    ros.reset()
    ros.process(0)
    target = ros.call_prompt(points=[(20, 24)], labels=[1])
    assert target.success, target.message
    stamp, _, _ = ros.process(1)
    mark = ros.node.mark()
    before = _diagnostic(ros, "late_frames", lambda v: v >= 0)
    ros.image_pub.publish(image_msg(ros.rgb(2), stamp - 30_000_000, FRAME_ID))  # 30 ms late
    ros.node.wait_for_log(r"0\.030 s before the previous frame's .*frame dropped", WAIT, mark)
    _, _, objects = ros.process(3)
    assert _ids(objects) == [target.object_id]  # nothing was forgotten
    assert ros.node.count(r"time went backwards", since=mark) == 0
    _diagnostic(ros, "late_frames", lambda v: v == before + 1)


def _forget_outputs(ros: Harness) -> None:
    ros.masks.clear()
    ros.objects.clear()
    ros.overlay.clear()


def _play(ros: Harness, stamps: list[int]) -> list[TrackedObjectArray]:
    """Publish frames one at a time and wait for each one's objects."""
    return [ros.process(i, stamp)[2] for i, stamp in enumerate(stamps)]


def test_a_looping_bag_resets_once_and_tracking_goes_on(ros):
    ros.reset()
    start = ros.next_stamp() + 10 * S
    stamps = [start + k * 100_000_000 for k in range(15)]  # 1.4 s: one loop jumps back 1.4 s
    ros.process(0, stamps[0])
    first = ros.call_prompt(points=[(20, 24)], labels=[1])
    assert first.success, first.message
    assert all(_ids(o) == [first.object_id] for o in _play(ros, stamps[1:]))
    mark = ros.node.mark()
    _forget_outputs(ros)  # the same stamps come again
    _, _, objects = ros.process(0, stamps[0])  # the bag starts again
    assert _ids(objects) == []
    again = ros.call_prompt(points=[(20, 24)], labels=[1])
    assert again.success, again.message
    assert all(_ids(o) == [again.object_id] for o in _play(ros, stamps[1:]))
    assert ros.node.count(r"time went backwards", since=mark) == 1
    for _ in range(3):  # next_stamp() is before this bag's stamps: start over once more
        ros.next_stamp()
    ros.reset()


def test_a_short_looping_bag_restarts_after_a_run_of_late_frames(ros):
    """A bag shorter than time_jump_reset: each frame of the next pass is only a little
    late; five in a row mean the stream went back."""
    ros.reset()
    base = ros.next_stamp() + 20 * S
    stamps = [base + k * 100_000_000 for k in range(6)]
    _play(ros, stamps)
    assert ros.call_prompt(points=[(20, 24)], labels=[1]).success
    late = _diagnostic(ros, "late_frames", lambda v: v >= 0)
    mark = ros.node.mark()
    _forget_outputs(ros)
    for k in range(4):  # dropped one by one
        ros.image_pub.publish(image_msg(ros.rgb(k), stamps[k], FRAME_ID))
        _diagnostic(ros, "late_frames", lambda v, n=late + k + 1: v == n)
    assert ros.node.count(r"time went backwards", since=mark) == 0
    _, _, objects = ros.process(4, stamps[4])  # the fifth: a new stream
    assert _ids(objects) == []
    ros.node.wait_for_log(r"time went backwards: .*5th late frame in a row", WAIT, mark)
    for _ in range(30):
        ros.next_stamp()
    ros.reset()


# ---------------------------------------------------------------------- simulated time
def _tick(ros: Harness, stamp_ns: int) -> None:
    clock = Clock()
    clock.clock.sec, clock.clock.nanosec = divmod(stamp_ns, S)
    ros.clock.publish(clock)


def test_zero_stamps_before_clock_then_a_clock_that_jumps_back(ros_sim):
    ros = ros_sim
    mark = ros.node.mark()
    seen = []
    for index in range(2):  # no /clock yet: the node's clock reads 0
        ros.image_pub.publish(image_msg(ros.rgb(index), 0, f"before_clock_{index}"))
        masks = ros.masks.wait_for(
            lambda m, i=index: m.header.frame_id == f"before_clock_{i}", WAIT,
            "the output of a zero-stamped frame before /clock",
        )
        seen.append(stamp_of(masks.header))
    assert 0 < seen[0] < seen[1]
    ros.node.wait_for_log(r"zero stamps and the ROS clock reads 0", WAIT, mark)

    start = 1000 * S
    stamps = [start + k * 100_000_000 for k in range(12)]
    _tick(ros, stamps[0])
    ros.process(0, stamps[0])
    target = ros.call_prompt(points=[(20, 24)], labels=[1])
    assert target.success, target.message
    for index, stamp in enumerate(stamps[1:], 1):
        _tick(ros, stamp)
        _, _, objects = ros.process(index, stamp)
        assert _ids(objects) == [target.object_id]
    mark = ros.node.mark()
    _forget_outputs(ros)
    _tick(ros, stamps[0])  # the bag loops, /clock first
    ros.node.wait_for_log(r"time went backwards: the ROS clock jumped back 1\.100 s", WAIT, mark)
    _, _, objects = ros.process(0, stamps[0])
    assert _ids(objects) == []
    again = ros.call_prompt(points=[(20, 24)], labels=[1])
    assert again.success, again.message
    for index, stamp in enumerate(stamps[1:4], 1):
        _tick(ros, stamp)
        _, _, objects = ros.process(index, stamp)
        assert _ids(objects) == [again.object_id]
    assert ros.node.count(r"time went backwards", since=mark) == 1, ros.node.log(mark)


# ---------------------------------------------------------------------- reset and remove
def _timed_call(client, request, timeout: float = WAIT):
    started = time.monotonic()
    response = RosClient.call(client, request, timeout)
    return response, time.monotonic() - started


def test_reset_answers_while_a_prompt_waits_for_its_frame(ros):
    ros.reset()
    ros.process(0)
    target = ros.call_prompt(points=[(20, 24)], labels=[1])
    assert target.success, target.message
    # A prompt naming a frame not received yet waits for it (prompt_wait, 4 s here).
    waiting = ros.add_prompt.call_async(
        ros.prompt(object_id=target.object_id, points=[(22, 24)], labels=[1],
                   stamp=ros.next_stamp() + 100 * S)
    )
    ros.process(1)  # a barrier: the prompt has reached the node and waits
    assert not waiting.done()
    response, seconds = _timed_call(ros.reset_srv, ResetTracks.Request(object_ids=[]))
    assert response.success, response.message
    assert not waiting.done(), "reset was answered only after the waiting prompt"
    assert seconds < RESET_WITHIN_S, f"reset took {seconds:.3f} s"
    removed, seconds = _timed_call(ros.remove, RemoveObjects.Request(object_ids=[77]))
    assert "unknown object id 77" in removed.message and seconds < RESET_WITHIN_S
    assert not waiting.done()
    wait_until(waiting.done, WAIT, "the waiting prompt's answer")
    assert not waiting.result().success


def test_reset_and_remove_answer_in_order_with_many_prompts_queued(ros):
    """50 prompts in flight, then removes and resets sent back to back: each is answered
    within the bound, and they are applied in the order sent (each one's answer depends on
    the one before it)."""
    ros.reset()
    ros.process(0)
    target = ros.call_prompt(points=[(20, 24)], labels=[1])
    other = ros.call_prompt(points=[(40, 24)], labels=[1])
    assert target.success and other.success, (target.message, other.message)
    prompts = [
        ros.add_prompt.call_async(
            ros.prompt(object_id=target.object_id, points=[(20 + i % 7, 24)], labels=[1])
        )
        for i in range(50)
    ]
    t, o = target.object_id, other.object_id
    control = [  # (client, request, expected success, text of the answer)
        (ros.remove, RemoveObjects.Request(object_ids=[t]), True, f"removed [{t}]"),
        (ros.reset_srv, ResetTracks.Request(object_ids=[t]), False, f"unknown object id {t}"),
        (ros.reset_srv, ResetTracks.Request(object_ids=[o]), True, f"objects [{o}]"),
        (ros.remove, RemoveObjects.Request(object_ids=[o]), True, f"removed [{o}]"),
        (ros.reset_srv, ResetTracks.Request(object_ids=[o]), False, f"unknown object id {o}"),
        (ros.remove, RemoveObjects.Request(object_ids=[o]), False, f"unknown object id {o}"),
        (ros.reset_srv, ResetTracks.Request(object_ids=[]), True, "reset everything"),
    ]
    sent, answered, futures = [], {}, []
    for k, (client, request, _, _) in enumerate(control):
        sent.append(time.monotonic())
        future = client.call_async(request)
        future.add_done_callback(lambda _f, k=k: answered.setdefault(k, time.monotonic()))
        futures.append(future)
    wait_until(lambda: all(f.done() for f in futures), WAIT, "the reset and remove answers")
    pending_then = sum(not p.done() for p in prompts)
    for (_, _, success, text), future in zip(control, futures, strict=True):
        response = future.result()
        assert response.success == success and text in response.message, response.message
    slowest = max(answered[k] - sent[k] for k in answered)
    assert slowest < RESET_WITHIN_S, f"an answer took {slowest:.3f} s"
    assert pending_then > 0, "every prompt was answered first: nothing was queued"
    wait_until(lambda: all(p.done() for p in prompts), WAIT, "the prompts' answers",
               progress=lambda: sum(p.done() for p in prompts))


# ---------------------------------------------------------------------- a frame in progress
def test_reset_answers_while_a_frame_is_being_tracked():
    """In process, to hold a frame in the middle of tracking (in the model's decoder, with
    the tracker's state locked); the client still calls over DDS."""
    from sam2_ros.ros.tracker_node import TrackerNode

    domain, ns = unique_domain_and_namespace("sam2_frame_held")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = TrackerNode(
        context=context,
        namespace=ns,
        parameter_overrides=[
            Parameter("model", value="sam2.1_hiera_t"),
            Parameter("image_size", value=64),
            Parameter("qos_reliability", value="reliable"),
            Parameter("diagnostics_period", value=0.0),
        ],
    )
    executor = MultiThreadedExecutor(num_threads=4, context=context)  # as the node's main
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    client = RosClient(domain)
    release = threading.Event()
    try:
        base = f"{ns}/sam2_tracker"
        objects = client.subscribe(TrackedObjectArray, f"{base}/objects")
        images = client.publisher(Image, f"{ns}/image")
        prompt = client.client(AddPrompt, f"{base}/add_prompt")
        reset = client.client(ResetTracks, f"{base}/reset")
        wait_until(lambda: images.get_subscription_count() > 0, WAIT, "the image subscription")
        wait_until(lambda: objects.subscription.get_publisher_count() > 0, WAIT, "objects")
        scene = list(render_scene(SCENE))
        RosClient.publish_until_answered(
            lambda stamp: images.publish(image_msg(scene[0].rgb, stamp, FRAME_ID)),
            [objects], 5 * S, "objects for the first frame")
        request = AddPrompt.Request()
        request.points = [Point(x=20.0, y=24.0)]
        request.point_labels = [1]
        assert RosClient.call(prompt, request, WAIT).success

        steps = node.shell.tracker._steps
        decode = steps.decode_sessions  # the decode step of every tracked frame
        in_decoder = threading.Event()

        def held_decode(*args, **kwargs):
            in_decoder.set()
            assert release.wait(WAIT)
            return decode(*args, **kwargs)

        steps.decode_sessions = held_decode
        images.publish(image_msg(scene[1].rgb, 6 * S, FRAME_ID))
        assert in_decoder.wait(WAIT), "the frame did not reach the decoder"
        response, seconds = _timed_call(reset, ResetTracks.Request(object_ids=[]))
        assert not release.is_set()
        assert response.success, response.message
        assert "applied when the frame in progress ends" in response.message
        assert seconds < RESET_WITHIN_S, f"reset took {seconds:.3f} s"
        release.set()
        steps.decode_sessions = decode
        assert stamp_to_ns(objects.with_stamp(6 * S, WAIT).header.stamp) == 6 * S
        assert objects.with_stamp(6 * S, WAIT).objects == []  # the reset, at the frame's end
    finally:
        release.set()
        client.close()
        executor.shutdown(timeout_sec=5)
        spinner.join(5)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
