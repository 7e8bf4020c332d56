"""``~/detections`` (vision_msgs/Detection2DArray) and, with depth, ``~/detections_3d``
(Detection3DArray): the tracked objects in the messages downstream nodes of a robot read.

Published where vision_msgs can be imported (every ROS 2 install has it); where it cannot,
one info line says so and the node runs without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rclpy.node import Node

from sam2_ros import names
from sam2_ros.engine.results import ObjectResult
from sam2_ros.ros.depth_pairing import DepthPairing
from sam2_ros.vision_messages import (
    build_detection3d_array,
    build_detection_array,
    rclpy_vision_types,
)


class VisionOutputs:
    """The vision_msgs publishers of one node."""

    def __init__(self, node: Node, depth: DepthPairing | None, qos, prefix: str = "") -> None:
        """``prefix``: a camera's (``front/``), before each topic name; empty for one camera."""
        self._node = node
        self._prefix = prefix
        self._depth = depth
        self._qos = qos
        self._pubs: dict[str, object] = {}
        self._types = None

    def open(self) -> None:
        try:
            self._types = rclpy_vision_types()
        except ImportError as exc:
            self._node.get_logger().info(
                f"vision_msgs is not installed ({exc}): no ~/{names.DETECTIONS_OUT} "
                f"or ~/{names.DETECTIONS_3D}"
            )
            return
        node, types = self._node, self._types
        self._pubs[names.DETECTIONS_OUT] = node.create_publisher(
            types.Detection2DArray, names.private(self._prefix + names.DETECTIONS_OUT), self._qos)
        if self._depth is not None:
            self._pubs[names.DETECTIONS_3D] = node.create_publisher(
                types.Detection3DArray, names.private(self._prefix + names.DETECTIONS_3D),
                self._qos)

    def close(self) -> None:
        for pub in self._pubs.values():
            self._node.destroy_publisher(pub)
        self._pubs = {}

    def publish(self, image_header, header, objects: Sequence[ObjectResult],
                positions: Mapping[int, Sequence[float]]) -> None:
        """One frame's objects (``header`` as the node's other outputs have it); the 3D
        boxes are sized with the camera_info paired with the image."""
        pub = self._pubs.get(names.DETECTIONS_OUT)
        if pub is None:
            return
        pub.publish(build_detection_array(self._types, header, objects))
        pub3d = self._pubs.get(names.DETECTIONS_3D)
        if pub3d is not None and positions:
            _depth, info, _state = self._depth.match(image_header)
            k = info.k if info is not None else None
            pub3d.publish(build_detection3d_array(
                self._types, header, objects, positions, _extents(objects, positions, k)))


def _extents(objects: Sequence[ObjectResult], positions: Mapping[int, Sequence[float]],
             k: Sequence[float] | None) -> dict[int, tuple[float, float, float]]:
    """Width and height in metres of each object's image box at its depth (pinhole
    model); depth extent unknown (0)."""
    if k is None or not k[0] or not k[4]:
        return {}
    fx, fy = float(k[0]), float(k[4])
    out = {}
    for r in objects:
        if r.object_id in positions:
            z = float(positions[r.object_id][2])
            out[r.object_id] = (r.bbox[2] * z / fx, r.bbox[3] * z / fy, 0.0)
    return out
