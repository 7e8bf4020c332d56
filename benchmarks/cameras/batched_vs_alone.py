#!/usr/bin/env python3
"""Several sessions tracked in one batch against each session alone (docs/multi_camera.md).

For each model and precision: ``--sessions`` sessions over one loaded model, each its own
synthetic scene with its objects prompted by a click on the first frame, tracked frame by
frame with ``track_newest`` (the frames encoded together, every session's objects decoded
together) and again each alone with ``track``. Prints per case the largest difference of
the encoder's features, the share of mask pixels that differ and the largest mask-logit
difference, batched against alone. Run: ``. tools/env.sh && python -m
benchmarks.cameras.batched_vs_alone``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.common.machine import machine_info
from sam2_ros.engine.model_loading import build_model
from sam2_ros.engine.multi_session import SessionFrame, track_newest
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.evaluation.synthetic_scene import SceneConfig, SceneFrame, render_scene
from sam2_ros.imaging.masks import interior_point

CASES = (("sam2.1_hiera_t", "fp32"), ("sam2_ros_demo", "bf16"), ("sam2.1_hiera_t", "bf16"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=3)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--mode", default="motion", choices=("motion", "sam2"))
    return p.parse_args(argv)


def _scenes(count: int, frames: int) -> list[list[SceneFrame]]:
    """A scene per session: other seeds and, for the last, another camera size."""
    scenes = []
    for k in range(count):
        size = (320, 240) if k < count - 1 or count == 1 else (160, 120)
        cfg = SceneConfig(width=size[0], height=size[1], fps=10.0, duration_s=frames / 10.0,
                          num_objects=2 + k % 2, seed=k, with_depth=False)
        scenes.append(list(render_scene(cfg))[:frames])
    return scenes


def _prompted(loaded, scene: list[SceneFrame], mode: str) -> StreamingTracker:
    tracker = StreamingTracker(loaded, tracking_mode=mode)
    tracker.track(scene[0].rgb, scene[0].stamp_ns)
    for obj in scene[0].objects:
        if obj.visible:
            x, y = interior_point(scene[0].labels == obj.id, obj.centre)
            tracker.add_prompt(points=[[x, y]], labels=[1])
    return tracker


def compare(model: str, precision: str, args: argparse.Namespace) -> dict[str, float]:
    """Largest feature and logit differences and the share of differing mask pixels."""
    torch.manual_seed(0)
    loaded = build_model(model, image_size=args.image_size, device="cpu", precision=precision)
    scenes = _scenes(args.sessions, args.frames)
    alone = [_prompted(loaded, s, args.mode) for s in scenes]
    batched = [_prompted(loaded, s, args.mode) for s in scenes]
    worst_logit = worst_feature = 0.0
    differing = pixels = 0
    for i in range(1, args.frames):
        want = [t.track(s[i].rgb, s[i].stamp_ns) for t, s in zip(alone, scenes, strict=True)]
        got = track_newest([SessionFrame(t, s[i].rgb, s[i].stamp_ns)
                            for t, s in zip(batched, scenes, strict=True)])
        for g, w, a, b in zip(got, want, batched, alone, strict=True):
            fa, fb = a.ring_frames()[-1].backbone_fpn, b.ring_frames()[-1].backbone_fpn
            worst_feature = max([worst_feature] + [float((x.float() - y.float()).abs().max())
                                                   for x, y in zip(fa, fb, strict=True)])
            for og, ow in zip(g.objects, w.objects, strict=True):
                differing += int(np.count_nonzero(og.mask != ow.mask))
                pixels += og.mask.size
                worst_logit = max(worst_logit, float(np.abs(og.logits - ow.logits).max()))
    return {"feature": worst_feature, "pixels": differing / max(pixels, 1),
            "logit": worst_logit}


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(2)
    print(f"machine: {machine_info('cpu')}")
    print(f"{args.sessions} sessions, {args.frames} frames, image_size {args.image_size}, "
          f"tracking_mode {args.mode}; batched (track_newest) against each alone (track)")
    print("| model, precision | encoder features: largest difference | mask pixels that "
          "differ | largest mask-logit difference |")
    print("|---|---|---|---|")
    for model, precision in CASES:
        d = compare(model, precision, args)
        print(f"| {model}, {precision} | {d['feature']:.3g} | {100 * d['pixels']:.2f}% | "
              f"{d['logit']:.3g} |")


if __name__ == "__main__":
    main()
