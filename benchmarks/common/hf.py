"""transformers' Sam2VideoModel in streaming mode, the third engine of the comparison.

transformers is installed beside the venv (``make bench`` puts it in .bench-site), never in
it, so everything here imports it late and says why when it cannot.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from benchmarks.common.engines import ReferenceEngine, sync
from benchmarks.common.scene import Scene

DEFAULT_HF_SITE = "/tmp/hf_site"
HF_PIN = "transformers==5.23.0"


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


class HFEngine(ReferenceEngine):
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

