"""vision_msgs in and out, for any message library: detections read, tracked objects written.

Downstream nodes of a robot read ``vision_msgs`` (Detection2DArray, Detection3DArray), and
detectors publish them. The live node uses rclpy's classes, bag replay rosbags' ones; both
construct messages from keyword arguments and read them by attribute, so one builder and
one parser (given the classes, ``VisionTypes``) serve both. rosbags' classes have no
defaults: every field is filled here. Imports nothing from ROS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2_ros.engine.detections import Detection
from sam2_ros.engine.results import ObjectResult


@dataclass(frozen=True)
class VisionTypes:
    """The vision_msgs classes (and the geometry_msgs ones they hold) of one library."""

    Detection2DArray: Any
    Detection2D: Any
    Detection3DArray: Any
    Detection3D: Any
    ObjectHypothesisWithPose: Any
    ObjectHypothesis: Any
    BoundingBox2D: Any
    BoundingBox3D: Any
    Pose2D: Any
    Point2D: Any
    PoseWithCovariance: Any
    Pose: Any
    Point: Any
    Quaternion: Any
    Vector3: Any


def rclpy_vision_types() -> VisionTypes:
    """rclpy's classes; raises ImportError where vision_msgs is not installed."""
    from geometry_msgs.msg import Point, Pose, PoseWithCovariance, Quaternion, Vector3
    from vision_msgs.msg import (
        BoundingBox2D,
        BoundingBox3D,
        Detection2D,
        Detection2DArray,
        Detection3D,
        Detection3DArray,
        ObjectHypothesis,
        ObjectHypothesisWithPose,
        Point2D,
        Pose2D,
    )

    return VisionTypes(Detection2DArray, Detection2D, Detection3DArray, Detection3D,
                       ObjectHypothesisWithPose, ObjectHypothesis, BoundingBox2D,
                       BoundingBox3D, Pose2D, Point2D, PoseWithCovariance, Pose, Point,
                       Quaternion, Vector3)


# --------------------------------------------------------------------------- out


def _pose(types: VisionTypes, position: Sequence[float] = (0.0, 0.0, 0.0)) -> Any:
    x, y, z = (float(v) for v in position)
    return types.Pose(position=types.Point(x=x, y=y, z=z),
                      orientation=types.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0))


def _hypothesis(types: VisionTypes, result: ObjectResult,
                position: Sequence[float] = (0.0, 0.0, 0.0)) -> Any:
    return types.ObjectHypothesisWithPose(
        hypothesis=types.ObjectHypothesis(class_id=result.label, score=float(result.score)),
        pose=types.PoseWithCovariance(pose=_pose(types, position),
                                      covariance=np.zeros(36, np.float64)),
    )


def _shown(results: Sequence[ObjectResult]) -> list[ObjectResult]:
    """The visible objects (those with a box), by id."""
    return sorted((r for r in results if r.visible and r.area > 0), key=lambda r: r.object_id)


def build_detection_array(types: VisionTypes, header: Any,
                          results: Sequence[ObjectResult]) -> Any:
    """Detection2DArray: one detection per visible object, its mask's box, the object id
    as the detection id, its label and SAM 2's mask score as the one hypothesis."""
    detections = []
    for r in _shown(results):
        x, y, w, h = (float(v) for v in r.bbox)
        bbox = types.BoundingBox2D(
            center=types.Pose2D(position=types.Point2D(x=x + w / 2, y=y + h / 2), theta=0.0),
            size_x=w, size_y=h,
        )
        detections.append(types.Detection2D(header=header, results=[_hypothesis(types, r)],
                                            bbox=bbox, id=str(r.object_id)))
    return types.Detection2DArray(header=header, detections=detections)


def build_detection3d_array(types: VisionTypes, header: Any, results: Sequence[ObjectResult],
                            positions: Mapping[int, Sequence[float]],
                            extents: Mapping[int, Sequence[float]] | None = None) -> Any:
    """Detection3DArray: one detection per visible object with a 3D position (from depth),
    the box centred there, axis-aligned, sized ``extents[id]`` (metres) where known."""
    extents = extents or {}
    detections = []
    for r in _shown(results):
        if r.object_id not in positions:
            continue
        sx, sy, sz = (float(v) for v in extents.get(r.object_id, (0.0, 0.0, 0.0)))
        bbox = types.BoundingBox3D(center=_pose(types, positions[r.object_id]),
                                   size=types.Vector3(x=sx, y=sy, z=sz))
        detections.append(types.Detection3D(
            header=header, results=[_hypothesis(types, r, positions[r.object_id])],
            bbox=bbox, id=str(r.object_id),
        ))
    return types.Detection3DArray(header=header, detections=detections)


def build_detector_array(types: VisionTypes, header: Any,
                         detections: Sequence[Detection]) -> Any:
    """Detection2DArray as a detector publishes it (axis-aligned boxes, one hypothesis of
    class and score each): what the synthetic detector's messages look like on a topic."""
    out = []
    for det in detections:
        x0, y0, x1, y1 = (float(v) for v in det.box)
        bbox = types.BoundingBox2D(
            center=types.Pose2D(position=types.Point2D(x=(x0 + x1) / 2, y=(y0 + y1) / 2),
                                theta=0.0),
            size_x=x1 - x0, size_y=y1 - y0,
        )
        hypothesis = types.ObjectHypothesisWithPose(
            hypothesis=types.ObjectHypothesis(class_id=det.label, score=float(det.score)),
            pose=types.PoseWithCovariance(pose=_pose(types), covariance=np.zeros(36, np.float64)),
        )
        out.append(types.Detection2D(header=header, results=[hypothesis], bbox=bbox, id=""))
    return types.Detection2DArray(header=header, detections=out)


# --------------------------------------------------------------------------- in


def detections_of(msg: Any) -> list[Detection]:
    """The detections of a Detection2DArray as axis-aligned pixel boxes with the best
    hypothesis' class and score (no hypothesis: no label, score 1). A rotated box becomes
    the axis-aligned box around it. Values are taken as given: ``check_detections`` judges
    them."""
    out = []
    for det in msg.detections:
        bbox = det.bbox
        cx, cy = float(bbox.center.position.x), float(bbox.center.position.y)
        theta = float(bbox.center.theta)
        sx, sy = float(bbox.size_x), float(bbox.size_y)
        if theta and math.isfinite(theta):
            c, s = abs(math.cos(theta)), abs(math.sin(theta))
            sx, sy = c * sx + s * sy, s * sx + c * sy
        box = (cx - sx / 2, cy - sy / 2, cx + sx / 2, cy + sy / 2)
        label, score = "", 1.0
        if len(det.results):
            best = max(det.results, key=lambda h: float(h.hypothesis.score))
            label, score = str(best.hypothesis.class_id), float(best.hypothesis.score)
        out.append(Detection(box, score, label))
    return out
