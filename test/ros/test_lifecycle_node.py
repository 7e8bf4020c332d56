"""tracker_lifecycle_node: the managed variant's transitions over real rclpy processes,
and an orderly exit on SIGTERM for both nodes."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_processes import (
    REPO,
    START_WAIT,
    NodeProcess,
    RosClient,
    image_msg,
    unique_domain_and_namespace,
    wait_until,
)
from sam2_ros.srv import AddPrompt, ResetTracks
from sensor_msgs.msg import Image

WAIT = 60.0
TINY = ["-p", "model:=sam2.1_hiera_t", "-p", "image_size:=64", "-p", "qos_reliability:=reliable"]
LIFECYCLE_SCRIPT = REPO / "scripts" / "tracker_lifecycle_node"


def _start(tmp_path: Path, *extra: str):
    domain, ns = unique_domain_and_namespace("sam2_lc")
    node = NodeProcess([*TINY, *extra, "-r", f"__ns:={ns}"], domain, tmp_path,
                       script=LIFECYCLE_SCRIPT)
    client = RosClient(domain)
    base = f"{ns}/sam2_tracker"
    return node, client, base, ns


PRIMARY = {State.PRIMARY_STATE_UNCONFIGURED, State.PRIMARY_STATE_INACTIVE,
           State.PRIMARY_STATE_ACTIVE, State.PRIMARY_STATE_FINALIZED}
#: The primary state each transition leads to when it succeeds.
TARGET = {
    Transition.TRANSITION_CONFIGURE: State.PRIMARY_STATE_INACTIVE,
    Transition.TRANSITION_ACTIVATE: State.PRIMARY_STATE_ACTIVE,
    Transition.TRANSITION_DEACTIVATE: State.PRIMARY_STATE_INACTIVE,
    Transition.TRANSITION_CLEANUP: State.PRIMARY_STATE_UNCONFIGURED,
    Transition.TRANSITION_UNCONFIGURED_SHUTDOWN: State.PRIMARY_STATE_FINALIZED,
}


def _ask(service_client, request):
    """A call that changes nothing, asked again if its reply is lost: a first call may be
    lost while DDS still matches the reply path (the service looks available before its
    replies can arrive)."""
    for _attempt in range(5):
        try:
            return RosClient.call(service_client, request, 12.0)
        except AssertionError:
            continue
    raise AssertionError(f"{service_client.srv_name} never answered")


def _state(client, base: str) -> int:
    get = client.client(GetState, f"{base}/get_state", START_WAIT)
    return _ask(get, GetState.Request()).current_state.id


def _transition(client, base: str, transition: int) -> bool:
    """Request a transition; if its reply is lost (see _state) or slow (a busy machine
    loading the model), the primary state it ends in tells."""
    change = client.client(ChangeState, f"{base}/change_state", WAIT)
    _state(client, base)  # the node answers services before the transition is asked
    try:
        request = ChangeState.Request(transition=Transition(id=transition))
        return RosClient.call(change, request, 20.0).success
    except AssertionError:
        ended = wait_until(lambda: [s for s in [_state(client, base)] if s in PRIMARY], START_WAIT,
                           f"the end of transition {transition}", poll=0.5)
        return ended[0] == TARGET[transition]


def test_lifecycle_transitions(tmp_path: Path) -> None:
    node, client, base, ns = _start(tmp_path)
    try:
        assert _state(client, base) == State.PRIMARY_STATE_UNCONFIGURED
        add_prompt = client.client(AddPrompt, f"{base}/add_prompt", WAIT)
        answer = _ask(add_prompt, AddPrompt.Request(points=[], point_labels=[]))
        assert not answer.success and "not configured" in answer.message

        assert _transition(client, base, Transition.TRANSITION_CONFIGURE)
        node.wait_for_log(r"SAM 2 sam2.1_hiera_t on cpu", START_WAIT)
        assert _state(client, base) == State.PRIMARY_STATE_INACTIVE
        answer = _ask(add_prompt, AddPrompt.Request())
        assert not answer.success and "inactive" in answer.message

        assert _transition(client, base, Transition.TRANSITION_ACTIVATE)
        assert _state(client, base) == State.PRIMARY_STATE_ACTIVE
        publisher = client.publisher(Image, f"{ns}/image")
        masks = client.subscribe(Image, f"{base}/masks")
        wait_until(lambda: publisher.get_subscription_count() > 0, WAIT, "the image subscription")
        wait_until(lambda: masks.subscription.get_publisher_count() > 0, WAIT, "masks")
        stamp = 1_700_000_000_000_000_000
        publisher.publish(image_msg(np.zeros((48, 64, 3), np.uint8), stamp, "camera"))
        masks.with_stamp(stamp, WAIT)
        request = AddPrompt.Request(points=[], point_labels=[], use_box=True,
                                    box=[10.0, 10.0, 30.0, 30.0])
        assert RosClient.call(add_prompt, request, WAIT).success

        assert _transition(client, base, Transition.TRANSITION_DEACTIVATE)
        assert _state(client, base) == State.PRIMARY_STATE_INACTIVE
        reset = client.client(ResetTracks, f"{base}/reset", WAIT)
        answer = _ask(reset, ResetTracks.Request())
        assert not answer.success and "inactive" in answer.message
        wait_until(lambda: publisher.get_subscription_count() == 0, WAIT, "unsubscribing")

        assert _transition(client, base, Transition.TRANSITION_CLEANUP)
        node.wait_for_log(r"cleaned up: model released", WAIT)
        assert _state(client, base) == State.PRIMARY_STATE_UNCONFIGURED
        assert _transition(client, base, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert _state(client, base) == State.PRIMARY_STATE_FINALIZED
    finally:
        client.close()
        code = node.stop()
    assert code == 0, node.tail()


def test_bad_checkpoint_fails_configure_with_a_clear_line(tmp_path: Path) -> None:
    node, client, base, _ = _start(tmp_path, "-p", "checkpoint:=/nonexistent/sam2.pt")
    try:
        assert not _transition(client, base, Transition.TRANSITION_CONFIGURE)
        line = node.wait_for_log(r"configure failed: ", WAIT)
        assert "checkpoint not found: /nonexistent/sam2.pt" in line
        assert _state(client, base) == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        client.close()
        assert node.stop() == 0


@pytest.mark.parametrize("script", ["tracker_node", "tracker_lifecycle_node"])
def test_sigterm_during_a_frame_exits_cleanly(tmp_path: Path, script: str) -> None:
    domain, ns = unique_domain_and_namespace("sam2_term")
    node = NodeProcess([*TINY, "-r", f"__ns:={ns}"], domain, tmp_path,
                       script=REPO / "scripts" / script)
    client = RosClient(domain)
    try:
        if script == "tracker_lifecycle_node":
            for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
                assert _transition(client, f"{ns}/sam2_tracker", transition)
        node.wait_for_log(r"ready: tracking frames", START_WAIT)
        publisher = client.publisher(Image, f"{ns}/image")
        wait_until(lambda: publisher.get_subscription_count() > 0, WAIT, "the image subscription")
        publisher.publish(image_msg(np.zeros((48, 64, 3), np.uint8), 1_000_000_000, "camera"))
        node.wait_for_log(r"SAM 2 ", WAIT)
    finally:
        client.close()
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(WAIT) == 0, node.tail()
    node.wait_for_log(r"shutting down: finishing the frame in progress", 5)
    assert "Traceback" not in node.log(), node.tail()


def test_lifecycle_with_two_cameras(tmp_path: Path) -> None:
    """Both cameras' sessions follow the transitions: frames of each tracked when active,
    both unsubscribed when inactive, both tracked again after cleanup and configure. One
    worker (``workers: 1``): the cameras' frames are tracked in one batch."""
    node, client, base, ns = _start(tmp_path, "-p", "cameras:=[front, wrist]",
                                    "-p", "workers:=1")
    try:
        publishers = {c: client.publisher(Image, f"{ns}/{c}/image") for c in ("front", "wrist")}
        masks = {c: client.subscribe(Image, f"{base}/{c}/masks") for c in ("front", "wrist")}
        stamp = 1_700_000_000_000_000_000
        for _cycle in range(2):
            assert _transition(client, base, Transition.TRANSITION_CONFIGURE)
            assert _transition(client, base, Transition.TRANSITION_ACTIVATE)
            for camera, publisher in publishers.items():
                wait_until(lambda p=publisher: p.get_subscription_count() > 0, WAIT,
                           f"the {camera}/image subscription")
                wait_until(lambda c=camera: masks[c].subscription.get_publisher_count() > 0,
                           WAIT, f"the {camera}/masks publisher")
            stamp += 10**8
            for publisher in publishers.values():
                publisher.publish(image_msg(np.zeros((48, 64, 3), np.uint8), stamp, "camera"))
            for inbox in masks.values():
                inbox.with_stamp(stamp, WAIT)
            assert _transition(client, base, Transition.TRANSITION_DEACTIVATE)
            for camera, publisher in publishers.items():
                wait_until(lambda p=publisher: p.get_subscription_count() == 0, WAIT,
                           f"unsubscribing {camera}/image")
            assert _transition(client, base, Transition.TRANSITION_CLEANUP)
        assert _transition(client, base, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    finally:
        client.close()
        code = node.stop()
    assert code == 0, node.tail()
