"""What the demo hears from the tracker node, with arrival times, and its output bag.

The node's objects, masks, overlay (and ``~/detections`` where rclpy has vision_msgs) are
kept as they arrive for the summary, and as raw messages for the output bag; its
diagnostics give the engine's own time per frame.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2_ros import names
from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import DETECTIONS_OUT_TOPIC, MASKS_TOPIC, OBJECTS_TOPIC, OVERLAY_TOPIC
from sam2_ros.messages import stamp_to_ns


@dataclass
class Recorder:
    """The node's outputs by stamp; callbacks fill it from executor threads."""

    #: The node's diagnostics status this recorder reads the engine time from.
    status_name: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    processed: dict[int, float] = field(default_factory=dict)  # stamp -> receive time
    objects: dict[int, object] = field(default_factory=dict)  # stamp -> TrackedObjectArray
    label_images: dict[int, np.ndarray] = field(default_factory=dict)
    overlays: list[tuple[int, np.ndarray]] = field(default_factory=list)
    new_frame: threading.Condition = field(default_factory=threading.Condition)
    #: The node's mean engine time per frame, one value per diagnostics period.
    engine_ms: list[float] = field(default_factory=list)
    engine_reported: threading.Event = field(default_factory=threading.Event)
    #: (topic, stamp, serialized message): sqlite wants one thread, so the messages are
    #: kept here and written by ``write_bag`` on the main thread.
    raw: list[tuple[str, int, bytes]] = field(default_factory=list)
    raw_lock: threading.Lock = field(default_factory=threading.Lock)
    with_detections: bool = False  # ~/detections recorded too (vision_msgs importable)

    def subscribe(self, node, topics: dict[str, str], qos, group) -> object:
        """Subscribe ``node`` to the tracker's outputs (``topics``: replay's topic names ->
        the node's); returns the objects subscription, whose publisher shows the node is up."""
        from sensor_msgs.msg import Image

        from sam2_ros.msg import TrackedObjectArray

        objects_sub = node.create_subscription(
            TrackedObjectArray, topics[OBJECTS_TOPIC], self._on_objects, qos,
            callback_group=group, raw=True)
        node.create_subscription(Image, topics[MASKS_TOPIC], self._on_masks, qos,
                                 callback_group=group, raw=True)
        node.create_subscription(Image, topics[OVERLAY_TOPIC], self._on_overlay, qos,
                                 callback_group=group, raw=True)
        try:  # ~/detections into the output bag too, where rclpy has vision_msgs
            from vision_msgs.msg import Detection2DArray
        except ImportError:
            pass
        else:
            self.with_detections = True
            node.create_subscription(
                Detection2DArray, topics[DETECTIONS_OUT_TOPIC],
                lambda raw: self._keep(DETECTIONS_OUT_TOPIC, raw, Detection2DArray),
                qos, callback_group=group, raw=True)
        try:
            from diagnostic_msgs.msg import DiagnosticArray
        except ImportError:
            pass
        else:
            node.create_subscription(DiagnosticArray, names.DIAGNOSTICS_TOPIC,
                                     self._on_diagnostics, 10, callback_group=group)
        return objects_sub

    def _keep(self, topic: str, raw: bytes, msg_type) -> object:
        from rclpy.serialization import deserialize_message

        msg = deserialize_message(raw, msg_type)
        stamp = stamp_to_ns(msg.header.stamp)
        with self.raw_lock:
            self.raw.append((topic, stamp, bytes(raw)))
        return msg

    def _on_objects(self, raw: bytes) -> None:
        from sam2_ros.msg import TrackedObjectArray

        now = time.monotonic()
        msg = self._keep(OBJECTS_TOPIC, raw, TrackedObjectArray)
        stamp = stamp_to_ns(msg.header.stamp)
        with self.new_frame:
            self.processed.setdefault(stamp, now)
            self.objects[stamp] = msg
            self.new_frame.notify_all()

    def _on_masks(self, raw: bytes) -> None:
        from sensor_msgs.msg import Image

        msg = self._keep(MASKS_TOPIC, raw, Image)
        stamp = stamp_to_ns(msg.header.stamp)
        labels = np.frombuffer(bytes(msg.data), dtype=np.uint16).reshape(msg.height, msg.width)
        with self.lock:
            self.label_images[stamp] = labels

    def _on_overlay(self, raw: bytes) -> None:
        from sensor_msgs.msg import Image

        msg = self._keep(OVERLAY_TOPIC, raw, Image)
        stamp = stamp_to_ns(msg.header.stamp)
        bgr = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)
        with self.lock:
            self.overlays.append((stamp, bgr.copy()))

    def _on_diagnostics(self, msg) -> None:
        """The node's own per-frame engine time (mean over each diagnostics period)."""
        for status in msg.status:
            if status.name != self.status_name:
                continue
            values = {kv.key: kv.value for kv in status.values}
            if float(values.get("output_rate_hz", 0) or 0) > 0 and "total_ms" in values:
                self.engine_ms.append(float(values["total_ms"]))
                self.engine_reported.set()

    def write_bag(self, path: Path) -> None:
        """What was recorded, in time order, under the one-camera topic names."""
        topics = {
            OBJECTS_TOPIC: bag_io.TRACKED_OBJECT_ARRAY_TYPE,
            MASKS_TOPIC: bag_io.IMAGE_TYPE,
            OVERLAY_TOPIC: bag_io.IMAGE_TYPE,
        }
        if self.with_detections:
            topics[DETECTIONS_OUT_TOPIC] = bag_io.DETECTION_ARRAY_TYPE
        with self.raw_lock:
            recorded = sorted(self.raw, key=lambda item: item[1])
        with bag_io.BagWriter(path, topics) as bag:
            for topic, stamp, raw in recorded:
                bag.write_raw(topic, stamp, raw)
