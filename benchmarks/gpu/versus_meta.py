"""Ours against Meta's predictor on a lent GPU, side by side in one process (issue 38).

SAM 2.1 tiny at 1024 px on random weights (weights do not change the compute), the same
weights in both; frames arrive as camera-sized uint8 images, so each engine's
preprocessing is counted (Meta's ``init_state`` decodes and resizes every frame up front:
its per-frame share, timed apart, is added to its frame time). Parts, in the order that
matters most if the lease runs out; each is written to OUT/versus_meta.json as it ends:

1. eager: ours (compile: false) against SAM2VideoPredictor, bf16 autocast;
2. compiled: ours (defaults, compile: true) against SAM2VideoPredictorVOS
   (``vos_optimized=True``, max-autotune): first-frame latency with compilation, then
   per-frame time at 1, 4 and 8 objects, host waits (torch's sync debug mode, both
   engines; ours also counts its own) and bytes copied per frame;
3. memory: ours over 300 frames with 8 objects, allocated every 25 frames and the peak.
Run: ``bash benchmarks/gpu.sh --run versus_meta`` (``--tiny --device cpu``: its CPU test).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import engines, machine
from benchmarks.common.scene import write_scene
from benchmarks.gpu import parts
from benchmarks.gpu.checks import report

FULL = {"size": 1024, "objects": (1, 4, 8), "warmup": 3, "frames": 30, "long_frames": 300,
        "long_objects": 8, "sample_every": 25, "camera": (640, 480)}
TINY = {"size": 64, "objects": (1, 2), "warmup": 1, "frames": 3, "long_frames": 9,
        "long_objects": 2, "sample_every": 3, "camera": (64, 48)}


class Deadline:
    """Seconds left for the run: a part that would start after it is skipped, named."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def passed(self) -> bool:
        return time.perf_counter() > self.end


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default="out/gpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (a CPU test run)")
    p.add_argument("--parts", default="eager,compiled,memory")
    p.add_argument("--deadline-s", type=float, default=360.0,
                   help="no part starts after this many seconds")
    return p.parse_args(argv)


def _ms(times: list[float]) -> float:
    return 1e3 * float(np.median(times))


def torch_syncs(step) -> int:
    """Synchronising calls torch sees in ``step()`` (its sync debug mode; CUDA only)."""
    if not torch.cuda.is_available():
        return -1
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message).lower() for w in caught)


def side_by_side(cfg, ours_loaded, predictor, scene, n: int, dtype, device) -> dict:
    """One object count: both engines started, warmed up and timed frame by frame."""
    total = cfg["warmup"] + cfg["frames"]
    ours = engines.OursEngine(ours_loaded, scene, n)
    meta = engines.OfficialEngine(predictor, scene, n, device, total + 1, autocast_dtype=dtype)
    start = {"ours": ours.start(), "meta": meta.start()}
    times = engines.lockstep([ours, meta], total + 1, f"{n} objects")
    ours_t, meta_t = times["ours"][cfg["warmup"]:], times[meta.name][cfg["warmup"]:]
    transfer = ours.last_result.transfer
    row = {"objects": n, "ours_ms": _ms(ours_t), "meta_step_ms": _ms(meta_t)}
    row["meta_load_ms"] = 1e3 * meta.load_per_frame()
    row["meta_ms"] = row["meta_step_ms"] + row["meta_load_ms"]
    row["ratio"] = row["ours_ms"] / row["meta_ms"]
    row["ours_fps"], row["meta_fps"] = 1e3 / row["ours_ms"], 1e3 / row["meta_ms"]
    row["ours_waits"], row["ours_to_host_b"] = transfer.syncs, transfer.bytes
    row["ours_upload_b"] = transfer.upload_bytes
    row["start_s_ours"], row["start_s_meta"] = start["ours"], start["meta"]
    meta.close()
    return row


def _syncs_row(cfg, ours_loaded, predictor, scene, n: int, dtype, device) -> dict:
    """torch's count of host waits in one warm frame of each engine."""
    total = cfg["warmup"] + 2
    ours = engines.OursEngine(ours_loaded, scene, n)
    meta = engines.OfficialEngine(predictor, scene, n, device, total + 1, autocast_dtype=dtype)
    ours.start(), meta.start()
    for i in range(1, total):
        ours.step(i), meta.step(i)
    row = {"objects": n, "torch_waits_ours": torch_syncs(lambda: ours.step(total)),
           "torch_waits_meta": torch_syncs(lambda: meta.step(total))}
    meta.close()
    return row


def compare(cfg, args, scene, state, compiled: bool) -> dict:
    """Part 1 or 2: both engines built (timed), then every object count side by side."""
    device, t0 = torch.device(args.device), time.perf_counter()
    ours_loaded = engines.build_ours(args.device, cfg["size"], None, 0, compiled)
    first = engines.OursEngine(ours_loaded, scene, 1)
    first.start()
    out = {"first_frame_s_ours": time.perf_counter() - t0}
    dtype = ours_loaded.autocast_dtype
    t0 = time.perf_counter()
    predictor = engines.build_official(args.device, cfg["size"], state["weights"],
                                       vos_optimized=compiled)
    meta = engines.OfficialEngine(predictor, scene, 1, device, 2, autocast_dtype=dtype)
    meta.start()
    meta.close()
    out["first_frame_s_meta"] = time.perf_counter() - t0
    out["first_frame_s_meta_init_state"] = meta.init_state_s
    out["precision"] = str(dtype)
    print(out, flush=True)
    out["rows"], out["syncs"] = [], []
    for n in cfg["objects"]:
        if state["deadline"].passed():
            out["rows"].append({"objects": n, "skipped": "deadline"})
            continue
        out["rows"].append(side_by_side(cfg, ours_loaded, predictor, scene, n, dtype, device))
        print(out["rows"][-1], flush=True)
    for n in cfg["objects"]:
        if not state["deadline"].passed():
            out["syncs"].append(_syncs_row(cfg, ours_loaded, predictor, scene, n, dtype, device))
    return out


def memory(cfg, args, scene, state) -> dict:
    """Part 3: ours (compile: true) over a long stream; device memory every few frames."""
    loaded = engines.build_ours(args.device, cfg["size"], None, 0, True)
    n = cfg["long_objects"]
    ours = engines.OursEngine(loaded, scene, n)
    ours.start()
    cuda = torch.device(args.device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rows = []
    for i in range(1, cfg["long_frames"] + 1):
        frame = scene.frames[i % len(scene.frames)]
        ours.tracker.track(frame, stamp=scene.stamps[0] + i * 33_000_000)
        if i % cfg["sample_every"] == 0:
            engines.sync(loaded.device)
            rows.append({"frame": i, "allocated_mb": torch.cuda.memory_allocated() / 2**20
                         if cuda else machine.rss_bytes() / 2**20,
                         "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None})
    growth = rows[-1]["allocated_mb"] - rows[0]["allocated_mb"]
    return {"objects": n, "frames": cfg["long_frames"], "samples": rows,
            "growth_mb_first_to_last_sample": growth}


PARTS = {"eager": lambda c, a, s, st: compare(c, a, s, st, False),
         "compiled": lambda c, a, s, st: compare(c, a, s, st, True),
         "memory": memory}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = TINY if args.tiny else FULL
    engines.quiet_model_logs()
    engines.quiet_official_progress()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = parts.results_header(args.device, cfg)
    state = {"deadline": Deadline(args.deadline_s)}
    # Meta's predictor gets exactly our weights (drawn from seed 0, eager layout).
    state["weights"] = engines.build_ours("cpu", cfg["size"], None, 0).model.state_dict()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sam2_vs_meta_") as work:
        width, height = cfg["camera"]
        scene = write_scene(Path(work) / "frames", cfg["warmup"] + cfg["frames"] + 2, width,
                            height, max(cfg["objects"]))

        def part(key: str) -> object:
            if state["deadline"].passed():
                return {"skipped": "deadline"}
            return PARTS[key](cfg, args, scene, state)

        parts.run_parts(((key, key, lambda key=key: part(key))
                         for key in args.parts.split(",")), results, out / "versus_meta.json")
    return parts.finish(results, started, out / "versus_meta.json", report)


if __name__ == "__main__":
    sys.exit(main())
