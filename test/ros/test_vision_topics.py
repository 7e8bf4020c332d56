"""Where vision_msgs cannot be imported, the node runs without its detection topics: no
~/detections publishers, no detections subscription (the click topic stays), one info line."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not importable: source tools/env.sh")

from sam2_ros.ros.vision.prompt_topics import PromptTopics  # noqa: E402
from sam2_ros.ros.vision.vision_outputs import VisionOutputs  # noqa: E402


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture()
def node(monkeypatch: pytest.MonkeyPatch):
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=199)
    made = rclpy.create_node("vision_topics_test", context=context)
    log = _Log()
    monkeypatch.setattr(made, "get_logger", lambda: log)
    yield made, log
    made.destroy_node()
    rclpy.try_shutdown(context=context)


def test_without_vision_msgs_one_info_line_and_no_detection_topics(
    node, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, log = node
    monkeypatch.setitem(sys.modules, "vision_msgs.msg", None)  # import fails
    outputs = VisionOutputs(made, None, 5)
    outputs.open()
    assert outputs._pubs == {}
    outputs.publish(None, None, [], {})  # nothing to publish to: nothing happens
    params = SimpleNamespace(use_detections=True, detection_min_score=0.5,
                             detection_refresh_iou=0.5, detection_forget_after=0.0,
                             prompt_history=8)
    topics = PromptTopics(made, params, lambda *a: None, 10).start(services=None)
    assert topics == ["/click"]
    assert len(log.lines) == 2 and all("vision_msgs is not installed" in x for x in log.lines)
    names = {n for n, _ in made.get_publisher_names_and_types_by_node(
        "vision_topics_test", "/")}
    assert not any("detections" in n for n in names)


def test_with_vision_msgs_the_topics_exist(node) -> None:
    made, log = node
    outputs = VisionOutputs(made, None, 5)
    outputs.open()
    assert list(outputs._pubs) == ["detections"]  # no depth: no ~/detections_3d
    params = SimpleNamespace(use_detections=True, detection_min_score=0.5,
                             detection_refresh_iou=0.5, detection_forget_after=0.0,
                             prompt_history=8)
    topics = PromptTopics(made, params, lambda *a: None, 10).start(services=None)
    assert topics == ["/click", "/detections"] and log.lines == []
