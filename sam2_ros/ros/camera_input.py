"""The camera and depth subscriptions, on a small node with an executor of their own.

Why: rclpy's executors do their waiting in Python, and the cost of every wake-up grows
with the entities of the node (the tracker node has services, parameter services, a
timer, publishers with their QoS event handlers). At camera rates the tracker node's
executor took a good part of a core, and the interpreter lock, from the model (measured:
docs/benchmarks.md, "The node on every core"). Here the camera messages wake a
single-threaded executor whose node holds only these subscriptions; the tracker node's
executor wakes for service calls and its timer only.

The input node is named ``<tracker>_camera`` in the tracker's namespace. It takes no
command-line arguments of its own (so a launch file's ``__node`` rename cannot give two
nodes one name): the tracker node resolves the topic names, remappings included, and the
input node subscribes to those absolute names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile


class CameraInput:
    """Subscriptions for the tracker, served by their own node, executor and thread."""

    def __init__(self, tracker_node: Node) -> None:
        self._tracker_node = tracker_node
        context = tracker_node.context
        self.node = rclpy.create_node(
            f"{tracker_node.get_name()}_camera",
            namespace=tracker_node.get_namespace(),
            context=context,
            use_global_arguments=False,
            start_parameter_services=False,
        )
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="camera-input", daemon=True)
        self._thread.start()

    def subscribe(
        self, msg_type: Any, topic: str, callback: Callable[[Any], None], qos: QoSProfile
    ) -> str:
        """Subscribe ``topic`` as the tracker node would resolve it; returns that name."""
        name = self._tracker_node.resolve_topic_name(topic)
        self.node.create_subscription(msg_type, name, callback, qos)
        return name

    def _spin(self) -> None:
        context = self.node.context
        while not self._stop.is_set() and context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.1)
            except ExternalShutdownException:
                return
            except Exception as exc:  # a callback's bug must not end camera input
                self.node.get_logger().error(f"camera input callback failed: {exc!r}")

    def close(self, timeout: float = 2.0) -> None:
        """Stop receiving: no callback runs once this returns (or after ``timeout``)."""
        self._stop.set()
        self._thread.join(timeout)
        self._executor.remove_node(self.node)
        self._executor.shutdown(timeout_sec=0.1)
        self.node.destroy_node()
