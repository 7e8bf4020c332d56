"""Shared pieces of the benchmarks: machine facts, statistics, the scene, the engines.

Every engine is driven through the same tiny interface (``start`` runs frame 0 with the
prompts, ``step(i)`` runs frame i and returns its wall time in seconds), so the main
comparison can run them in lockstep, frame by frame, on the same pixels and prompts.
Nothing here asserts on time: the benchmarks report, they never fail on a number.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODEL = "sam2.1_hiera_t"
META_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
DEFAULT_HF_SITE = "/tmp/hf_site"
HF_PIN = "transformers==5.23.0"


def use_repo_package() -> None:
    """Import sam2_ros from this checkout (not from a colcon install tree)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(device: str) -> dict:
    import torch

    info = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sam2": package_version("sam2"),
        "device": device,
        "gpu": None,
        "load_average_at_start": load_average(),
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak, not current


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _own_jiffies() -> int:
    """utime + stime of this process and its waited-for children (all threads)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15])


@dataclass
class QuietGate:
    """Wait, before each timed step, until no other process uses the CPU.

    A shared machine (other people's test runs) can make a 2-core CPU 10x slower while
    both compete for the cores; timings taken then say nothing about the engines. Before a
    step the gate samples /proc/stat for ``window`` seconds and waits while processes other
    than this one used more than ``threshold`` of a core, up to ``budget_s`` of waiting in
    total for the whole run; steps run without a quiet machine are counted, not hidden.
    """

    budget_s: float
    window: float = 0.1
    threshold: float = 0.3

    def __post_init__(self) -> None:
        self.waited_s, self.steps, self.contended_steps = 0.0, 0, 0
        self.enabled = self.budget_s > 0 and _cpu_jiffies() is not None

    def others_busy(self) -> float:
        """Cores used by other processes over one window."""
        a, own_a = _cpu_jiffies(), _own_jiffies()
        time.sleep(self.window)
        b, own_b = _cpu_jiffies(), _own_jiffies()
        total = max(1, b[1] - a[1])
        cores = os.cpu_count() or 1
        return max(0.0, (b[0] - a[0]) - (own_b - own_a)) / total * cores

    def wait(self) -> None:
        if not self.enabled:
            return
        self.steps += 1
        started = time.perf_counter()
        while self.others_busy() > self.threshold:
            if self.waited_s + (time.perf_counter() - started) > self.budget_s:
                self.contended_steps += 1
                break
        self.waited_s += time.perf_counter() - started

    def summary(self) -> dict:
        return {"enabled": self.enabled, "budget_s": self.budget_s,
                "waited_s": round(self.waited_s, 1), "steps": self.steps,
                "steps_without_quiet_machine": self.contended_steps}


# --------------------------------------------------------------------------- statistics
def warm_stats(times: list[float], skip: int = 2, steady_from: int | None = None) -> dict:
    """Median / p95 / fps of per-frame seconds, skipping the first ``skip`` frames.

    ``times[k]`` is the time of frame k+1 (frame 0 is the prompted frame and is timed on
    its own). ``steady_from`` (a frame index) adds a median over frames whose memory bank
    is already full.
    """
    warm = np.asarray(times[skip:], dtype=float)
    if warm.size == 0:
        return {"frames": 0}
    med = float(np.median(warm))
    out = {
        "frames": int(warm.size),
        "median_s": med,
        "p95_s": float(np.percentile(warm, 95)),
        "mean_s": float(warm.mean()),
        "min_s": float(warm.min()),
        "max_s": float(warm.max()),
        "fps": 1.0 / med if med > 0 else None,
    }
    if steady_from is not None:
        steady = np.asarray(times[max(skip, steady_from - 1) :], dtype=float)
        if steady.size:
            out["steady_median_s"] = float(np.median(steady))
    return out


def linear_slope(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 2:
        return None
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0])


# --------------------------------------------------------------------------- scene
@dataclass
class Scene:
    """Frames on disk as JPEGs plus the decoded pixels and one click per object."""

    jpeg_dir: Path
    frames: list[np.ndarray]  # decoded JPEG pixels, HxWx3 uint8 RGB
    stamps: list[int]  # nanoseconds
    points: list[tuple[float, float]]  # one positive click per object on frame 0

    @property
    def height(self) -> int:
        return int(self.frames[0].shape[0])

    @property
    def width(self) -> int:
        return int(self.frames[0].shape[1])


def write_scene(
    out_dir: Path,
    num_frames: int,
    width: int,
    height: int,
    num_objects: int,
    seed: int = 0,
    keep_pixels: bool = True,
) -> Scene:
    """Render the synthetic scene, write it as a JPEG folder (Meta's loader reads
    ``<index>.jpg``) and decode those JPEGs back, so every engine sees the same pixels."""
    from PIL import Image

    from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene
    from sam2_ros.imaging.masks import interior_point

    fps = 30.0
    cfg = SceneConfig(
        width=width,
        height=height,
        fps=fps,
        duration_s=num_frames / fps,
        num_objects=max(1, num_objects),
        seed=seed,
        with_depth=False,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    frames: list[np.ndarray] = []
    stamps: list[int] = []
    points: list[tuple[float, float]] = []
    for frame in render_scene(cfg):
        if frame.index >= num_frames:
            break
        path = out_dir / f"{frame.index:05d}.jpg"
        Image.fromarray(frame.rgb).save(path, quality=95)
        if keep_pixels:
            with Image.open(path) as img:
                frames.append(np.array(img.convert("RGB")))
        stamps.append(frame.stamp_ns)
        if frame.index == 0:
            for k in range(1, num_objects + 1):
                mask = frame.labels == k
                point = interior_point(mask) if mask.any() else None
                if point is None:  # object not on frame 0: click on a fixed grid spot
                    point = (width * (0.15 + 0.7 * ((k * 0.37) % 1)), height * 0.5)
                points.append(point)
    return Scene(out_dir, frames, stamps, points)


def read_frames(jpeg_dir: Path) -> list[np.ndarray]:
    from PIL import Image

    frames = []
    for path in sorted(jpeg_dir.glob("*.jpg")):
        with Image.open(path) as img:
            frames.append(np.array(img.convert("RGB")))
    return frames


def redraw_only(report_json: str | None, write) -> bool:
    """``--report FILE``: rewrite a report and its plots from an earlier JSON (no timing);
    returns whether that was asked for."""
    if not report_json:
        return False
    path = Path(report_json)
    print(write(json.loads(path.read_text()), path.parent))
    return True


def quiet_model_logs() -> None:
    """Keep the model loader's per-build log lines out of the benchmark's output."""
    import logging

    logging.getLogger("sam2_ros.engine.model_loading").setLevel(logging.ERROR)


def save_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))


# --------------------------------------------------------------------------- engines
def sync(device) -> None:
    import torch

    if getattr(device, "type", device) == "cuda":
        torch.cuda.synchronize()


def build_ours(args_device: str, image_size: int, checkpoint: str | None, seed: int,
               compile_image_encoder: bool = False):
    """Our model: build_model(...) on random weights drawn from ``seed`` unless a
    checkpoint is given."""
    from sam2_ros.engine.model_loading import build_model

    return build_model(
        MODEL,
        checkpoint=checkpoint or None,
        device=args_device,
        precision="auto",
        image_size=image_size,
        compile_image_encoder=compile_image_encoder,
        seed=seed,
    )


class OursEngine:
    """StreamingTracker, one track() call per frame; hole filling off (see the docs)."""

    name = "ours"

    def __init__(self, loaded, scene: Scene, num_objects: int, frames: list | None = None,
                 tracking_mode: str | None = None):
        from sam2_ros.engine.streaming_tracker import StreamingTracker
        from sam2_ros.settings import default

        self.loaded = loaded
        self.scene = scene
        self.frames = frames if frames is not None else scene.frames
        self.num_objects = num_objects
        # No stage profiling, as in the node: its synchronisations would cost a GPU frame
        # time and add host waits the node does not pay (on a GPU the stage times are
        # then the time to queue each stage; on a CPU they are the same either way).
        self.tracker = StreamingTracker(
            loaded, max_objects=max(16, num_objects), fill_hole_area=0,
            tracking_mode=tracking_mode or default("tracking_mode"),
        )
        self.prompt_s = None
        self.last_result = None
        self.stages: list[dict[str, float]] = []

    def start(self) -> float:
        t0 = time.perf_counter()
        self.tracker.track(self.frames[0], stamp=self.scene.stamps[0])
        for point in self.scene.points[: self.num_objects]:
            self.tracker.add_prompt(points=[point], labels=[1])
        sync(self.loaded.device)
        self.prompt_s = time.perf_counter() - t0
        return self.prompt_s

    def step(self, i: int) -> float:
        t0 = time.perf_counter()
        self.last_result = self.tracker.track(self.frames[i], stamp=self.scene.stamps[i])
        sync(self.loaded.device)
        elapsed = time.perf_counter() - t0
        self.stages.append(self.last_result.timing.as_dict())
        return elapsed

    def held_tensor_bytes(self) -> int:
        """Bytes of tensors the tracker keeps (memory bank and frame ring)."""
        import torch

        seen: set[int] = set()
        total = 0

        def add(t):
            nonlocal total
            if isinstance(t, torch.Tensor) and id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()

        for obj in self.tracker.memories.values():
            for out in list(obj.cond.values()) + list(obj.non_cond.values()):
                for t in (out.obj_ptr, out.object_score_logits, out.pred_masks,
                          out.maskmem_features):
                    add(t)
        for ring in self.tracker.ring_frames():
            for t in ring.backbone_fpn:
                add(t)
        return total


def build_official(device: str, image_size: int, state_dict, vos_optimized: bool = False):
    """Meta's SAM2VideoPredictor with our weights loaded (identical weights)."""
    from sam2.build_sam import build_sam2_video_predictor

    predictor = build_sam2_video_predictor(
        META_CONFIG,
        None,
        device=device,
        hydra_overrides_extra=[f"++model.image_size={image_size}"],
        vos_optimized=vos_optimized,
    )
    predictor.load_state_dict(state_dict)
    return predictor


def quiet_official_progress() -> None:
    """propagate_in_video and the JPEG loader draw their own tqdm bars; silence them so
    ours stays readable (the bar costs microseconds per frame either way)."""
    import functools

    import sam2.sam2_video_predictor as svp
    import sam2.utils.misc as misc
    from tqdm import tqdm

    svp.tqdm = functools.partial(tqdm, disable=True)
    misc.tqdm = functools.partial(tqdm, disable=True)


class _ReferenceEngine:
    """What every reference engine is given: the scene, how many objects, the device."""

    def __init__(self, scene: Scene, num_objects: int, device) -> None:
        self.scene = scene
        self.num_objects = num_objects
        self.device = device


class OfficialEngine(_ReferenceEngine):
    """SAM2VideoPredictor: init_state on the JPEG folder, prompts on frame 0, then one
    propagate_in_video step per frame (the time between two yields)."""

    name = "official"

    def __init__(self, predictor, scene: Scene, num_objects: int, device, num_frames: int,
                 autocast_dtype=None):
        super().__init__(scene, num_objects, device)
        self.predictor = predictor
        self.num_frames = num_frames
        self.autocast_dtype = autocast_dtype
        self.init_state_s = None
        self.prompt_s = None
        self.state = None
        self._gen = None

    def _autocast(self):
        import contextlib

        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def start(self) -> float:
        t0 = time.perf_counter()
        with self._autocast():
            self.state = self.predictor.init_state(str(self.scene.jpeg_dir))
        self.init_state_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with self._autocast():
            for k, point in enumerate(self.scene.points[: self.num_objects]):
                self.predictor.add_new_points_or_box(
                    self.state,
                    frame_idx=0,
                    obj_id=k + 1,
                    points=np.array([point], dtype=np.float32),
                    labels=np.array([1], dtype=np.int32),
                )
            self._gen = self.predictor.propagate_in_video(
                self.state, start_frame_idx=0, max_frame_num_to_track=self.num_frames - 1
            )
            next(self._gen)  # frame 0: the prompted frame (consolidation happens here)
        sync(self.device)
        self.prompt_s = time.perf_counter() - t0
        return self.prompt_s

    def step(self, i: int) -> float:
        t0 = time.perf_counter()
        with self._autocast():
            frame_idx, _, _ = next(self._gen)
        sync(self.device)
        assert frame_idx == i, (frame_idx, i)
        return time.perf_counter() - t0

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()

    def load_per_frame(self) -> float:
        """Seconds per frame of the JPEG decode + resize + normalise that init_state does
        up front (Meta's load_video_frames, timed again on its own)."""
        from sam2.utils.misc import load_video_frames

        t0 = time.perf_counter()
        images, _, _ = load_video_frames(str(self.scene.jpeg_dir), self.predictor.image_size,
                                         offload_video_to_cpu=False,
                                         compute_device=self.device)
        sync(self.device)
        return (time.perf_counter() - t0) / len(images)

    def images_bytes(self) -> int:
        images = self.state["images"]
        return int(images.numel() * images.element_size()) if hasattr(images, "numel") else 0

    def held_tensor_bytes(self) -> int:
        """Bytes of per-frame outputs the predictor keeps (images excluded)."""
        import torch

        # cached_features holds a view of the images tensor: count the images apart.
        seen: set[int] = {self.state["images"].untyped_storage().data_ptr()}
        total = 0

        def walk(x):
            nonlocal total
            if isinstance(x, torch.Tensor):
                key = x.untyped_storage().data_ptr()
                if key not in seen:
                    seen.add(key)
                    total += x.untyped_storage().nbytes()
            elif isinstance(x, dict):
                for v in x.values():
                    walk(v)
            elif isinstance(x, (list, tuple)):
                for v in x:
                    walk(v)

        for key in ("output_dict_per_obj", "cached_features", "constants"):
            walk(self.state.get(key))
        return total


# --------------------------------------------------------------------------- transformers
def hf_import(hf_site: str | None):
    """Import transformers' SAM 2 video classes; returns (module, None) or (None, reason)."""
    if hf_site and os.path.isdir(hf_site) and hf_site not in sys.path:
        sys.path.append(hf_site)  # appended: the venv's own packages keep priority
    try:
        import transformers
        from transformers import Sam2VideoConfig, Sam2VideoModel  # noqa: F401
    except Exception as exc:
        return None, (
            f"transformers not importable ({type(exc).__name__}: {exc}); install it outside "
            f"the venv: pip install --target {DEFAULT_HF_SITE} {HF_PIN} (pulls no torch), "
            "then pass --hf-site"
        )
    return transformers, None


def hf_processor_problem(image_size: int) -> str | None:
    """Why transformers' own Sam2VideoProcessor cannot be built here (None if it can)."""
    try:
        from transformers import (
            Sam2ImageProcessor,
            Sam2VideoProcessor,
            Sam2VideoVideoProcessor,
        )

        size = {"height": image_size, "width": image_size}
        Sam2VideoProcessor(
            image_processor=Sam2ImageProcessor(size=size),
            video_processor=Sam2VideoVideoProcessor(size=size),
        )
    except Exception as exc:
        text = " ".join(str(exc).split())
        first = text.split(". ")[0][:220]
        return f"{type(exc).__name__}: {first}"
    return None


def build_hf(image_size: int, device, seed: int, dtype):
    """Sam2VideoModel from a default (SAM 2.1 tiny-sized) Sam2VideoConfig, random init,
    resized to image_size the way Meta's ``++model.image_size`` override resizes SAM 2."""
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    s = image_size
    cfg = Sam2VideoConfig()
    cfg.image_size = s
    cfg.prompt_encoder_config.image_size = s
    cfg.vision_config.backbone_feature_sizes = [[s // 4, s // 4], [s // 8, s // 8],
                                                [s // 16, s // 16]]
    cfg.vision_config.backbone_config.image_size = [s, s]
    cfg.memory_attention_rope_feat_sizes = [s // 16, s // 16]
    torch.manual_seed(seed)
    model = Sam2VideoModel(cfg).eval().to(device)
    if dtype is not None:
        model = model.to(dtype)
    return model


class HFEngine(_ReferenceEngine):
    """transformers' Sam2VideoModel in streaming mode (init_video_session without a video,
    one model(inference_session, frame=...) call per frame)."""

    name = "hf"

    def __init__(self, model, scene: Scene, num_objects: int, device, image_size: int,
                 dtype=None):
        import torch
        from transformers import Sam2VideoProcessor

        super().__init__(scene, num_objects, device)
        self.model = model
        self.image_size = image_size
        self.dtype = dtype or torch.float32
        self.processor_problem = hf_processor_problem(image_size)
        if self.processor_problem is None:
            from transformers import Sam2ImageProcessor, Sam2VideoVideoProcessor

            size = {"height": image_size, "width": image_size}
            self.processor = Sam2VideoProcessor(
                image_processor=Sam2ImageProcessor(size=size),
                video_processor=Sam2VideoVideoProcessor(size=size),
            )
        else:
            # The session and prompt code of the processor needs no image processor; only
            # pixel preprocessing does, and that is replaced by the same ImageNet
            # normalisation (PIL bicubic resize) Meta's loader and our engine use.
            self.processor = Sam2VideoProcessor.__new__(Sam2VideoProcessor)
            self.processor.point_pad_value = -10
            self.processor.target_size = image_size
        self.session = None
        self.prompt_s = None

    def _pixels(self, frame: np.ndarray):
        import torch

        if self.processor_problem is None:
            inputs = self.processor(images=frame, device=self.device, return_tensors="pt")
            return inputs.pixel_values[0]
        from sam2_ros.engine.steps.preprocessing import frame_to_tensor

        return frame_to_tensor(frame, self.image_size, torch.device(self.device))[0]

    def _run(self, i: int):
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            out = self.model(inference_session=self.session,
                             frame=self._pixels(self.scene.frames[i]).to(self.dtype))
            masks = F.interpolate(out.pred_masks.float(), (self.scene.height, self.scene.width),
                                  mode="bilinear", align_corners=False)
            return masks.cpu()

    def start(self) -> float:
        t0 = time.perf_counter()
        self.session = self.processor.init_video_session(
            inference_device=self.device, dtype=self.dtype
        )
        pts = self.scene.points[: self.num_objects]
        self.processor.add_inputs_to_inference_session(
            inference_session=self.session,
            frame_idx=0,
            obj_ids=list(range(1, len(pts) + 1)),
            input_points=[[[list(p)] for p in pts]],
            input_labels=[[[1] for _ in pts]],
            original_size=(self.scene.height, self.scene.width),
        )
        self._run(0)
        sync(self.device)
        self.prompt_s = time.perf_counter() - t0
        return self.prompt_s

    def step(self, i: int) -> float:
        t0 = time.perf_counter()
        self._run(i)
        sync(self.device)
        return time.perf_counter() - t0
