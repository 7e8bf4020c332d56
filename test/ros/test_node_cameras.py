"""Two cameras in one node process (``cameras: [front, wrist]``), over real DDS.

Each camera has its own topics (``front/image`` in, ``~/front/masks`` out), services and
tracking session: a prompt lands on its own camera's outputs, object ids are per camera,
a reset of one leaves the other tracked, a silent camera leaves the other tracked (and
/diagnostics says which is silent), a bad image on one is answered as on a one-camera
node and disturbs nothing of the other. The cameras differ in scene and frame size.
"""

from __future__ import annotations

import itertools
import os
import time

import pytest
from ros_processes import RosClient, image_msg, stamp_of
from sam2_ros.srv import RemoveObjects
from test_node import FRAME_ID, WAIT, Harness, _start, _stop, label_array

from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene

WRIST_SCENE = SceneConfig(width=80, height=60, fps=10.0, duration_s=2.0, num_objects=2, seed=7)


@pytest.fixture(scope="module")
def cameras(tmp_path_factory):
    """(front, wrist): harnesses of one node process serving both cameras."""
    front = _start(tmp_path_factory, "sam2_cams", {"cameras": ["front", "wrist"],
                                                   "diagnostics_period": 0.5},
                   camera="front")
    wrist = Harness(front.node, front.client, front.ns, camera="wrist")
    wrist.scene = list(render_scene(WRIST_SCENE))
    yield front, wrist
    _stop(front)


def _ids(objects) -> list[int]:
    return [o.id for o in objects.objects]


def test_prompts_land_on_their_own_camera(cameras):
    front, wrist = cameras
    front.reset()
    wrist.reset()
    front.process(0)
    wrist.process(0)
    a = front.call_prompt(points=[(12, 24)], labels=[1])
    b = front.call_prompt(points=[(40, 24)], labels=[1])
    c = wrist.call_prompt(points=[(30, 30)], labels=[1], label="gripper")
    assert a.success and b.success and c.success, (a.message, b.message, c.message)
    assert (a.object_id, b.object_id, c.object_id) == (1, 2, 1)  # ids are per camera
    for index in (1, 2):  # both cameras' frames at once: each on its own worker
        sf, sw = front.publish(index, with_depth=False), wrist.publish(index, with_depth=False)
        fo, wo = front.objects.with_stamp(sf, WAIT), wrist.objects.with_stamp(sw, WAIT)
        fm, wm = front.masks.with_stamp(sf, WAIT), wrist.masks.with_stamp(sw, WAIT)
        assert _ids(fo) == [1, 2] and _ids(wo) == [1]
        assert [o.label for o in wo.objects] == ["gripper"]
        assert (fm.width, fm.height, wm.width, wm.height) == (64, 48, 80, 60)
        assert set(label_array(wm).ravel()) <= {0, 1}


def test_reset_of_one_camera_leaves_the_other_tracked(cameras):
    front, wrist = cameras
    front.reset()
    wrist.reset()
    front.process(0)
    wrist.process(0)
    assert front.call_prompt(points=[(12, 24)], labels=[1]).success
    assert wrist.call_prompt(points=[(30, 30)], labels=[1]).success
    assert "everything" in front.reset().message
    _, _, fo = front.process(1)
    _, _, wo = wrist.process(1)
    assert _ids(fo) == [] and _ids(wo) == [1]


def _camera_status(msg, name: str):
    return next((s for s in msg.status if s.name.endswith(f": camera {name}")), None)


def _frames_received(msg, name: str) -> int:
    values = {v.key: v.value for v in _camera_status(msg, name).values}
    return int(values["frames_received"])


def _front_silent_while_wrist_fed(messages: list):
    """The first diagnostics message naming camera front silent in a period in which the
    wrist camera did receive frames (its count grew since the previous message), or None."""
    for prev, msg in itertools.pairwise(messages):
        front = _camera_status(msg, "front")
        if front is None or _camera_status(prev, "wrist") is None or "silent" not in front.message:
            continue
        if _frames_received(msg, "wrist") > _frames_received(prev, "wrist"):
            return msg
    return None


def test_a_silent_camera_leaves_the_other_tracked(cameras):
    front, wrist = cameras
    wrist.reset()
    wrist.process(0)
    assert wrist.call_prompt(points=[(30, 30)], labels=[1]).success
    front.diagnostics.clear()
    deadline = time.monotonic() + WAIT
    index, silent = 1, None
    while silent is None:  # front sends nothing; wrist frames go on until a period shows both
        _, _, wo = wrist.process(index)
        assert _ids(wo) == [1]
        index += 1
        silent = _front_silent_while_wrist_fed(list(front.diagnostics.messages))
        assert time.monotonic() < deadline, (
            f"no diagnostics period within {WAIT} s named camera front silent while the wrist "
            f"camera received frames ({len(front.diagnostics.messages)} messages)")
    node_status = silent.status[0]
    assert "silent: front" in node_status.message and "2 cameras" in node_status.message
    # cpu_threads 0: a torch thread per core; workers 0: one per core up to the 2 cameras
    workers = {v.key: v.value for v in node_status.values}["workers"]
    assert workers == str(min(2, len(os.sched_getaffinity(0)))), workers
    assert "silent" not in _camera_status(silent, "wrist").message


def test_bad_input_on_one_camera_is_answered_and_the_other_unaffected(cameras):
    front, wrist = cameras
    wrist.reset()
    wrist.process(0)
    assert wrist.call_prompt(points=[(30, 30)], labels=[1]).success
    mark = front.node.mark()
    bad = image_msg(front.rgb(0), front.next_stamp(), FRAME_ID)
    bad.step = 64 * 3 + 16  # the data is too short for this step
    front.image_pub.publish(bad)
    front.node.wait_for_log(r"bad image message of camera front .*ignored: .*data too short",
                            WAIT, since=mark)
    _, _, wo = wrist.process(1)
    assert _ids(wo) == [1]
    stamp, masks, _ = front.process(1)
    assert stamp_of(masks.header) == stamp
    unknown = front.reset_srv.srv_name
    assert unknown.endswith("/sam2_tracker/front/reset")
    refused = RosClient.call(wrist.remove, RemoveObjects.Request(object_ids=[99]))
    assert not refused.success and "unknown object id 99" in refused.message
    _, _, wo = wrist.process(2)
    assert _ids(wo) == [1]
    assert front.node.alive()
