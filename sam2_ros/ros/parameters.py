"""The tracker node's parameters: declaration with descriptors, checks and run-time changes.

Everything that needs a restart (model, device, topics, QoS) is declared read-only, so a
``ros2 param set`` on it is refused by rclpy itself with a clear reason. The four settings
that can change while running (mask_threshold, publish_overlay, overlay_alpha, depth_scale)
are checked by :meth:`RuntimeSettings.on_set_parameters` and applied atomically.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from sam2_ros.settings import PARAMETERS, RUNTIME_PARAMETERS


class ParameterError(ValueError):
    """A parameter value the node cannot start with."""


@dataclass(frozen=True)
class NodeParameters:
    """The values read once at start-up."""

    model: str
    checkpoint: str
    device: str
    precision: str
    image_size: int
    compile: bool
    preprocessing: str
    cpu_threads: int
    workers: int
    max_objects: int
    prompt_history: int
    received_frames_mb: int
    max_prompt_frames: int
    tracking_mode: str
    motion_weight: float
    motion_admit_iou: float
    motion_admit_object_score: float
    motion_admit_overlap: float
    motion_continuity: float
    motion_admit_area: float
    motion_admit_appearance: float
    cameras: tuple[str, ...]
    image_transport: str
    input_bit_depth: int
    qos_reliability: str
    qos_depth: int
    publish_overlay: bool
    overlay_alpha: float
    use_depth: bool
    depth_scale: float
    mask_threshold: float
    depth_slop: float
    prompt_wait: float
    time_jump_reset: float
    occluded_frames: int
    remove_lost_after: float
    use_detections: bool
    detection_min_score: float
    detection_refresh_iou: float
    detection_forget_after: float
    shutdown_timeout: float
    frame_id_override: str
    diagnostics_period: float


def descriptor(name: str) -> ParameterDescriptor:
    """The ROS descriptor of a parameter, from its entry in settings.PARAMETERS."""
    p = PARAMETERS[name]
    desc = ParameterDescriptor(name=name, description=p.text, read_only=p.read_only)
    if p.choices:
        desc.additional_constraints = "one of: " + ", ".join(p.choices)
    if p.bounds is not None and p.kind is int:
        lo, hi = p.bounds
        desc.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=p.step)]
    elif p.bounds is not None:
        lo, hi = p.bounds
        desc.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
    if p.read_only:
        desc.additional_constraints = (desc.additional_constraints + "; " if p.choices else "") + (
            "read-only: restart the node to change it"
        )
    return desc


def declare_parameters(node: Node) -> NodeParameters:
    """Declare every parameter with its descriptor and return the checked start-up values."""
    values = {}
    for name, p in PARAMETERS.items():
        if p.kind is tuple:
            values[name] = p.coerce(_declare_array(node, name, p.default))
            continue
        values[name] = p.coerce(node.declare_parameter(name, p.default, descriptor(name)).value)
    problems = [r for r in (PARAMETERS[n].check(v) for n, v in values.items()) if r]
    if problems:
        raise ParameterError("invalid parameters: " + "; ".join(problems))
    return NodeParameters(**values)


def _declare_array(node: Node, name: str, default: tuple) -> list | None:
    """A string-array parameter. rclpy reads an empty list (``[]`` in a YAML file too) as
    unset or as a byte array; an unset parameter has no value for ``get_parameters``. So
    the override is read first (declared by type, not read-only), then the parameter is
    declared again, read-only, with that value or the default."""
    probe = ParameterDescriptor(name=name, type=Parameter.Type.STRING_ARRAY.value)
    given = node.declare_parameter(name, Parameter.Type.STRING_ARRAY, probe).value
    node.undeclare_parameter(name)
    value = list(given) if given else list(default)
    desc = descriptor(name)
    desc.dynamic_typing = not value  # an empty list is a byte array to rclpy
    return node.declare_parameter(name, value, desc, ignore_override=True).value


class RuntimeSettings:
    """The settings that may change while the node runs; read them through attributes."""

    def __init__(self, params: NodeParameters) -> None:
        self._lock = threading.Lock()
        self.mask_threshold = params.mask_threshold
        self.publish_overlay = params.publish_overlay
        self.overlay_alpha = params.overlay_alpha
        self.depth_scale = params.depth_scale
        self._listeners: list = []

    def add_listener(self, callback) -> None:
        """callback(name, value) after a run-time change was applied."""
        self._listeners.append(callback)

    def on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """rclpy on-set-parameters callback: all-or-nothing, with the reason on refusal."""
        changes = {}
        for param in parameters:
            if param.name not in PARAMETERS:
                continue  # rclpy refuses undeclared ones itself
            if param.name not in RUNTIME_PARAMETERS:
                # Read-only parameters are refused by rclpy before this callback; this
                # only sees them at declaration time.
                continue
            value = PARAMETERS[param.name].coerce(param.value)
            reason = PARAMETERS[param.name].check(value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            changes[param.name] = value
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)
        for name, value in changes.items():
            for callback in self._listeners:
                callback(name, value)
        return SetParametersResult(successful=True)
