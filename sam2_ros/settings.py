"""One source of defaults: every setting of the tracker, read by the node, the CLI and docs.

``PARAMETERS`` is the table of the node's parameters (ROS-free, so the engine's users and
the command-line tools read the same defaults). ``TrackerSettings`` is how to build a
tracker, shared by the node, replay, the demo and the benchmarks.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine imports torch; settings stay importable without it
    from sam2_ros.engine.model_loading import LoadedModel
    from sam2_ros.engine.streaming_tracker import StreamingTracker

#: Every node parameter: name -> (default, description, read_only, range (lo, hi[, step]) or
#: None, choices or None). config/tracker.yaml and README's table are generated from it
#: (`sam2_ros params --format yaml|markdown`; tests check both are current).
PARAMETERS: dict[str, tuple[Any, str, bool, tuple | None, tuple[str, ...] | None]] = {
    "model": (
        "sam2_ros_demo",
        "SAM 2 model: sam2_ros_demo (this project's synthetic-scene model, weights bundled), "
        "sam2.1_hiera_t/s/b+/l, sam2_hiera_* (give their checkpoint) or a config .yaml path",
        True,
        None,
        None,
    ),
    "checkpoint": (
        "",
        "SAM 2 checkpoint (.pt); empty = the model's bundled weights (sam2_ros_demo) or "
        "RANDOM weights (official models: tests only)",
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
        "auto (bf16 on CUDA and on CPUs with native bf16, else fp32), fp32, bf16 or fp16",
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
        "torch.compile the image encoder at start (about 30 s on a CPU; measured 1.5x "
        "faster encoder there with bf16)",
        True,
        None,
        None,
    ),
    "cpu_threads": (
        0,
        "torch CPU threads; 0 = every core the node may use, -1 = torch's default",
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
    "input_bit_depth": (
        0,
        "Significant bits of 16-bit colour/mono images (mono16, rgb16, 16UC1 cameras): "
        "10, 12, 14 or 16; 0 = judged per frame from its largest value",
        True,
        (0, 16, 1),
        None,
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
        "Subscribe 'depth' and 'camera_info' (registered to the colour image: same "
        "frame_id) for 3D positions and ~/markers; never holds a frame back",
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
    "depth_slop": (
        0.05,
        "Seconds a depth image / camera_info may be from a camera frame's stamp to be paired "
        "with it; frames without a pair are tracked without 3D positions",
        True,
        (0.0, 10.0),
        None,
    ),
    "prompt_wait": (
        2.0,
        "Seconds a prompt naming a received but not yet processed frame waits for it",
        True,
        (0.0, 60.0),
        None,
    ),
    "occluded_frames": (
        30,
        "Frames an object may stay not visible as 'occluded' before its state is 'lost'",
        True,
        (0, 100000, 1),
        None,
    ),
    "remove_lost_after": (
        0.0,
        "Seconds after which a lost object is removed; 0 = never",
        True,
        (0.0, 86400.0),
        None,
    ),
    "shutdown_timeout": (
        5.0,
        "Seconds a frame in progress may take to finish on shutdown or deactivate",
        True,
        (0.1, 600.0),
        None,
    ),
    "frame_id_override": (
        "",
        "frame_id for the outputs; empty = the image's frame_id",
        True,
        None,
        None,
    ),
    "diagnostics_period": (
        1.0,
        "Seconds between /diagnostics messages; 0 = none",
        True,
        (0.0, 3600.0),
        None,
    ),
}

RUNTIME_PARAMETERS = ("mask_threshold", "publish_overlay", "overlay_alpha", "depth_scale")


def default(name: str) -> Any:
    """The default value of a parameter."""
    return PARAMETERS[name][0]


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



@dataclass
class TrackerSettings:
    """Model and tracker options (names and defaults as the node's parameters)."""

    model: str = default("model")
    checkpoint: str = default("checkpoint")
    device: str = default("device")
    precision: str = default("precision")
    image_size: int = default("image_size")  # 0 = the model config's own
    compile: bool = default("compile")
    max_objects: int = default("max_objects")
    prompt_history: int = default("prompt_history")
    max_prompt_frames: int = default("max_prompt_frames")
    mask_threshold: float = default("mask_threshold")
    cpu_threads: int = -1  # the node passes its parameter; offline runs use torch's default

    @classmethod
    def from_values(cls, values: object, **overrides: Any) -> TrackerSettings:
        """Settings from any object with attributes of these names (node parameters, CLI
        arguments); names it lacks keep their defaults."""
        known = {f.name for f in fields(cls)}
        found = {n: getattr(values, n) for n in known if hasattr(values, n)}
        return cls(**{**found, **overrides})

    def load(self) -> LoadedModel:
        """Load the model these settings name (a LoadedModel several trackers may share)."""
        from sam2_ros.engine.model_loading import build_model

        apply_cpu_threads(self.cpu_threads)
        return build_model(
            self.model,
            self.checkpoint or None,
            device=self.device,
            precision=self.precision,
            image_size=self.image_size or None,
            compile_image_encoder=self.compile,
        )

    def build(self, loaded: LoadedModel | None = None) -> StreamingTracker:
        """A ready StreamingTracker on ``loaded``, or on the model loaded now when None.

        Passing a loaded model lets an evaluation start a fresh tracker per scene without
        reading the checkpoint again."""
        from sam2_ros.engine.streaming_tracker import StreamingTracker

        if loaded is None:
            loaded = self.load()
        return StreamingTracker(
            loaded,
            max_objects=self.max_objects,
            prompt_history=self.prompt_history,
            max_cond_frames=self.max_prompt_frames,
            mask_threshold=self.mask_threshold,
        )


def apply_cpu_threads(requested: int) -> int:
    """Set torch's CPU thread count; returns the count in force.

    0 means every core the process may run on. The node can afford that because its camera
    messages are received on a node and executor of their own (``ros.camera_input``): when
    they went through the tracker node's executor, torch on every core ran 3.5x slower in
    the node than alone (2 cores), and the default had to leave a core to ROS.
    """
    import torch

    if requested > 0:
        torch.set_num_threads(requested)
    elif requested == 0:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    return torch.get_num_threads()


def parameters_yaml() -> str:
    """config/tracker.yaml, generated from PARAMETERS."""
    import json

    lines = [
        "# Parameters of the sam2_tracker node. GENERATED from sam2_ros/settings.py",
        "# (`sam2_ros params --format yaml > config/tracker.yaml`); edit the table there.",
        '# "/**/sam2_tracker" matches the node in any namespace, so the same file serves several',
        "# namespaced instances (launch/tracker.launch.py's `namespace` argument).",
        "/**/sam2_tracker:",
        "  ros__parameters:",
    ]
    for name, (value, text, read_only, _limits, _choices) in PARAMETERS.items():
        shown = json.dumps(value) if isinstance(value, str) else str(value).lower()
        if isinstance(value, float):
            shown = repr(value)
        tag = "read-only" if read_only else "run-time"
        lines.append(f"    {name}: {shown}  # ({tag}) {text}")
    return "\n".join(lines) + "\n"


def parameters_markdown() -> str:
    """README's parameter table, generated from PARAMETERS."""
    rows = ["| parameter | default | changeable | range / choices | meaning |",
            "|---|---|---|---|---|"]
    for name, (value, text, read_only, limits, choices) in PARAMETERS.items():
        allowed = ", ".join(choices) if choices else (
            f"{limits[0]} .. {limits[1]}" if limits else "")
        shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
        rows.append(f"| `{name}` | `{shown}` | {'restart' if read_only else 'at run time'} | "
                    f"{allowed} | {text} |")
    return "\n".join(rows) + "\n"
