"""The tracker node's ROS names: its node name, topics and services, in one place.

The node creates its topics and services under its private namespace (``~/masks``), the
demo, replay and benchmarks reach them from outside (``/sam2_tracker/masks``); both forms
come from here so that a renamed topic cannot leave a listener on a name nobody publishes.
Diagnostics are the exception: they go to the standard absolute ``/diagnostics`` topic
(where diagnostic_aggregator and rqt_robot_monitor read them), one status per node named
after the node. Imports nothing from ROS.
"""

from __future__ import annotations

NODE_NAME = "sam2_tracker"

# Published topics, relative to the node's private namespace.
MASKS = "masks"
OBJECTS = "objects"
OVERLAY = "overlay"
MARKERS = "markers"
DETECTIONS_OUT = "detections"  # vision_msgs/Detection2DArray of the tracked objects
DETECTIONS_3D = "detections_3d"  # vision_msgs/Detection3DArray, with depth

# Subscribed topics, relative to the node's namespace (remapped to a detector or a viewer).
DETECTIONS_IN = "detections"  # vision_msgs/Detection2DArray from a detector
CLICK = "click"  # geometry_msgs/PointStamped, e.g. rqt_image_view's <image>_mouse_left

# Services, relative to the node's private namespace.
ADD_PROMPT = "add_prompt"
REMOVE_OBJECTS = "remove_objects"
RESET = "reset"

#: The standard diagnostics topic (absolute: not under the node's namespace).
DIAGNOSTICS_TOPIC = "/diagnostics"


def private(name: str) -> str:
    """The name as the node itself creates it: ``~/masks``."""
    return f"~/{name}"


def node_fqn(namespace: str = "") -> str:
    """The node's fully qualified name: ``/sam2_tracker``, or ``/robot1/sam2_tracker`` for a
    node launched in namespace ``robot1``."""
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{prefix}/{NODE_NAME}"


def resolved(name: str, namespace: str = "") -> str:
    """The name as another process reaches it: ``/sam2_tracker/masks``."""
    return f"{node_fqn(namespace)}/{name}"


def diagnostics_status_name(node_fqn: str) -> str:
    """The name of the node's status inside a /diagnostics DiagnosticArray, from the node's
    fully qualified name (``/sam2_tracker``)."""
    return f"{node_fqn}: tracking"


def camera_prefix(camera: str) -> str:
    """What goes before a camera's topic and service names: ``front/``; "" for the one
    camera of a node without ``cameras``."""
    return f"{camera}/" if camera else ""


def camera_status_name(node_fqn: str, camera: str) -> str:
    """The name of one camera's status in /diagnostics (beside the node's)."""
    return f"{node_fqn}: camera {camera}"


def is_tracker_status(status_name: str, namespace: str = "") -> bool:
    """Whether a /diagnostics status is the tracker node's (other nodes share the topic)."""
    return status_name == diagnostics_status_name(node_fqn(namespace))
