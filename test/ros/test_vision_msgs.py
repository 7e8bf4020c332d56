"""vision_msgs as the node uses it: the test stand-in (test/interfaces/vision_msgs) must match
the real vision_msgs 4.x (ROS 2 Humble to Jazzy) field for field, so code written and tested
against it runs unchanged on a real ROS 2 install."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy is not importable: source tools/env.sh")

ROOT = Path(__file__).resolve().parents[2]

#: vision_msgs 4.x, message -> (field, type) in order, as rosidl reports them.
REAL_LAYOUT = {
    "Point2D": [("x", "double"), ("y", "double")],
    "Pose2D": [("position", "vision_msgs/Point2D"), ("theta", "double")],
    "BoundingBox2D": [
        ("center", "vision_msgs/Pose2D"), ("size_x", "double"), ("size_y", "double"),
    ],
    "BoundingBox3D": [("center", "geometry_msgs/Pose"), ("size", "geometry_msgs/Vector3")],
    "ObjectHypothesis": [("class_id", "string"), ("score", "double")],
    "ObjectHypothesisWithPose": [
        ("hypothesis", "vision_msgs/ObjectHypothesis"),
        ("pose", "geometry_msgs/PoseWithCovariance"),
    ],
    "Detection2D": [
        ("header", "std_msgs/Header"),
        ("results", "sequence<vision_msgs/ObjectHypothesisWithPose>"),
        ("bbox", "vision_msgs/BoundingBox2D"),
        ("id", "string"),
    ],
    "Detection2DArray": [
        ("header", "std_msgs/Header"), ("detections", "sequence<vision_msgs/Detection2D>"),
    ],
    "Detection3D": [
        ("header", "std_msgs/Header"),
        ("results", "sequence<vision_msgs/ObjectHypothesisWithPose>"),
        ("bbox", "vision_msgs/BoundingBox3D"),
        ("id", "string"),
    ],
    "Detection3DArray": [
        ("header", "std_msgs/Header"), ("detections", "sequence<vision_msgs/Detection3D>"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REAL_LAYOUT))
def test_messages_have_the_real_layout(name: str) -> None:
    import vision_msgs.msg

    fields = getattr(vision_msgs.msg, name).get_fields_and_field_types()
    assert list(fields.items()) == REAL_LAYOUT[name]


def test_a_detection_array_survives_serialization() -> None:
    from rclpy.serialization import deserialize_message, serialize_message
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    det = Detection2D(id="7")
    det.bbox.center.position.x, det.bbox.center.position.y = 12.5, 30.0
    det.bbox.size_x, det.bbox.size_y = 8.0, 4.0
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id, hyp.hypothesis.score = "cup", 0.75
    det.results.append(hyp)
    back = deserialize_message(serialize_message(Detection2DArray(detections=[det])),
                               Detection2DArray)
    got = back.detections[0]
    assert (got.id, got.bbox.center.position.x, got.bbox.size_y) == ("7", 12.5, 4.0)
    assert (got.results[0].hypothesis.class_id, got.results[0].hypothesis.score) == ("cup", 0.75)


def _discovered(base_paths: list[str]) -> list[str]:
    """Package names colcon finds under ``base_paths`` (its own discovery, as `build` does)."""
    import argparse

    from colcon_core.package_discovery import add_package_discovery_arguments, discover_packages
    from colcon_core.package_identification import get_package_identification_extensions

    parser = argparse.ArgumentParser()
    add_package_discovery_arguments(parser)
    args = parser.parse_args(["--base-paths", *base_paths])
    return sorted(d.name for d in discover_packages(args, get_package_identification_extensions()))


def test_the_stand_in_is_built_only_when_named() -> None:
    """A `colcon build` of a workspace holding this repository must not overlay a real
    vision_msgs with the stand-in; tools/bootstrap.sh names it where none is installed."""
    assert _discovered([str(ROOT)]) == ["sam2_ros"]
    assert _discovered([str(ROOT), str(ROOT / "test" / "interfaces" / "vision_msgs")]) == [
        "sam2_ros", "vision_msgs",
    ]
