"""Benchmark parts that must run in a process of their own, started by run.py.

Started as ``python -m benchmarks.workers <memory|vos> ...``:

- ``memory``: resident memory over a long stream for one engine (a process per engine, so
  RSS is that engine's alone).
- ``vos``: Meta's ``vos_optimized=True`` predictor, whose torch.compile may take longer
  than any sane limit on a CPU; run.py kills it at its time limit and reports how far it got.

Each writes a JSON file as it goes, so a killed worker still says what it reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks.common.engines import (
    OfficialEngine,
    OursEngine,
    build_official,
    build_ours,
    quiet_official_progress,
    sync,
)
from benchmarks.common.machine import rss_bytes
from benchmarks.common.scene import Scene
from benchmarks.common.stats import STEADY_FROM, warm_stats


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def _cuda_allocated(device) -> int | None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return int(torch.cuda.memory_allocated())
    return None


def _sample(result: dict, frame: int, held: int, device) -> None:
    """One memory sample: RSS, the engine's kept tensors and (on CUDA) allocated bytes."""
    result["samples"].append({"frame": frame, "rss": rss_bytes(), "held_tensor_bytes": held,
                              "cuda_allocated": _cuda_allocated(device)})


def _track_ours(args, jpegs: list[Path], points: list, result: dict,
                save: Callable[[], None]) -> list[float]:
    """Our engine over the JPEGs, decoded one at a time as a camera hands them over."""
    import numpy as np
    from PIL import Image

    loaded = build_ours(args.device, args.image_size, args.checkpoint, args.seed)
    result["rss_after_build"] = rss_bytes()

    def frame(i):
        with Image.open(jpegs[i]) as img:
            return np.array(img.convert("RGB"))

    first = frame(0)
    scene = Scene(Path(args.jpeg_dir), [first], [0], points)
    engine = OursEngine(loaded, scene, len(points), frames=[first])
    engine.start()
    result["phase"] = "tracking"
    _sample(result, 0, engine.held_tensor_bytes(), loaded.device)
    times: list[float] = []
    for i in range(1, len(jpegs)):
        pixels = frame(i)
        t0 = time.perf_counter()
        engine.tracker.track(pixels, stamp=i)
        sync(loaded.device)
        times.append(time.perf_counter() - t0)
        if i % args.every == 0 or i == len(jpegs) - 1:
            _sample(result, i, engine.held_tensor_bytes(), loaded.device)
            save()
    return times


def _track_official(args, jpegs: list[Path], points: list, result: dict,
                    save: Callable[[], None]) -> list[float]:
    """Meta's predictor over the JPEG folder, which init_state loads up front."""
    import torch

    device = torch.device(args.device)
    state_dict = torch.load(args.weights, map_location="cpu", weights_only=True)
    predictor = build_official(args.device, args.image_size, state_dict)
    del state_dict
    result["rss_after_build"] = rss_bytes()
    quiet_official_progress()
    result["rss_before_init_state"] = rss_bytes()
    scene = Scene(Path(args.jpeg_dir), [], [], points)
    engine = OfficialEngine(predictor, scene, len(points), device, len(jpegs),
                            autocast_dtype=torch.bfloat16 if device.type == "cuda" else None)
    engine.start()
    result["init_state_s"] = engine.init_state_s
    result["images_bytes"] = engine.images_bytes()
    result["rss_after_init_state"] = rss_bytes()
    result["phase"] = "tracking"
    _sample(result, 0, engine.held_tensor_bytes(), device)
    times = []
    for i in range(1, len(jpegs)):
        times.append(engine.step(i))
        if i % args.every == 0 or i == len(jpegs) - 1:
            _sample(result, i, engine.held_tensor_bytes(), device)
            save()
    engine.close()
    return times


def memory(args) -> None:
    """Resident memory of one engine over a long stream, sampled every ``--every`` frames."""
    out_path = Path(args.json)
    jpegs = sorted(Path(args.jpeg_dir).glob("*.jpg"))
    points = [tuple(p) for p in json.loads(args.points)][: args.objects]
    result: dict = {"engine": args.engine, "frames": len(jpegs), "every": args.every,
                    "image_size": args.image_size, "objects": len(points), "samples": [],
                    "phase": "building"}
    _write(out_path, result)
    track = _track_ours if args.engine == "ours" else _track_official
    times = track(args, jpegs, points, result, lambda: _write(out_path, result))
    result["per_frame"] = warm_stats(times)
    result["phase"] = "done"
    _write(out_path, result)


def vos(args) -> None:
    import torch

    out_path = Path(args.json)
    points = [tuple(p) for p in json.loads(args.points)][: args.objects]
    result: dict = {"phase": "building", "started": time.time()}
    _write(out_path, result)
    try:
        state_dict = torch.load(args.weights, map_location="cpu", weights_only=True)
        device = torch.device(args.device)
        t0 = time.perf_counter()
        predictor = build_official(args.device, args.image_size, state_dict,
                                   vos_optimized=True)
        result["build_s"] = time.perf_counter() - t0
        quiet_official_progress()
        scene = Scene(Path(args.jpeg_dir), [], [], points)
        engine = OfficialEngine(predictor, scene, len(points), device, args.frames,
                                autocast_dtype=torch.bfloat16
                                if device.type == "cuda" else None)
        result["phase"] = "init_state (compiles the image encoder)"
        _write(out_path, result)
        engine.start()
        result["init_state_s"] = engine.init_state_s
        result["prompt_s"] = engine.prompt_s
        result["phase"] = "propagating (first frames compile memory attention/encoder)"
        times: list[float] = []
        result["times"] = times
        for i in range(1, args.frames):
            times.append(engine.step(i))
            _write(out_path, result)
        engine.close()
        result["per_frame"] = warm_stats(times, steady_from=STEADY_FROM)
        result["phase"] = "done"
    except Exception as exc:
        result["phase"] = "failed"
        result["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
        result["traceback"] = traceback.format_exc()[-3000:]
    _write(out_path, result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("memory", "vos"):
        p = sub.add_parser(name)
        p.add_argument("--json", required=True)
        p.add_argument("--jpeg-dir", required=True)
        p.add_argument("--image-size", type=int, required=True)
        p.add_argument("--device", default="cpu")
        p.add_argument("--objects", type=int, default=1)
        p.add_argument("--points", required=True, help="JSON list of [x, y]")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--checkpoint", default=None)
        p.add_argument("--weights", help="state_dict file (the official predictor's weights)")
    sub.choices["memory"].add_argument("--engine", choices=("ours", "official"), required=True)
    sub.choices["memory"].add_argument("--every", type=int, default=25)
    sub.choices["vos"].add_argument("--frames", type=int, required=True)
    args = parser.parse_args(argv)
    {"memory": memory, "vos": vos}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
