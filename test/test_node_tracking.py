"""The node tracks what a planner clicked, over real DDS, with the bundled demo model.

A client plays the designed synthetic scene into the node frame by frame, waits until the
node has moved four frames past frame 2, then clicks two objects' centres as they were on
frame 2, naming that frame by its stamp. The label images the node publishes on the
following frames must overlap the ground truth. Swapped x/y, a wrong scale between the
camera and the model, or a click applied to the newest frame instead of the named one
(the objects moved ~40 px since) all land the click off the object and fail the J check.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from geometry_msgs.msg import Point
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_processes import (
    NodeProcess,
    RosClient,
    image_msg,
    unique_domain_and_namespace,
    wait_until,
)
from sam2_ros.srv import AddPrompt, ResetTracks
from sensor_msgs.msg import Image

from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene
from sam2_ros.imaging.codec import image_msg_to_array
from sam2_ros.imaging.masks import interior_point
from sam2_ros.messages import stamp_to_ns

SCENE = SceneConfig(width=320, height=240, fps=10.0, duration_s=1.6, num_objects=3, seed=0,
                    with_depth=False)
CLICK_FRAME, CLICK_AFTER = 2, 6
#: Measured through the node with the bundled model (2026-11-30, 2 cores): the rotating
#: rectangle (object 2) J 0.22, the circle 0.00 (in this run, clicked on frame 2 and named by
#: stamp four frames later, the model follows the rectangle at J 0.6-0.8 until it crosses
#: the circle, then mostly loses it; the model before the fine-tune kept it, 0.64). Random
#: weights or a click off the object (swapped x/y, wrong scale, wrong frame): J near 0 for
#: both. The threshold keeps a margin under the measured value and far above noise.
MIN_BEST_J = 0.15
WAIT = 120.0


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    domain, ns = unique_domain_and_namespace("sam2_meaning")
    process = NodeProcess(["-p", "qos_reliability:=reliable", "-p", "qos_depth:=60",
                           "-r", f"__ns:={ns}"], domain,
                          tmp_path_factory.mktemp("meaning"))
    client = RosClient(domain)
    try:
        process.wait_for_log(r"ready: tracking frames", timeout=WAIT)
        yield process, client, ns
    finally:
        client.close()
        process.stop()


def test_clicked_objects_are_followed_through_the_node(node) -> None:
    _process, client, ns = node
    base = f"{ns}/sam2_tracker"
    publisher = client.publisher(Image, f"{ns}/image")
    masks = client.subscribe(Image, f"{base}/masks")
    add_prompt = client.client(AddPrompt, f"{base}/add_prompt", timeout=WAIT)
    wait_until(lambda: publisher.get_subscription_count() > 0, WAIT, "the node's subscription")
    wait_until(lambda: masks.subscription.get_publisher_count() > 0, WAIT, "the masks topic")
    frames = list(render_scene(SCENE))

    def play(frame) -> np.ndarray:
        publisher.publish(image_msg(frame.rgb, frame.stamp_ns, "camera"))
        msg = masks.with_stamp(frame.stamp_ns, WAIT)
        return image_msg_to_array(msg)

    for frame in frames[: CLICK_AFTER + 1]:
        play(frame)
    clicked = frames[CLICK_FRAME]
    ids = {}
    for gt_id in (1, 2):
        x, y = interior_point(clicked.labels == gt_id)
        request = AddPrompt.Request(label=f"gt{gt_id}", points=[Point(x=x, y=y)],
                                    point_labels=[1])
        request.stamp.sec, request.stamp.nanosec = divmod(clicked.stamp_ns, 1_000_000_000)
        response = RosClient.call(add_prompt, request, WAIT)
        assert response.success, response.message
        assert stamp_to_ns(response.frame_stamp) == clicked.stamp_ns  # the frame it named
        ids[response.object_id] = gt_id

    js = {gt: [] for gt in ids.values()}
    for frame in frames[CLICK_AFTER + 1 :]:
        labels = play(frame)
        assert labels.shape == (SCENE.height, SCENE.width)
        for object_id, gt_id in ids.items():
            gt = frame.labels == gt_id
            if gt.sum() < 50:
                continue
            pred = labels == object_id
            js[gt_id].append((pred & gt).sum() / (pred | gt).sum())
    means = {gt: float(np.mean(v)) for gt, v in js.items()}
    print(f"J per clicked object through the node: {means}")
    assert all(len(v) >= 4 for v in js.values())
    assert max(means.values()) >= MIN_BEST_J, means


def test_prompts_on_any_recent_camera_stamp_at_30_hz(node) -> None:
    """A camera at 30 Hz, a model slower than that (most frames dropped), and a planner
    clicking on frames it saw 2 to 5 frames ago: every prompt is applied on the frame it
    named, tracked or dropped, and the response says so."""
    _process, client, ns = node
    base = f"{ns}/sam2_tracker"
    # Reliable with a deep history on both sides: no frame lost in transport, so every
    # stamp the planner names reached the node.
    deep = QoSProfile(depth=60, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)
    publisher = client.publisher(Image, f"{ns}/image", deep)
    add_prompt = client.client(AddPrompt, f"{base}/add_prompt", timeout=WAIT)
    reset = client.client(ResetTracks, f"{base}/reset", timeout=WAIT)
    assert RosClient.call(reset, ResetTracks.Request(), WAIT).success
    wait_until(lambda: publisher.get_subscription_count() > 0, WAIT, "the node's subscription")
    cfg = SceneConfig(width=320, height=240, fps=30.0, duration_s=2.0, num_objects=2, seed=3,
                      with_depth=False)
    frames = list(render_scene(cfg))
    period = 1.0 / cfg.fps
    answers = []
    start = time.monotonic()
    for frame in frames:
        publisher.publish(image_msg(frame.rgb, frame.stamp_ns, "camera"))
        if frame.index >= 6 and frame.index % 6 == 0:
            seen = frames[frame.index - 2 - (frame.index // 6) % 4]
            x, y = interior_point(seen.labels == 1)
            request = AddPrompt.Request(points=[Point(x=x, y=y)], point_labels=[1])
            request.stamp.sec, request.stamp.nanosec = divmod(seen.stamp_ns, 1_000_000_000)
            answers.append((seen.stamp_ns, add_prompt.call_async(request)))
        # The camera's own pace (this is the stream being simulated, not a wait for news).
        time.sleep(max(0.0, start + (frame.index + 1) * period - time.monotonic()))
    dropped = 0
    for stamp, future in answers:
        wait_until(future.done, WAIT, "a prompt's answer")
        response = future.result()
        assert response.success, response.message
        assert stamp_to_ns(response.frame_stamp) == stamp
        dropped += "dropped" in response.message
    print(f"{len(answers)} prompts applied, {dropped} of them on frames the tracker dropped")
    assert len(answers) >= 8
