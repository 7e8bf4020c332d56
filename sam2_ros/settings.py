"""One source of defaults: every setting of the tracker, read by the node, the CLI and docs.

``PARAMETERS`` is the table of the node's parameters (ROS-free, so the engine's users and
the command-line tools read the same defaults). ``TrackerSettings`` is how to build a
tracker, shared by the node, replay, the demo and the benchmarks.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine imports torch; settings stay importable without it
    from sam2_ros.engine.identity.policy import MotionSettings
    from sam2_ros.engine.model_loading import LoadedModel
    from sam2_ros.engine.streaming_tracker import StreamingTracker

#: Precision names the node and the tools accept -> the precision they mean (None = chosen
#: by ``engine.model_loading.resolve_precision`` for the device).
PRECISIONS: dict[str, str | None] = {
    "auto": None,
    "fp32": "fp32",
    "float32": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
}


def _image_size_rule(value: int) -> str | None:
    """SAM 2's image encoder works on multiples of 32 (its largest stride) of at least 64."""
    if value != 0 and (value < 64 or value % 32):
        return "must be 0 (the model's) or a multiple of 32 >= 64"
    return None


def _cameras_rule(value: tuple[str, ...]) -> str | None:
    """Camera names become topic name tokens: letters, digits, underscores, unique."""
    for name in value:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            return (f"holds {name!r}: a camera name must start with a letter and hold only "
                    "letters, digits and underscores")
    if len(set(value)) != len(value):
        return "names a camera twice"
    return None


def _bit_depth_rule(value: int) -> str | None:
    """16-bit images carry 10, 12, 14 or 16 significant bits; other depths are a typo."""
    if value not in (0, 10, 12, 14, 16):
        return "must be 0 (automatic), 10, 12, 14 or 16"
    return None


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter: its default, what it means, and which values it accepts.

    The entry checks itself when made (its default must pass its own rules), so a table
    entry that contradicts itself fails at import, not when a user first sets it.
    """

    name: str
    default: bool | int | float | str | tuple[str, ...]  # a tuple: a string array
    text: str
    #: False for the few settings the node applies while running (``ros2 param set``).
    read_only: bool = True
    #: Inclusive (low, high) for numbers; None = any value of the type.
    bounds: tuple[float, float] | None = None
    #: Integers only: the spacing of accepted values from ``bounds[0]`` (ROS's IntegerRange).
    step: int = 1
    #: Strings only: the accepted values; empty = any string.
    choices: tuple[str, ...] = ()
    #: A further rule beyond bounds and choices: the reason a value breaks it, or None.
    rule: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        kind = self.kind
        if kind not in (bool, int, float, str, tuple):
            raise TypeError(f"{self.name}: default must be a bool, int, float, str or tuple")
        if self.bounds is not None and (kind not in (int, float) or len(self.bounds) != 2
                                        or self.bounds[0] > self.bounds[1]):
            raise ValueError(f"{self.name}: bounds must be (low, high) of a number")
        if self.step != 1 and (kind is not int or self.bounds is None or self.step < 1):
            raise ValueError(f"{self.name}: a step needs an integer with bounds")
        if self.choices and kind is not str:
            raise ValueError(f"{self.name}: choices are for strings")
        reason = self.check(self.default)
        if reason:
            raise ValueError(f"default breaks its own rules: {reason}")

    @property
    def kind(self) -> type:
        """The value's type (that of the default)."""
        return type(self.default)

    def coerce(self, value: Any) -> Any:
        """``value`` as this parameter's type where that loses nothing: an integer given
        for a float parameter (YAML's ``1`` for ``1.0``) becomes a float."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.kind is tuple and (value is None or isinstance(value, list)):
            return tuple(value or ())  # ROS gives arrays as lists, an empty one as unset
        return value

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable (None when it is); the reason names the parameter."""
        kind, name = self.kind, self.name
        if kind is bool and not isinstance(value, bool):
            return f"{name} must be a bool, got {value!r}"
        if kind is str and not isinstance(value, str):
            return f"{name} must be a string, got {value!r}"
        if kind is tuple and (not isinstance(value, tuple)
                              or not all(isinstance(v, str) for v in value)):
            return f"{name} must be an array of strings, got {value!r}"
        if kind in (int, float):
            accepted = (int, float) if kind is float else (int,)
            if isinstance(value, bool) or not isinstance(value, accepted):
                wanted = "a number" if kind is float else "an integer"
                return f"{name} must be {wanted}, got {value!r}"
            if not math.isfinite(value):
                return f"{name} must be finite, got {value}"
            if self.bounds is not None and not self.bounds[0] <= value <= self.bounds[1]:
                return f"{name} must be within [{self.bounds[0]}, {self.bounds[1]}], got {value}"
        if self.choices and value not in self.choices:
            return f"{name} must be one of {', '.join(self.choices)}; got {value!r}"
        reason = self.rule(value) if self.rule is not None else None
        if reason:
            return f"{name} {reason}, got {value!r}"
        if self.step != 1 and (value - self.bounds[0]) % self.step and value != self.bounds[1]:
            # ROS's IntegerRange accepts the low bound plus multiples of step, and the high one.
            return f"{name} must be {self.bounds[0]} plus a multiple of {self.step}, got {value}"
        return None


#: Every node parameter, in the order of config/tracker.yaml and docs/parameters.md's table,
#: which are generated from it (`sam2_ros params --format yaml|markdown`; tests check both
#: are current).
PARAMETERS: dict[str, ParameterSpec] = {p.name: p for p in (
    ParameterSpec(
        "model",
        "sam2_ros_demo",
        "SAM 2 model: sam2_ros_demo (this project's synthetic-scene model, weights bundled), "
        "sam2.1_hiera_t/s/b+/l, sam2_hiera_* (give their checkpoint) or a config .yaml path",
    ),
    ParameterSpec(
        "checkpoint",
        "",
        "SAM 2 checkpoint (.pt); empty = the model's bundled weights (sam2_ros_demo) or RANDOM "
        "weights (official models: tests only)",
    ),
    ParameterSpec(
        "device",
        "auto",
        "Torch device: auto (cuda, mps, cpu), cpu, cuda, cuda:1 ...",
    ),
    ParameterSpec(
        "precision",
        "auto",
        "auto (bf16 on GPUs of compute capability >= 8.0 and CPUs with native bf16, "
        "else fp32), fp32, bf16 or fp16",
        choices=tuple(PRECISIONS),
    ),
    ParameterSpec(
        "image_size",
        0,
        "Model input size in pixels (multiple of 32, >= 64); 0 = the model config's",
        bounds=(0, 4096),
        step=32,
        rule=_image_size_rule,
    ),
    ParameterSpec(
        "compile",
        False,
        "torch.compile the image encoder at start (on a CPU: tens of seconds at start, then "
        "a faster encoder with bf16, docs/benchmarks.md; on CUDA Meta's max-autotune with "
        "CUDA graphs, whose outputs the tracker clones)",
    ),
    ParameterSpec(
        "cpu_threads",
        0,
        "torch CPU threads; 0 = every core the node may use, -1 = torch's default",
        bounds=(-1, 1024),
    ),
    ParameterSpec(
        "workers",
        0,
        "Threads tracking several cameras' frames at once, each its cameras in one batch and "
        "cpu_threads shared out among them; 0 = on a CPU one per torch thread up to the "
        "number of cameras (a core each), on a GPU one (every camera in one batch)",
        bounds=(0, 64),
    ),
    ParameterSpec(
        "max_objects",
        16,
        "Most objects tracked at once; AddPrompt for a new object fails beyond. Each object "
        "keeps the memories of its prompted frames, the ring's frames and the 7 before them: "
        "at most (prompt_history + 7 + max_prompt_frames) x 0.75 MB at image_size 1024 "
        "(48 kB each at 256), and in tracking_mode motion those of its 6 newest admitted "
        "frames before them too",
        bounds=(1, 1024),
    ),
    ParameterSpec(
        "prompt_history",
        8,
        "Recent frames kept so a prompt may name a past stamp. Each costs its image features "
        "(sam2.1 models at image_size 1024: 10 MB in bf16, 16 MB in fp32; a sixteenth of that "
        "at 256) and 0.25 MB per object (at 1024)",
        bounds=(1, 256),
    ),
    ParameterSpec(
        "received_frames_mb",
        256,
        "Megabytes of received camera messages kept so a prompt may name a frame the node "
        "received but did not track (at most max(30, 10 x prompt_history) messages, and always "
        "the newest): 256 MB hold 277 640x480 rgb8 images or 41 at 1920x1080",
        bounds=(1, 65536),
    ),
    ParameterSpec(
        "max_prompt_frames",
        4,
        "Prompted frames kept per object, a bound of this project (SAM 2.1 attends to all of "
        "them): beyond it the oldest other than the one just prompted becomes an ordinary "
        "memory frame. Each costs an object 0.75 MB at image_size 1024 (48 kB at 256)",
        bounds=(2, 64),
    ),
    ParameterSpec(
        "preprocessing",
        "auto",
        "How a camera frame becomes the model's input: meta (PIL bicubic resize on the host, "
        "Meta's exact pixels), device (the uint8 frame to the device, resized and normalised "
        "there), auto (device on CUDA, meta elsewhere)",
        choices=("auto", "meta", "device"),
    ),
    ParameterSpec(
        "tracking_mode",
        "sam2",
        "sam2: Meta's SAM 2 (each object on its own, memory of the last frames); motion: a "
        "Kalman filter on each object's box helps pick among SAM 2's candidate masks, only "
        "confident frames enter memory, and of two objects claiming one region the weaker is "
        "reported hidden (keeps identities where look-alikes cross; docs/identity.md)",
        choices=("sam2", "motion"),
    ),
    ParameterSpec(
        "motion_weight",
        0.25,
        "tracking_mode motion: share of the motion agreement (IoU with the predicted box) "
        "beside the predicted IoU when choosing among candidate masks",
        bounds=(0.0, 1.0),
    ),
    ParameterSpec(
        "motion_admit_iou",
        0.1,
        "tracking_mode motion: predicted IoU a frame needs to enter an object's memory",
        bounds=(0.0, 1.0),
    ),
    ParameterSpec(
        "motion_admit_object_score",
        0.0,
        "tracking_mode motion: object-score logit a frame needs to enter memory",
        bounds=(-32.0, 32.0),
    ),
    ParameterSpec(
        "motion_admit_overlap",
        0.1,
        "tracking_mode motion: IoU with the predicted box a frame needs to enter memory",
        bounds=(0.0, 1.0),
    ),
    ParameterSpec(
        "motion_continuity",
        0.1,
        "tracking_mode motion: when two objects claim one region, the bonus of one reported "
        "visible on its previous frame (beside predicted IoU and motion agreement)",
        bounds=(0.0, 1.0),
    ),
    ParameterSpec(
        "motion_admit_area",
        0.6,
        "tracking_mode motion: share of the median mask area of an object's newest admitted "
        "frames a frame needs to enter memory (0: off)",
        bounds=(0.0, 1.0),
    ),
    ParameterSpec(
        "motion_admit_appearance",
        0.5,
        "tracking_mode motion: cosine similarity of the mask's image features to the prompted "
        "ones a frame needs to enter memory, or a lost object to be found again (0: off)",
        bounds=(0.0, 1.0),
    ),
    ParameterSpec(
        "cameras",
        (),
        "Cameras served by this one model, e.g. [front, wrist]: each has its topics under its "
        "name (front/image, ~/front/masks, ~/front/add_prompt ...), its own objects and "
        "diagnostics; frames of all cameras are tracked together (one batch per SAM 2 step); "
        "empty = one camera with the unprefixed names",
        rule=_cameras_rule,
    ),
    ParameterSpec(
        "image_transport",
        "raw",
        "raw: subscribe 'image' (sensor_msgs/Image); compressed: 'image/compressed' "
        "(sensor_msgs/CompressedImage)",
        choices=("raw", "compressed"),
    ),
    ParameterSpec(
        "input_bit_depth",
        0,
        "Significant bits of 16-bit colour/mono images (mono16, rgb16, 16UC1 cameras): 10, 12, "
        "14 or 16; 0 = automatic: the most any frame of the stream needed so far (from its "
        "largest value), judged again after a reset of all objects",
        bounds=(0, 16),
        rule=_bit_depth_rule,
    ),
    ParameterSpec(
        "qos_reliability",
        "best_effort",
        "Reliability of the image subscriptions",
        choices=("best_effort", "reliable"),
    ),
    ParameterSpec(
        "qos_depth",
        1,
        "History depth of the image subscriptions; each place can hold one camera message "
        "(0.9 MB at 640x480 rgb8)",
        bounds=(1, 1000),
    ),
    ParameterSpec(
        "publish_overlay",
        True,
        "Publish ~/overlay (bgr8) while someone subscribes to it",
        read_only=False,
    ),
    ParameterSpec(
        "overlay_alpha",
        0.5,
        "Mask opacity in ~/overlay",
        read_only=False,
        bounds=(0.0, 1.0),
    ),
    ParameterSpec(
        "use_depth",
        False,
        "Subscribe 'depth' and 'camera_info' (registered to the colour image: same frame_id) "
        "for 3D positions and ~/markers; never holds a frame back",
    ),
    ParameterSpec(
        "depth_scale",
        0.001,
        "Metres per unit of 16UC1 depth images (0.001 = millimetres)",
        read_only=False,
        bounds=(1e-06, 100.0),
    ),
    ParameterSpec(
        "mask_threshold",
        0.0,
        "Mask logit threshold (0.0 = SAM 2's)",
        read_only=False,
        bounds=(-32.0, 32.0),
    ),
    ParameterSpec(
        "depth_slop",
        0.05,
        "Seconds a depth image / camera_info may be from a camera frame's stamp to be paired "
        "with it; frames without a pair are tracked without 3D positions",
        bounds=(0.0, 10.0),
    ),
    ParameterSpec(
        "prompt_wait",
        2.0,
        "Seconds a prompt naming a received but not yet processed frame waits for it",
        bounds=(0.0, 60.0),
    ),
    ParameterSpec(
        "time_jump_reset",
        1.0,
        "Seconds a frame's stamp must go back to restart the stream: a frame stamped less "
        "than this before the previous one (reordered, a second publisher) is dropped; one "
        "further back, 5 late frames in a row, or the ROS clock jumping back as far (bag "
        "loop, restarted driver or simulation) reset the tracker (all objects forgotten); "
        "0 = every earlier stamp resets",
        bounds=(0.0, 86400.0),
    ),
    ParameterSpec(
        "occluded_frames",
        30,
        "Frames an object may stay not visible as 'occluded' before its state is 'lost'",
        bounds=(0, 100000),
    ),
    ParameterSpec(
        "remove_lost_after",
        0.0,
        "Seconds after which a lost object is removed; 0 = never",
        bounds=(0.0, 86400.0),
    ),
    ParameterSpec(
        "use_detections",
        False,
        "Subscribe 'detections' (vision_msgs/Detection2DArray): a detector's boxes create "
        "objects with their class as label, re-prompt drifted or lost tracks, keep ids",
    ),
    ParameterSpec(
        "detection_min_score",
        0.5,
        "Detections scoring below this are ignored (neither create nor re-prompt objects)",
        bounds=(0.0, 1.0),
    ),
    ParameterSpec(
        "detection_refresh_iou",
        0.5,
        "A matched track is re-prompted with its detection's box when its mask's box has an "
        "IoU below this with it (or the track is lost)",
        bounds=(0.0, 1.0),
    ),
    ParameterSpec(
        "detection_forget_after",
        0.0,
        "Seconds without a matching detection after which a track is removed; 0 = never",
        bounds=(0.0, 86400.0),
    ),
    ParameterSpec(
        "shutdown_timeout",
        5.0,
        "Seconds a frame in progress may take to finish on shutdown or deactivate",
        bounds=(0.1, 600.0),
    ),
    ParameterSpec(
        "frame_id_override",
        "",
        "frame_id for the outputs; empty = the image's frame_id",
    ),
    ParameterSpec(
        "diagnostics_period",
        1.0,
        "Seconds between /diagnostics messages; 0 = none",
        bounds=(0.0, 3600.0),
    ),
)}

#: The parameters the node applies while running.
RUNTIME_PARAMETERS = tuple(name for name, p in PARAMETERS.items() if not p.read_only)


def default(name: str) -> Any:
    """The default value of a parameter."""
    return PARAMETERS[name].default


def check_value(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name`` (None when it is)."""
    return PARAMETERS[name].check(value)


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
    time_jump_reset: float = default("time_jump_reset")
    preprocessing: str = default("preprocessing")
    tracking_mode: str = default("tracking_mode")
    motion_weight: float = default("motion_weight")
    motion_admit_iou: float = default("motion_admit_iou")
    motion_admit_object_score: float = default("motion_admit_object_score")
    motion_admit_overlap: float = default("motion_admit_overlap")
    motion_continuity: float = default("motion_continuity")
    motion_admit_area: float = default("motion_admit_area")
    motion_admit_appearance: float = default("motion_admit_appearance")
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

    def build(self, loaded: LoadedModel | None = None,
              motion: MotionSettings | None = None) -> StreamingTracker:
        """A ready StreamingTracker with these settings.

        Args:
            loaded: the model to share (a fresh tracker per scene without reading the
                checkpoint again); None: the model is loaded now (``load``).
            motion: replaces the ``motion_*`` parameters (ablations of the motion policy).
        Returns:
            A new session (StreamingTracker) with no objects.
        Raises:
            ModelConfigError, CheckpointError: as ``build_model``, when loading here.
        """
        from sam2_ros.engine.identity.policy import MotionSettings
        from sam2_ros.engine.stamp_policy import StampPolicy
        from sam2_ros.engine.streaming_tracker import StreamingTracker

        if loaded is None:
            loaded = self.load()
        return StreamingTracker(
            loaded,
            max_objects=self.max_objects,
            prompt_history=self.prompt_history,
            max_prompt_frames=self.max_prompt_frames,
            mask_threshold=self.mask_threshold,
            stamps=StampPolicy.with_threshold(self.time_jump_reset),
            tracking_mode=self.tracking_mode,
            preprocessing=self.preprocessing,
            motion=motion or MotionSettings(
                weight=self.motion_weight,
                admit_iou=self.motion_admit_iou,
                admit_object_score=self.motion_admit_object_score,
                admit_motion=self.motion_admit_overlap,
                continuity=self.motion_continuity,
                admit_area=self.motion_admit_area,
                admit_appearance=self.motion_admit_appearance,
            ),
        )


def apply_cpu_threads(requested: int) -> int:
    """Set torch's CPU thread count; returns the count in force.

    0 means every core the process may run on. The node can afford that because its camera
    messages are received on a node and executor of their own (``ros.camera_input``): on
    the tracker node's executor they took a core from torch (docs/benchmarks.md).
    """
    import torch

    if requested > 0:
        torch.set_num_threads(requested)
    elif requested == 0:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    return torch.get_num_threads()


def worker_threads(workers: int, cameras: int, device: str) -> tuple[int, int]:
    """How many threads track frames and how many torch CPU threads each uses.

    On a CPU torch's parallel regions leave a core idle between them (the Python around
    each op runs on one); workers of one thread each keep every core busy and do not
    pay the threads' hand-overs (docs/multi_camera.md). A session is tracked by one
    worker at a time, so more workers than cameras would idle.

    Args:
        workers: the ``workers`` parameter (0: chosen here).
        cameras: cameras the node serves.
        device: the model's device ("cpu", "cuda", ...).
    Returns:
        (worker threads, torch threads for each; 0 keeps the count in force).
    """
    import torch

    threads = torch.get_num_threads()
    if workers == 0:
        workers = min(threads, cameras) if device == "cpu" else 1
    workers = max(1, min(workers, cameras))
    return workers, (max(1, threads // workers) if workers > 1 else 0)


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
    for p in PARAMETERS.values():
        value = p.default
        shown = json.dumps(value) if isinstance(value, str) else str(value).lower()
        if isinstance(value, tuple):
            shown = json.dumps(list(value))
        if isinstance(value, float):
            shown = repr(value)
        tag = "read-only" if p.read_only else "run-time"
        lines.append(f"    {p.name}: {shown}  # ({tag}) {p.text}")
    return "\n".join(lines) + "\n"


def parameters_markdown() -> str:
    """docs/parameters.md's parameter table, generated from PARAMETERS."""
    rows = ["| parameter | default | changeable | range / choices | meaning |",
            "|---|---|---|---|---|"]
    for p in PARAMETERS.values():
        allowed = ", ".join(p.choices) if p.choices else (
            f"{p.bounds[0]} .. {p.bounds[1]}" if p.bounds else "")
        shown = f'"{p.default}"' if isinstance(p.default, str) else str(p.default).lower()
        if isinstance(p.default, tuple):
            shown = "[" + ", ".join(p.default) + "]"
        rows.append(f"| `{p.name}` | `{shown}` | {'restart' if p.read_only else 'at run time'} | "
                    f"{allowed} | {p.text} |")
    return "\n".join(rows) + "\n"
