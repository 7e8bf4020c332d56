"""The first lent GPU's checks (issue 39 point 6), one run under 8 minutes; ``gpu.sh``
sets it up and runs ``python -m benchmarks.gpu.checks``. Random weights (no checkpoint
travels); each section writes what it measured to OUT/gpu.json and OUT/gpu.md, and a
section that fails records why and the rest go on.

(a) where a frame's time goes at 1024 px: tiny and large, 1/4/16 objects, both tracking
    modes: wall time, device time between CUDA events; (p) preprocessing alone;
(b) host waits per frame: torch's sync debug mode ("warn") against the engine's count;
(c) device memory every 100 frames over 1,500 frames, 8 objects, a prompt on a past frame
    every 50 frames and a full reset midway; (d) ours (sam2 mode) against Meta's predictor,
    bf16: mask IoU, logit difference; fp16: finite logits; (e) compile: true: load time,
    encoder speed-up, a dropped-frame prompt from a 2nd thread; (u) frames uploaded ahead
    from a camera thread (``prefetch``) against the worker uploading them.
``--tiny`` shrinks every size so the whole script runs on a CPU (the test of this file).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import engines, machine
from benchmarks.common.scene import write_scene
from benchmarks.gpu import parts

FULL = {"size": 1024, "models": ("sam2.1_hiera_t", "sam2.1_hiera_l"), "objects": (1, 4, 16),
        "frames": 24, "long_frames": 1500, "long_objects": 8, "prompt_every": 50,
        "sample_every": 100, "parity_frames": 16, "camera": (640, 480)}
TINY = {"size": 64, "models": ("sam2.1_hiera_t",), "objects": (1, 2), "frames": 3,
        "long_frames": 14, "long_objects": 2, "prompt_every": 4, "sample_every": 4,
        "parity_frames": 3, "camera": (64, 48)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default="out/gpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (a CPU test run)")
    p.add_argument("--sections", default="apbcdeu")
    return p.parse_args(argv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tracker_for(loaded, n: int, mode: str, **kwargs):
    from sam2_ros.engine.streaming_tracker import StreamingTracker

    return StreamingTracker(loaded, max_objects=max(16, n), tracking_mode=mode, **kwargs)


def prompt_all(tracker, scene, n: int) -> None:
    tracker.track(scene.frames[0], scene.stamps[0])
    for point in scene.points[:n]:
        tracker.add_prompt(points=[point], labels=[1])


def frame_times(cfg, args, scene, device) -> list[dict]:
    """(a): per model, objects and mode, medians over the frames after the first two."""
    from sam2_ros.engine.model_loading import build_model

    rows = []
    for model in cfg["models"]:
        loaded = build_model(model, device=args.device, precision="auto",
                             image_size=cfg["size"])
        for n in cfg["objects"]:
            for mode in ("sam2", "motion"):
                tracker = tracker_for(loaded, n, mode)
                prompt_all(tracker, scene, n)
                walls, busy, waits = [], [], []
                for i in range(1, cfg["frames"]):
                    start, end = _events(device)
                    t0 = time.perf_counter()
                    result = tracker.track(scene.frames[i], scene.stamps[i])
                    if end is not None:
                        end.record()
                    sync(device)
                    walls.append(time.perf_counter() - t0)
                    busy.append(start.elapsed_time(end) / 1e3 if end is not None else None)
                    waits.append(result.transfer.syncs)
                rows.append({"model": model, "objects": n, "mode": mode,
                             "wall_ms": _median_ms(walls), "device_ms": _median_ms(busy),
                             "host_waits": max(waits)})
                print("(a)", rows[-1], flush=True)
        del loaded
    return rows


def _events(device: torch.device):
    if device.type != "cuda":
        return None, None
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    return start, end


def _median_ms(values: list) -> float | None:
    values = [v for v in values[1:] if v is not None]
    return 1e3 * statistics.median(values) if values else None


def host_waits(cfg, args, scene, device) -> list[dict]:
    """(b): torch's own count of synchronising calls per frame against the engine's."""
    from sam2_ros.engine.model_loading import build_model

    loaded = build_model(cfg["models"][0], device=args.device, image_size=cfg["size"])
    rows = []
    for mode in ("sam2", "motion"):
        for n in cfg["objects"]:
            tracker = tracker_for(loaded, n, mode)
            prompt_all(tracker, scene, n)
            for i in range(1, 4):
                tracker.track(scene.frames[i], scene.stamps[i])
            torch_count = []
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    result = tracker.track(scene.frames[4], scene.stamps[4])
                torch_count = [str(w.message).splitlines()[0] for w in caught
                               if "synchroniz" in str(w.message).lower()]
            finally:
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode(0)
            rows.append({"mode": mode, "objects": n, "engine": result.transfer.syncs,
                         "torch": len(torch_count) if device.type == "cuda" else None,
                         "torch_calls": sorted(set(torch_count))[:8]})
            print("(b)", rows[-1], flush=True)
    return rows


def long_run(cfg, args, scene_long, device) -> list[dict]:
    """(c): memory every ``sample_every`` frames; past-frame prompts; a reset midway."""
    from sam2_ros.engine.model_loading import build_model

    loaded = build_model(cfg["models"][0], device=args.device, image_size=cfg["size"])
    n = cfg["long_objects"]
    tracker = tracker_for(loaded, n, "motion")
    prompt_all(tracker, scene_long, n)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rows, frames = [], scene_long.frames
    total = cfg["long_frames"]
    for i in range(1, total):
        stamp = scene_long.stamps[0] + i * 33_000_000
        frame = frames[i % len(frames)]
        if i == total // 2:
            tracker.reset()
            prompt_all(tracker, _Shifted(scene_long, stamp), n)
            continue
        tracker.track(frame, stamp)
        if i % cfg["prompt_every"] == 0:
            past = tracker.ring_stamps()[0]
            tracker.add_prompt(object_id=1, points=[scene_long.points[0]], labels=[1],
                               stamp=past)
        if i % cfg["sample_every"] == 0:
            rows.append({"frame": i, **_memory(device)})
            print("(c)", rows[-1], flush=True)
    return rows


class _Shifted:
    """A scene's first frame and clicks at another stamp (the stream after a reset)."""

    def __init__(self, scene, stamp: int) -> None:
        self.frames, self.stamps, self.points = [scene.frames[0]], [stamp], scene.points


def _memory(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"rss_mb": machine.rss_bytes() / 2**20}
    return {"allocated_mb": torch.cuda.memory_allocated(device) / 2**20,
            "reserved_mb": torch.cuda.memory_reserved(device) / 2**20,
            "peak_mb": torch.cuda.max_memory_allocated(device) / 2**20}


def parity(cfg, args, scene, device) -> dict:
    """(d): ours in sam2 mode (Meta's preprocessing, no hole filling, as Meta's predictor
    without its CUDA extension) against SAM2VideoPredictor, both bf16; then fp16."""
    from sam2_ros.engine.model_loading import build_model

    engines.quiet_official_progress()
    n, frames = min(2, max(cfg["objects"])), cfg["parity_frames"]
    out = {}
    for precision in ("bf16", "fp16"):
        loaded = build_model(engines.MODEL, device=args.device, precision=precision,
                             image_size=cfg["size"])
        tracker = tracker_for(loaded, n, "sam2", fill_hole_area=0, preprocessing="meta")
        prompt_all(tracker, scene, n)
        ours = [tracker.track(scene.frames[i], scene.stamps[i]) for i in range(1, frames)]
        logits = [o.logits for r in ours for o in r.objects]
        out[f"{precision}_finite"] = bool(all(np.isfinite(x).all() for x in logits))
        if precision != "bf16":
            continue
        predictor = engines.build_official(args.device, cfg["size"],
                                          loaded.model.state_dict())
        meta = _meta_logits(predictor, scene, n, frames, loaded.autocast_dtype, device)
        ious, diffs = [], []
        for r, meta_frame in zip(ours, meta[1:], strict=True):
            for o, m in zip(r.objects, meta_frame, strict=True):
                a, b = o.logits > 0, m > 0
                union = np.logical_or(a, b).sum()
                ious.append(float(np.logical_and(a, b).sum() / union) if union else 1.0)
                diffs.append(float(np.abs(o.logits - m).max()))
        out.update(min_iou=min(ious), mean_iou=float(np.mean(ious)),
                   max_logit_diff=max(diffs), frames=frames - 1, objects=n)
    print("(d)", out, flush=True)
    return out


def _meta_logits(predictor, scene, n: int, frames: int, dtype, device) -> list[list]:
    """Meta's predictor's mask logits at video size, per frame and object."""
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype,
                                                enabled=dtype is not None):
        state = predictor.init_state(str(scene.jpeg_dir))
        for k, point in enumerate(scene.points[:n]):
            predictor.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1,
                                            points=np.array([point], np.float32),
                                            labels=np.array([1], np.int32))
        result = []
        for _, _, masks in predictor.propagate_in_video(
                state, start_frame_idx=0, max_frame_num_to_track=frames - 1):
            result.append([m[0].float().cpu().numpy() for m in masks])
    return result


def compiled(cfg, args, scene, device) -> dict:
    """(e): compile: true (on CUDA Meta's max-autotune): load time, encoder time against
    eager, and a prompt on a dropped frame from a second thread while frames go on."""
    from sam2_ros.engine.model_loading import build_model
    from sam2_ros.engine.results import StageTiming
    from sam2_ros.engine.steps.sam2_steps import Sam2Steps

    out = {}
    encoders = {}
    for flag in (False, True):
        t0 = time.perf_counter()
        loaded = build_model(engines.MODEL, device=args.device, image_size=cfg["size"],
                             compile_image_encoder=flag)
        out[f"load_s_{'compiled' if flag else 'eager'}"] = time.perf_counter() - t0
        steps, times = Sam2Steps(loaded), []
        dtype = loaded.autocast_dtype
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32,
                                                    enabled=dtype is not None):
            for i in range(6):
                t0 = time.perf_counter()
                steps.encode_image(scene.frames[i % len(scene.frames)], StageTiming())
                sync(device)
                times.append(time.perf_counter() - t0)
        encoders[flag] = _median_ms(times[1:])
    out.update(encoder_ms_eager=encoders[False], encoder_ms_compiled=encoders[True])
    tracker = tracker_for(loaded, 1, "motion")
    prompt_all(tracker, scene, 1)
    tracker.track(scene.frames[2], scene.stamps[2])
    dropped = (scene.stamps[1], scene.frames[1])
    errors: list[str] = []

    def prompt_dropped() -> None:
        try:
            tracker.add_prompt(object_id=1, points=[scene.points[0]], labels=[1],
                               stamp=dropped[0], frame=dropped[1])
        except Exception as exc:  # reported, not raised: the run goes on
            errors.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=prompt_dropped)
    worker.start()
    tracker.track(scene.frames[3], scene.stamps[3])
    worker.join(timeout=300)
    out["dropped_frame_prompt"] = "ok" if not errors and not worker.is_alive() else (
        errors[0] if errors else "did not finish in 300 s")
    print("(e)", out, flush=True)
    return out


def preprocessing(cfg, args, scene, device) -> list[dict]:
    """(a) too: preprocessing alone, Meta's host path against the device path
    (``preprocessing_cost``: 512 and 1024 px from 640x480 and 1920x1080)."""
    from benchmarks.preprocessing_cost import measure

    rows = measure(args.device, reps=3 if args.tiny else 10)
    print("(p)", rows, flush=True)
    return rows


def upload_ahead(cfg, args, scene, device) -> list[dict]:
    """(u): the first model, 4 objects, motion mode: frame wall time (median) when each
    frame's upload was started by ``prefetch`` on a camera thread during the frame before,
    against the worker uploading every frame itself."""
    from sam2_ros.engine.model_loading import build_model

    loaded = build_model(cfg["models"][0], device=args.device, precision="auto",
                         image_size=cfg["size"])
    frames = [np.array(f) for f in scene.frames]  # writable: prefetch keys on the array
    rows = []
    for ahead in (False, True):
        tracker = tracker_for(loaded, 4, "motion", preprocessing="device")
        prompt_all(tracker, scene, 4)
        walls = []
        for i in range(1, cfg["frames"]):
            camera = None
            if ahead and i + 1 < cfg["frames"]:
                camera = threading.Thread(target=tracker.prefetch, args=(frames[i + 1],))
            t0 = time.perf_counter()
            if camera is not None:
                camera.start()
            tracker.track(frames[i], scene.stamps[i])
            sync(device)
            walls.append(time.perf_counter() - t0)
            if camera is not None:
                camera.join()
        rows.append({"upload": "ahead, camera thread" if ahead else "by the worker",
                     "wall_ms": _median_ms(walls), "frames_uploaded_ahead": tracker.uploaded_ahead})
        print("(u)", rows[-1], flush=True)
    return rows


SECTIONS = {"a": ("frame time", frame_times), "p": ("preprocessing alone", preprocessing),
            "b": ("host waits", host_waits),
            "c": ("memory over a long stream", long_run), "d": ("parity with Meta", parity),
            "e": ("compile", compiled), "u": ("upload ahead", upload_ahead)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = TINY if args.tiny else FULL
    device = torch.device(args.device)
    engines.quiet_model_logs()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = parts.results_header(args.device, cfg)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sam2_gpu_") as work:
        width, height = cfg["camera"]
        scene = write_scene(Path(work) / "frames", max(cfg["frames"], 8), width,
                            height, max(cfg["objects"]))
        parts.run_parts(((key, SECTIONS[key][0],
                          lambda run=SECTIONS[key][1]: run(cfg, args, scene, device))
                         for key in args.sections), results, out / "gpu.json")
    return parts.finish(results, started, out / "gpu.json", report)


def report(results: dict) -> str:
    """The sections as markdown (a table per list of rows)."""
    lines = [f"# GPU run: {results.get('gpu', {}).get('name', results['machine'])}",
             f"torch {results['torch']}, {results.get('total_s', 0):.0f} s", ""]
    for key, section in results["sections"].items():
        lines += [f"## ({key}) {section['name']} ({section['seconds']:.0f} s)", ""]
        data = section["data"]
        if isinstance(data, list) and data:
            lines += table(data)
        elif isinstance(data, dict) and any(_is_rows(v) for v in data.values()):
            lines += [f"- {k}: {_cell(v)}" for k, v in data.items() if not _is_rows(v)]
            for key, rows in data.items():
                if _is_rows(rows):
                    lines += ["", f"{key}:", "", *table(rows)]
        else:
            lines += [f"```\n{json.dumps(data, indent=1, default=str)}\n```"]
        lines.append("")
    return "\n".join(lines)


def _is_rows(value) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def table(rows: list[dict]) -> list[str]:
    """Rows of dicts as a markdown table (the columns are every key, in order seen)."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    return lines + ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]


def _cell(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
