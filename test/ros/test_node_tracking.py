"""The node tracks what a planner clicked, over real DDS, with the bundled demo model.

A client plays the designed synthetic scene into the node frame by frame, waits until the
node has moved four frames past frame 2, then clicks two objects' centres as they were on
frame 2, naming that frame by its stamp. The label images the node publishes on the
following frames must overlap each object's ground truth. Swapped x/y, a wrong scale
between the camera and the model, or a click applied to the newest frame instead of the
named one (the objects moved ~40 px since) all land the click off the object and fail the
J check. A planner at 30 Hz clicks frames the node mostly dropped, creating and correcting
objects; and a negative click on a dropped frame must refine the object's mask there, not
restart the object from the click alone.
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
from test_node import mono8

from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene
from sam2_ros.imaging.codec import image_msg_to_array
from sam2_ros.imaging.masks import interior_point
from sam2_ros.messages import stamp_to_ns

SCENE = SceneConfig(width=320, height=240, fps=10.0, duration_s=1.6, num_objects=3, seed=0,
                    with_depth=False)
CLICK_FRAME, CLICK_AFTER = 2, 6
#: Ground-truth objects clicked: the rotating rectangle (2) and object 3. The circle (1) is
#: left out: clicked on frame 2 and named four frames later, the bundled model does not
#: pick it up even offline (J 0.00 on every later frame, measured 2026-12-02), so it would
#: judge the model, not the node.
CLICKED = (2, 3)
#: Frames right after the prompt that are judged: later the model loses the rectangle where
#: it crosses the circle (J 0.77, 0.70, 0.63, then 0.01; object 3: 0.91, 0.92, 0.85, 0.87,
#: measured offline with the bundled model, 2026-12-02). Random weights or a click off the
#: object (swapped x/y, wrong scale, wrong frame): J near 0. Each object is judged on its
#: own, so one object lost entirely fails the test.
JUDGED_FRAMES = 3
MIN_J = 0.4
WAIT = 120.0


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    domain, ns = unique_domain_and_namespace("sam2_meaning")
    process = NodeProcess(["-p", "qos_reliability:=reliable", "-p", "qos_depth:=60",
                           "-r", f"__ns:={ns}"], domain,
                          tmp_path_factory.mktemp("meaning"))
    client = RosClient(domain)
    try:
        process.wait_ready()
        yield process, client, ns
    finally:
        client.close()
        process.stop()


def _first_answer(publisher, masks, first) -> None:
    """A blank frame stamped 2 s before the scene, sent until the node's masks for it arrive
    (RosClient.publish_until_answered): the scene's frames are then each awaited once."""
    blank = np.zeros_like(first.rgb)
    RosClient.publish_until_answered(
        lambda stamp: publisher.publish(image_msg(blank, stamp, "camera")),
        [masks], first.stamp_ns - 2_000_000_000, "the node's first masks")


def test_clicked_objects_are_followed_through_the_node(node) -> None:
    _process, client, ns = node
    base = f"{ns}/sam2_tracker"
    publisher = client.publisher(Image, f"{ns}/image")
    masks = client.subscribe(Image, f"{base}/masks")
    add_prompt = client.client(AddPrompt, f"{base}/add_prompt", timeout=WAIT)
    wait_until(lambda: publisher.get_subscription_count() > 0, WAIT, "the node's subscription")
    wait_until(lambda: masks.subscription.get_publisher_count() > 0, WAIT, "the masks topic")
    frames = list(render_scene(SCENE))
    _first_answer(publisher, masks, frames[0])

    def play(frame) -> np.ndarray:
        publisher.publish(image_msg(frame.rgb, frame.stamp_ns, "camera"))
        msg = masks.with_stamp(frame.stamp_ns, WAIT)
        return image_msg_to_array(msg)

    for frame in frames[: CLICK_AFTER + 1]:
        play(frame)
    clicked = frames[CLICK_FRAME]
    ids = {}
    for gt_id in CLICKED:
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
    print(f"J per clicked object through the node, frame by frame: {js}")
    assert all(len(v) >= JUDGED_FRAMES for v in js.values()), js
    for gt_id, values in js.items():
        assert np.mean(values[:JUDGED_FRAMES]) >= MIN_J, (gt_id, values)


def _box_iou(box, mask: np.ndarray) -> float:
    """IoU of a RegionOfInterest with the bounding box of a ground-truth mask."""
    ys, xs = np.nonzero(mask)
    gx0, gy0, gx1, gy1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    x0, y0 = box.x_offset, box.y_offset
    x1, y1 = x0 + box.width, y0 + box.height
    inter = max(0, min(x1, gx1) - max(x0, gx0)) * max(0, min(y1, gy1) - max(y0, gy0))
    union = box.width * box.height + (gx1 - gx0) * (gy1 - gy0) - inter
    return float(inter / union) if union else 0.0


#: Box IoU of each prompt's mask with the clicked object on the frame it named (new objects
#: and corrections of existing ones). Measured offline with the bundled model on this scene
#: and the node's drop pattern (every 2nd or 3rd frame tracked, 2026-12-02): 0.63-0.96. A
#: click on the wrong frame (the large object moves ~10 px a frame), swapped coordinates
#: or a correction that replaced the object by the click alone on a frame it was not
#: tracked on show as a box elsewhere.
MIN_PROMPT_BOX_IOU = 0.4


def test_prompts_on_any_recent_camera_stamp_at_30_hz(node) -> None:
    """A camera at 30 Hz, a model slower than that (most frames dropped), and a planner
    clicking on frames it saw 2 to 5 frames ago, in turn creating an object and correcting
    it six frames later: every prompt is applied on the frame it named, tracked or dropped,
    the response says so, and the mask there covers the clicked object."""
    _process, client, ns = node
    base = f"{ns}/sam2_tracker"
    # Reliable with a deep history on both sides: no frame lost in transport, so every
    # stamp the planner names reached the node.
    deep = QoSProfile(depth=60, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)
    publisher = client.publisher(Image, f"{ns}/image", deep)
    add_prompt = client.client(AddPrompt, f"{base}/add_prompt", timeout=WAIT, depth=60)
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
            correction = len(answers) % 2 == 1
            if correction:  # the object the previous prompt created, on its own object
                gt_id, previous = answers[-1][1], answers[-1][2]
                wait_until(previous.done, WAIT, "the answer that created the object")
                object_id = previous.result().object_id
            else:  # a new object on the larger one in view
                gt_id = max((1, 2), key=lambda g: int((seen.labels == g).sum()))
                object_id = 0
            x, y = interior_point(seen.labels == gt_id)
            request = AddPrompt.Request(object_id=object_id, points=[Point(x=x, y=y)],
                                        point_labels=[1])
            request.stamp.sec, request.stamp.nanosec = divmod(seen.stamp_ns, 1_000_000_000)
            answers.append((seen, gt_id, add_prompt.call_async(request), correction))
        # The camera's own pace (this is the stream being simulated, not a wait for news).
        time.sleep(max(0.0, start + (frame.index + 1) * period - time.monotonic()))
    dropped = corrected_dropped = 0
    for seen, gt_id, future, correction in answers:
        wait_until(future.done, WAIT, "a prompt's answer")
        response = future.result()
        assert response.success, response.message
        assert stamp_to_ns(response.frame_stamp) == seen.stamp_ns
        iou = _box_iou(response.bbox, seen.labels == gt_id)
        assert iou >= MIN_PROMPT_BOX_IOU, (seen.index, correction, iou, response.message)
        was_dropped = "dropped" in response.message
        dropped += was_dropped
        corrected_dropped += was_dropped and correction
    print(f"{len(answers)} prompts applied, {dropped} of them on frames the tracker dropped "
          f"({corrected_dropped} corrections of existing objects)")
    assert len(answers) >= 8
    assert corrected_dropped >= 1  # the case the planner hits most


#: Two objects side by side (ground truth 1 and 2); with this scene's textures two positive
#: clicks give one mask over both (seed 0's do not).
PAIR_SCENE = SceneConfig(width=320, height=240, fps=10.0, duration_s=1.6, num_objects=3,
                         seed=3, with_depth=False)


def test_a_negative_click_on_a_dropped_frame_shrinks_the_mask(node) -> None:
    """A planner corrects an object on the camera frame it saw, which the node most likely
    dropped (it keeps only the newest frame while busy). The correction must refine the
    object's tracked mask on that frame, as SAM 2 refines: a negative click on one half of
    a mask over two objects (prompted as their union's mask: two clicks give the bundled
    model's mask of one) leaves the other half. Applied as a fresh start from the click
    alone a negative click makes an empty mask and the object is lost. Offline, for each
    frame of the burst that may be the dropped one, the box shrinks from 191 px wide to
    59-123 px, never empty."""
    _process, client, ns = node
    base = f"{ns}/sam2_tracker"
    deep = QoSProfile(depth=60, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)
    publisher = client.publisher(Image, f"{ns}/image", deep)
    masks = client.subscribe(Image, f"{base}/masks", deep)
    add_prompt = client.client(AddPrompt, f"{base}/add_prompt", timeout=WAIT)
    reset = client.client(ResetTracks, f"{base}/reset", timeout=WAIT)
    assert RosClient.call(reset, ResetTracks.Request(), WAIT).success
    wait_until(lambda: publisher.get_subscription_count() > 0, WAIT, "the node's subscription")
    wait_until(lambda: masks.subscription.get_publisher_count() > 0, WAIT, "the masks topic")
    frames = list(render_scene(PAIR_SCENE))
    _first_answer(publisher, masks, frames[0])
    for frame in frames[:4]:
        publisher.publish(image_msg(frame.rgb, frame.stamp_ns, "camera"))
        masks.with_stamp(frame.stamp_ns, WAIT)
    both = AddPrompt.Request(label="pair", mask=mono8(np.isin(frames[3].labels, (1, 2))))
    created = RosClient.call(add_prompt, both, WAIT)
    assert created.success, created.message
    before = created.bbox
    # A burst, as from a camera faster than the model: the node tracks a frame and, busy
    # with it, keeps only the newest of those arriving meanwhile.
    burst = frames[4:9]
    for frame in burst:
        publisher.publish(image_msg(frame.rgb, frame.stamp_ns, "camera"))
    masks.with_stamp(burst[-1].stamp_ns, WAIT)
    tracked = {stamp_to_ns(m.header.stamp) for m in list(masks.messages)}
    dropped = [f for f in burst[:-1] if f.stamp_ns not in tracked]
    assert dropped, "the node tracked every frame of the burst: nothing was dropped"
    seen = dropped[0]
    x, y = interior_point(seen.labels == 2)
    negative = AddPrompt.Request(object_id=created.object_id, points=[Point(x=x, y=y)],
                                 point_labels=[0])
    negative.stamp.sec, negative.stamp.nanosec = divmod(seen.stamp_ns, 1_000_000_000)
    corrected = RosClient.call(add_prompt, negative, WAIT)
    assert corrected.success, corrected.message
    assert "dropped" in corrected.message and stamp_to_ns(corrected.frame_stamp) == seen.stamp_ns
    after = corrected.bbox
    print(f"box before {before.width}x{before.height}, after the negative click on dropped "
          f"frame {seen.index}: {after.width}x{after.height}")
    assert after.width > 0 and after.height > 0, "the correction emptied the mask"
    assert after.width * after.height < before.width * before.height
    # The object is still tracked on the next frame.
    nxt = frames[9]
    publisher.publish(image_msg(nxt.rgb, nxt.stamp_ns, "camera"))
    labels = image_msg_to_array(masks.with_stamp(nxt.stamp_ns, WAIT))
    assert (labels == created.object_id).sum() > 0
