"""``ros2 launch sam2_ros tracker.launch.py`` run for real, as a process, as users start it.

Needs the real launch stack (``ros2``, launch, launch_ros, composition_interfaces): a ROS 2
install has it; here tools/launch_stack.sh installs it from ../shared/ros2-launch where
that folder exists. Without it every test here is skipped with the reason. Each launch
runs in its own random ROS domain; the default-arguments launch is shared by its checks.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import parameter_value_to_python
from ros_processes import REPO, START_WAIT, NodeProcess, RosClient, image_msg, stamp_of, wait_until
from sam2_ros.msg import TrackedObjectArray
from sam2_ros.srv import AddPrompt
from sensor_msgs.msg import Image

from sam2_ros import names
from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene

WAIT = 90.0  # model load and first frame on a shared, busy machine
IMAGE_TOPIC = "/camera/color/image_raw"  # the launch file's default
ANSWER_WAIT = 20.0  # a get_state call unanswered this long is asked again


def _missing() -> str | None:
    missing = [m for m in ("launch", "launch_ros", "composition_interfaces")
               if importlib.util.find_spec(m) is None]
    if shutil.which("ros2") is None:
        missing.append("the ros2 command")
    if missing:
        return (f"the ROS 2 launch stack is not installed: {', '.join(missing)} missing "
                "(a ROS 2 install has it; tools/launch_stack.sh installs it where "
                "../shared/ros2-launch exists)")
    return None


@pytest.fixture(autouse=True, scope="module")
def _needs_launch():
    reason = _missing()
    if reason:
        print(reason)
        pytest.skip(reason)


class Launched:
    """One ``ros2 launch`` process and a test-side rclpy client in the same domain."""

    def __init__(self, tmp_path: Path, *arguments: str) -> None:
        self.domain = random.Random(os.urandom(8)).randint(1, 200)
        command = [shutil.which("ros2") or "ros2", "launch", "sam2_ros", "tracker.launch.py",
                   *arguments]
        self.process = NodeProcess([], self.domain, tmp_path, command=command)
        self.client = RosClient(self.domain)

    def parameters(self, fqn: str, wanted: list[str]) -> dict:
        get = self.client.client(GetParameters, f"{fqn}/get_parameters", WAIT)
        reply = RosClient.call(get, GetParameters.Request(names=wanted), WAIT)
        return {n: parameter_value_to_python(v) for n, v in zip(wanted, reply.values, strict=True)}

    def stop(self) -> int:
        self.client.close()
        return self.process.stop()


def _answer_to_a_frame(publisher, objects, first_stamp: int):
    """The node's objects for a frame of ours (sent again if lost: the image subscription
    is best effort in config/tracker.yaml, and discovery matches one side at a time)."""
    rgb = next(iter(render_scene(SceneConfig(width=64, height=48, duration_s=0.5)))).rgb
    return RosClient.publish_until_answered(
        lambda stamp: publisher.publish(image_msg(rgb, stamp, "camera")),
        [objects], first_stamp, f"an answer on {objects.topic}")[0]


def _track_after_prompt(launched: Launched, fqn: str, image_topic: str) -> None:
    """A frame, a box prompt on it (a new object), the next frame: that object is tracked."""
    client = launched.client
    publisher = client.publisher(Image, image_topic)
    objects = client.subscribe(TrackedObjectArray, f"{fqn}/{names.OBJECTS}")
    objects.topic = f"{fqn}/{names.OBJECTS}"
    wait_until(lambda: publisher.get_subscription_count() > 0, WAIT,
               f"the node's subscription on {image_topic}")
    wait_until(lambda: objects.subscription.get_publisher_count() > 0, WAIT,
               f"the node's {objects.topic} publisher")
    first = _answer_to_a_frame(publisher, objects, 1_700_000_000_000_000_000)
    add_prompt = client.client(AddPrompt, f"{fqn}/{names.ADD_PROMPT}", WAIT)
    request = AddPrompt.Request(object_id=0, use_box=True, box=[8.0, 8.0, 40.0, 36.0])
    request.stamp = first.header.stamp
    answer = RosClient.call(add_prompt, request, WAIT)
    assert answer.success, answer.message
    tracked = _answer_to_a_frame(publisher, objects, stamp_of(first.header) + 100_000_000)
    assert [o.id for o in tracked.objects] == [answer.object_id]


@pytest.fixture(scope="module")
def default_launch(tmp_path_factory):
    launched = Launched(tmp_path_factory.mktemp("launch_default"))
    try:
        launched.process.wait_for_log(r"ready: tracking frames", START_WAIT)
    except BaseException:
        launched.stop()
        raise
    yield launched
    launched.stop()


def test_default_launch_applies_the_parameters_file(default_launch):
    values = yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())
    expected = next(iter(values.values()))["ros__parameters"]
    applied = default_launch.parameters(names.node_fqn(), sorted(expected))
    assert applied == expected
    line = default_launch.process.wait_for_log(r"SAM 2 sam2_ros_demo on cpu.*image_size", WAIT)
    assert "image_size 256" in line


def test_default_launch_offers_the_topics_and_services(default_launch):
    node = default_launch.client.node
    topics = [names.resolved(t) for t in (names.MASKS, names.OBJECTS, names.OVERLAY)]
    services = [names.resolved(s)
                for s in (names.ADD_PROMPT, names.REMOVE_OBJECTS, names.RESET)]
    wait_until(lambda: set(topics) <= {n for n, _ in node.get_topic_names_and_types()},
               WAIT, f"topics {topics}")
    wait_until(lambda: set(services) <= {n for n, _ in node.get_service_names_and_types()},
               WAIT, f"services {services}")
    # The launch file's remapping: the node's "image" is the camera's topic.
    wait_until(lambda: node.count_subscribers(IMAGE_TOPIC) > 0, WAIT,
               f"the node's subscription on {IMAGE_TOPIC}")


def test_default_launch_tracks_a_prompted_object(default_launch):
    _track_after_prompt(default_launch, names.node_fqn(), IMAGE_TOPIC)


def test_default_launch_exits_0_on_sigint(default_launch):
    code = default_launch.stop()
    assert code == 0, default_launch.process.tail()
    assert "process has finished cleanly" in default_launch.process.log(), (
        default_launch.process.tail())


def test_namespace_sim_time_and_rviz_without_rviz2(tmp_path):
    launched = Launched(tmp_path, "namespace:=cam1", "use_sim_time:=true", "use_rviz:=true")
    try:
        launched.process.wait_for_log(r"use_rviz: rviz2 is not installed", START_WAIT)
        launched.process.wait_for_log(r"ready: tracking frames", START_WAIT)
        fqn = names.node_fqn("cam1")
        assert launched.parameters(fqn, ["use_sim_time"]) == {"use_sim_time": True}
        node = launched.client.node
        wait_until(lambda: names.resolved(names.MASKS, "cam1")
                   in {n for n, _ in node.get_topic_names_and_types()},
                   WAIT, f"{names.resolved(names.MASKS, 'cam1')}")
    finally:
        code = launched.stop()
    assert code == 0, launched.process.tail()


def test_two_cameras_launch_tracks_on_each_camera(tmp_path):
    """cameras:="[front, wrist]": each camera's image in, its outputs and services out."""
    launched = Launched(tmp_path, 'cameras:=[front, wrist]')
    try:
        launched.process.wait_for_log(r"ready: tracking frames .*\(camera wrist\)", START_WAIT)
        assert launched.parameters(names.node_fqn(), ["cameras"]) == {
            "cameras": ["front", "wrist"]}
        for camera in ("front", "wrist"):
            _track_after_prompt(launched, f"{names.node_fqn()}/{camera}", f"/{camera}/image")
    finally:
        code = launched.stop()
    assert code == 0, launched.process.tail()


def test_lifecycle_launch_reaches_active_and_tracks(tmp_path):
    launched = Launched(tmp_path, "lifecycle:=true")
    try:
        fqn = names.node_fqn()
        get_state = launched.client.client(GetState, f"{fqn}/get_state", START_WAIT)

        def active() -> bool:
            try:  # DDS can lose a call sent just after discovery: asked again on the next poll
                state = RosClient.call(get_state, GetState.Request(), ANSWER_WAIT).current_state
            except AssertionError:
                return False
            return state.id == State.PRIMARY_STATE_ACTIVE

        try:
            wait_until(active, START_WAIT, f"{fqn} to reach the active state", poll=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the launch's log:\n{launched.process.log()}") from None
        _track_after_prompt(launched, fqn, IMAGE_TOPIC)
    finally:
        code = launched.stop()
    assert code == 0, launched.process.tail()


def test_a_node_failing_at_start_fails_the_launch(tmp_path):
    launched = Launched(tmp_path, "model:=no_such_model")
    try:
        code = launched.process.proc.wait(START_WAIT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"ros2 launch still running {START_WAIT:.0f} s after a failed start:\n"
                             f"{launched.process.tail()}") from None
    finally:
        launched.stop()
    log = launched.process.log()
    assert code != 0, log
    # launch's own error names the node's reason.
    assert any("[launch]" in line and "unknown model 'no_such_model'" in line
               for line in log.splitlines()), log
