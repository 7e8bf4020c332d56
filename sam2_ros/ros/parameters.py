"""The tracker node's parameters: declaration with descriptors, checks and run-time changes.

Everything that needs a restart (model, device, topics, QoS) is declared read-only, so a
``ros2 param set`` on it is refused by rclpy itself with a clear reason. The four settings
that can change while running (mask_threshold, publish_overlay, overlay_alpha, depth_scale)
are checked by :meth:`RuntimeSettings.on_set_parameters` and applied atomically.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

# name -> (default, description, read_only, range (lo, hi[, step]) or None, choices or None).
# The defaults match config/tracker.yaml (a test checks that).
PARAMETERS: dict[str, tuple[Any, str, bool, tuple | None, tuple[str, ...] | None]] = {
    "model": (
        "sam2.1_hiera_t",
        "SAM 2 model name (sam2.1_hiera_t/s/b+/l, sam2_hiera_*) or a model config .yaml path",
        True,
        None,
        None,
    ),
    "checkpoint": (
        "",
        "Official SAM 2 checkpoint (.pt); empty = RANDOM weights (tests and demos only)",
        True,
        None,
        None,
    ),
    "device": (
        "auto",
        "Torch device: auto (cuda, mps, cpu), cpu, cuda, cuda:1 ...",
        True,
        None,
        None,
    ),
    "precision": (
        "auto",
        "auto (bf16 on CUDA, fp32 elsewhere), fp32, bf16 or fp16",
        True,
        None,
        ("auto", "fp32", "float32", "bf16", "bfloat16", "fp16", "float16"),
    ),
    "image_size": (
        0,
        "Model input size in pixels (multiple of 32, >= 64); 0 = the model config's",
        True,
        (0, 4096, 32),
        None,
    ),
    "compile": (
        False,
        "torch.compile the image encoder (slow start, faster on some GPUs)",
        True,
        None,
        None,
    ),
    "cpu_threads": (
        0,
        "torch CPU threads; 0 = all cores but one (leaves a core to DDS and callbacks), "
        "-1 = torch's default",
        True,
        (-1, 1024, 1),
        None,
    ),
    "max_objects": (
        16,
        "Most objects tracked at once; AddPrompt for a new object fails beyond",
        True,
        (1, 1024, 1),
        None,
    ),
    "prompt_history": (
        8,
        "Recent frames kept so a prompt may name a past stamp",
        True,
        (1, 256, 1),
        None,
    ),
    "max_prompt_frames": (
        4,
        "Prompted frames kept per object; beyond, the oldest becomes an ordinary memory frame "
        "(the ones SAM 2 would pick)",
        True,
        (2, 64, 1),
        None,
    ),
    "image_transport": (
        "raw",
        "raw: subscribe 'image' (sensor_msgs/Image); compressed: "
        "'image/compressed' (sensor_msgs/CompressedImage)",
        True,
        None,
        ("raw", "compressed"),
    ),
    "qos_reliability": (
        "best_effort",
        "Reliability of the image subscriptions",
        True,
        None,
        ("best_effort", "reliable"),
    ),
    "qos_depth": (1, "History depth of the image subscriptions", True, (1, 1000, 1), None),
    "publish_overlay": (
        True,
        "Publish ~/overlay (bgr8) while someone subscribes to it",
        False,
        None,
        None,
    ),
    "overlay_alpha": (0.5, "Mask opacity in ~/overlay", False, (0.0, 1.0), None),
    "use_depth": (
        False,
        "Subscribe 'depth' and 'camera_info' for 3D positions and ~/markers "
        "(needs message_filters)",
        True,
        None,
        None,
    ),
    "depth_scale": (
        0.001,
        "Metres per unit of 16UC1 depth images (0.001 = millimetres)",
        False,
        (1e-6, 100.0),
        None,
    ),
    "mask_threshold": (0.0, "Mask logit threshold (0.0 = SAM 2's)", False, (-32.0, 32.0), None),
    "frame_id_override": (
        "",
        "frame_id for the outputs; empty = the image's frame_id",
        True,
        None,
        None,
    ),
    "diagnostics_period": (
        1.0,
        "Seconds between ~/diagnostics messages; 0 = none",
        True,
        (0.0, 3600.0),
        None,
    ),
}

RUNTIME_PARAMETERS = ("mask_threshold", "publish_overlay", "overlay_alpha", "depth_scale")


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
    cpu_threads: int
    max_objects: int
    prompt_history: int
    max_prompt_frames: int
    image_transport: str
    qos_reliability: str
    qos_depth: int
    publish_overlay: bool
    overlay_alpha: float
    use_depth: bool
    depth_scale: float
    mask_threshold: float
    frame_id_override: str
    diagnostics_period: float


def descriptor(name: str) -> ParameterDescriptor:
    _, text, read_only, limits, choices = PARAMETERS[name]
    desc = ParameterDescriptor(name=name, description=text, read_only=read_only)
    if choices:
        desc.additional_constraints = "one of: " + ", ".join(choices)
    if limits is not None and isinstance(PARAMETERS[name][0], int):
        lo, hi, step = limits
        desc.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=step)]
    elif limits is not None:
        lo, hi = limits
        desc.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
    if read_only:
        desc.additional_constraints = (desc.additional_constraints + "; " if choices else "") + (
            "read-only: restart the node to change it"
        )
    return desc


def check_value(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for ``name`` (None when it is)."""
    default, _, _, limits, choices = PARAMETERS[name]
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"{name} must be a bool, got {value!r}"
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"{name} must be finite, got {value}"
    if limits is not None and isinstance(value, int | float):
        lo, hi = limits[0], limits[1]
        if not lo <= value <= hi:
            return f"{name} must be within [{lo}, {hi}], got {value}"
    if name == "depth_scale" and value <= 0:
        return f"depth_scale must be > 0, got {value}"
    if name == "image_size" and value != 0 and (value < 64 or value % 32):
        return f"image_size must be 0 (the model's) or a multiple of 32 >= 64, got {value}"
    if choices and value not in choices:
        return f"{name} must be one of {', '.join(choices)}; got {value!r}"
    return None


def declare_parameters(node: Node) -> NodeParameters:
    """Declare every parameter with its descriptor and return the checked start-up values."""
    values = {}
    for name, (default, *_rest) in PARAMETERS.items():
        values[name] = node.declare_parameter(name, default, descriptor(name)).value
    problems = [p for p in (check_value(n, v) for n, v in values.items()) if p]
    if problems:
        raise ParameterError("invalid parameters: " + "; ".join(problems))
    return NodeParameters(**values)


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
            value = param.value
            if isinstance(PARAMETERS[param.name][0], float) and isinstance(value, int):
                value = float(value)
            reason = check_value(param.name, value)
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
