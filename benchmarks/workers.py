"""Benchmark parts that must run in a process of their own, started by run.py.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

common.use_repo_package()


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def _cuda_allocated(device) -> int | None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return int(torch.cuda.memory_allocated())
    return None


def memory(args) -> None:
    import numpy as np
    import torch
    from PIL import Image

    out_path = Path(args.json)
    jpegs = sorted(Path(args.jpeg_dir).glob("*.jpg"))
    points = [tuple(p) for p in json.loads(args.points)][: args.objects]
    result: dict = {"engine": args.engine, "frames": len(jpegs), "every": args.every,
                    "image_size": args.image_size, "objects": len(points), "samples": [],
                    "phase": "building"}
    _write(out_path, result)
    samples = result["samples"]

    def sample(frame: int, held: int, extra: dict | None = None) -> None:
        row = {"frame": frame, "rss": common.rss_bytes(), "held_tensor_bytes": held,
               "cuda_allocated": _cuda_allocated(device)}
        row.update(extra or {})
        samples.append(row)

    times: list[float] = []
    if args.engine == "ours":
        loaded = common.build_ours(args.device, args.image_size, args.checkpoint, args.seed)
        device = loaded.device
        result["rss_after_build"] = common.rss_bytes()

        def frame(i):
            with Image.open(jpegs[i]) as img:
                return np.array(img.convert("RGB"))

        first = frame(0)
        scene = common.Scene(Path(args.jpeg_dir), [first], [0], points)
        engine = common.OursEngine(loaded, scene, len(points), frames=[first])
        engine.start()
        result["phase"] = "tracking"
        sample(0, engine.held_tensor_bytes())
        for i in range(1, len(jpegs)):
            pixels = frame(i)  # decoded one at a time: a camera does not hand over a video
            t0 = time.perf_counter()
            engine.tracker.track(pixels, stamp=i)
            common.sync(device)
            times.append(time.perf_counter() - t0)
            if i % args.every == 0 or i == len(jpegs) - 1:
                sample(i, engine.held_tensor_bytes())
                _write(out_path, result)
    else:
        device = torch.device(args.device)
        state_dict = torch.load(args.weights, map_location="cpu", weights_only=True)
        predictor = common.build_official(args.device, args.image_size, state_dict)
        del state_dict
        result["rss_after_build"] = common.rss_bytes()
        common.quiet_official_progress()
        result["rss_before_init_state"] = common.rss_bytes()
        scene = common.Scene(Path(args.jpeg_dir), [], [], points)
        engine = common.OfficialEngine(predictor, scene, len(points), device, len(jpegs),
                                       autocast_dtype=torch.bfloat16
                                       if device.type == "cuda" else None)
        engine.start()
        result["init_state_s"] = engine.init_state_s
        result["images_bytes"] = engine.images_bytes()
        result["rss_after_init_state"] = common.rss_bytes()
        result["phase"] = "tracking"
        sample(0, engine.held_tensor_bytes())
        for i in range(1, len(jpegs)):
            times.append(engine.step(i))
            if i % args.every == 0 or i == len(jpegs) - 1:
                sample(i, engine.held_tensor_bytes())
                _write(out_path, result)
        engine.close()
    result["per_frame"] = common.warm_stats(times)
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
        predictor = common.build_official(args.device, args.image_size, state_dict,
                                          vos_optimized=True)
        result["build_s"] = time.perf_counter() - t0
        common.quiet_official_progress()
        scene = common.Scene(Path(args.jpeg_dir), [], [], points)
        engine = common.OfficialEngine(predictor, scene, len(points), device, args.frames,
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
        result["per_frame"] = common.warm_stats(times, steady_from=8)
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
