"""The engines under test behind one small interface, and the lockstep that drives them.

Every engine has ``start()`` (frame 0 with the prompts) and ``step(i)`` (frame i, returns
its wall time in seconds), so a comparison runs them frame by frame on the same pixels and
prompts. Nothing here asserts on time: the benchmarks report, they never fail on a number.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common.machine import QuietGate
from benchmarks.common.scene import Scene

MODEL = "sam2.1_hiera_t"
META_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


def sync(device) -> None:
    import torch

    if getattr(device, "type", device) == "cuda":
        torch.cuda.synchronize()


def quiet_model_logs() -> None:
    """Keep the model loader's per-build log lines out of the benchmark's output."""
    import logging

    logging.getLogger("sam2_ros.engine.model_loading").setLevel(logging.ERROR)


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


class ReferenceEngine:
    """What every reference engine is given: the scene, how many objects, the device."""

    def __init__(self, scene: Scene, num_objects: int, device) -> None:
        self.scene = scene
        self.num_objects = num_objects
        self.device = device


class OfficialEngine(ReferenceEngine):
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



def lockstep(engines: list, frames: int, desc: str,
             gate: QuietGate | None = None) -> dict[str, list[float]]:
    """Run frame i on every engine before frame i+1 on any (the order rotates per frame),
    each step only once no other process is using the CPU (see QuietGate)."""
    from tqdm import tqdm

    times: dict[str, list[float]] = {e.name: [] for e in engines}
    for i in tqdm(range(1, frames), desc=desc, unit="frame"):
        k = i % len(engines)
        for engine in engines[k:] + engines[:k]:
            if gate is not None:
                gate.wait()
            times[engine.name].append(engine.step(i))
    return times

