"""Bags per minute of `sam2_ros label` with 1 and 2 local workers, and where the time goes.

``python benchmarks/fleet/label_rate.py [--bags 4] [--duration 1.0] [--size 160x120]``
makes synthetic bags with a detector topic, labels them with an embedded Ray of each size
(start and stop included) and prints per run: wall time, bags/min, frames/s, Ray start,
workers ready (process start, imports, model load), model load alone, and over the bags the
seconds spent decoding images (measured in a pass of their own), tracking (the engine and
prompts) and the rest (reading, writing the output bag, metrics, preview). Numbers only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import ReplayOptions
from sam2_ros.cli.main import main as sam2_ros
from sam2_ros.fleet.bag_list import find_jobs
from sam2_ros.fleet.ray_pool import PoolConfig, label_bags, ray_session
from sam2_ros.imaging.codec import StreamBitDepth, camera_msg_to_rgb
from sam2_ros.settings import TrackerSettings


def make_bags(root: Path, count: int, duration: float, size: str) -> None:
    width, height = size.split("x")
    for index in range(count):
        assert sam2_ros(["make-bag", str(root / f"bag{index}"), "--width", width, "--height",
                         height, "--duration", str(duration), "--detector", "--no-depth",
                         "--seed", str(index)]) == 0


def decode_seconds(bag: Path) -> float:
    """Seconds to read and decode every camera image of a bag (what replay does first)."""
    started = time.perf_counter()
    depth = StreamBitDepth()
    for _, _, msg in bag_io.iter_messages(bag, [bag_io.IMAGE_TOPIC]):
        camera_msg_to_rgb(msg, depth)
    return time.perf_counter() - started


def run(root: Path, workers: int, decode: dict[str, float]) -> dict:
    out = root / f"out-{workers}"
    jobs = find_jobs([str(root / "bags")])
    pool = PoolConfig(workers=workers, cpus_per_worker=1.0)
    settings = TrackerSettings(cpu_threads=1)
    started = time.perf_counter()
    with ray_session(pool):
        ray_up = time.perf_counter() - started
        result = label_bags(jobs, out, settings, ReplayOptions(progress=False, video=False),
                            pool)
    wall = time.perf_counter() - started
    done = [r for r in result.records if r["status"] == "done"]
    frames = sum(r["frames"] for r in done)
    track = sum(r["track_s"] for r in done)
    decoded = sum(decode[r["name"]] for r in done)
    busy = sum(r["wall_s"] for r in done)
    return {"workers": workers, "bags": len(done), "frames": frames, "wall_s": wall,
            "bags_per_min": 60 * len(done) / wall, "frames_per_s": frames / wall,
            "ray_start_s": ray_up, "workers_start_s": result.workers_start_s,
            "model_load_s": [w["load_s"] for w in result.workers],
            "decode_s": decoded, "track_s": track, "rest_s": busy - track - decoded,
            "bag_busy_s": busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bags", type=int, default=4)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per bag, 10 fps")
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        make_bags(root / "bags", args.bags, args.duration, args.size)
        decode = {p.name: decode_seconds(p) for p in sorted((root / "bags").iterdir())}
        rows = [run(root, workers, decode) for workers in (1, 2)]
    print("| workers | bags | frames | wall s | bags/min | frames/s | Ray start s "
          "| workers ready s | of it model load s | decode s | tracking s | rest s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        loads = ", ".join(f"{s:.1f}" for s in r["model_load_s"])
        print(f"| {r['workers']} | {r['bags']} | {r['frames']} | {r['wall_s']:.1f} "
              f"| {r['bags_per_min']:.1f} | {r['frames_per_s']:.2f} | {r['ray_start_s']:.1f} "
              f"| {r['workers_start_s']:.1f} | {loads} | {r['decode_s']:.2f} "
              f"| {r['track_s']:.1f} | {r['rest_s']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
