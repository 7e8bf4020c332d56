"""Per-frame cost of ``tracking_mode: motion`` against ``sam2``, both in one process.

The bundled demo model (image_size 256, fp32, CPU) tracks the designed demo scene's objects
(clicked once on the first frame) in both modes; each frame goes to both trackers,
alternating which goes first, so load from other processes on a shared machine falls on
both alike. Prints the median ms per frame of each mode over the frames after the warm-up,
the stage medians, the difference in percent and the machine. It reports; it asserts
nothing.

    python -m benchmarks.identity.tracking_mode_cost [--frames 30] [--warmup 8] [--objects 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common.machine import cpu_model

MODES = ("sam2", "motion")
STAGES = ("memory_attention", "decoder", "memory_encoder", "postprocess")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="frames tracked (after clicks)")
    parser.add_argument("--warmup", type=int, default=8, help="frames not timed")
    parser.add_argument("--objects", type=int, default=3, help="objects in the scene")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    from sam2_ros.engine.model_loading import DEMO_MODEL, build_model
    from sam2_ros.engine.streaming_tracker import StreamingTracker
    from sam2_ros.evaluation.synthetic_scene import SceneConfig, first_frame_prompts, render_scene

    torch.set_num_threads(args.threads)
    loaded = build_model(DEMO_MODEL, device="cpu", precision="fp32")
    cfg = SceneConfig(num_objects=args.objects, duration_s=(args.frames + 1) / SceneConfig.fps)
    frames = list(render_scene(cfg))
    trackers = {m: StreamingTracker(loaded, tracking_mode=m) for m in MODES}
    prompts = first_frame_prompts(cfg)
    totals: dict[str, list[float]] = {m: [] for m in MODES}
    stages: dict[str, dict[str, list[float]]] = {m: {s: [] for s in STAGES} for m in MODES}
    for n, frame in enumerate(frames):
        order = MODES if n % 2 == 0 else MODES[::-1]
        for mode in order:
            started = time.perf_counter()
            result = trackers[mode].track(frame.rgb, frame.stamp_ns)
            elapsed = time.perf_counter() - started
            if n > args.warmup:
                totals[mode].append(elapsed * 1e3)
                for s in STAGES:
                    stages[mode][s].append(getattr(result.timing, s) * 1e3)
            for p in prompts:  # each object clicked on the first frame it shows well
                if p.frame_index == n:
                    trackers[mode].add_prompt(points=[list(p.point)], labels=[1],
                                              stamp=frame.stamp_ns)
    medians = {m: statistics.median(totals[m]) for m in MODES}
    print(f"machine: {cpu_model()}, torch threads {args.threads}, "
          f"{len(prompts)} objects, {len(totals['sam2'])} timed frames")
    for m in MODES:
        parts = ", ".join(f"{s} {statistics.median(stages[m][s]):.1f}" for s in STAGES)
        print(f"{m:>6}: median {medians[m]:.1f} ms/frame ({parts})")
    print(f"motion vs sam2: {100 * (medians['motion'] / medians['sam2'] - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
