#!/usr/bin/env python3
"""Cost of turning a camera frame into the model's input, per preprocessing path.

``meta`` (PIL bicubic on the host, float image copied) against ``device`` (uint8 copied,
resized and normalised where the model runs), at image_size 512 and 1024 from 640x480 and
1920x1080 frames: median milliseconds per frame over a few frames (on CUDA timed to the
end of the device's work). ``make speed`` prints it; ``benchmarks/gpu.sh`` runs it on a GPU.
It reports; it never asserts on time. Run from the repository root:
``python -m benchmarks.preprocessing_cost``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

CAMERAS = ((640, 480), (1920, 1080))
SIZES = (512, 1024)


def measure(device: str = "cpu", reps: int = 5) -> list[dict]:
    """One row per (camera, image_size, path): median ms per frame and bytes uploaded."""
    import numpy as np
    import torch

    from sam2_ros.engine.hardware import host_sync
    from sam2_ros.engine.results import HostTransfer
    from sam2_ros.engine.steps.frame_upload import FrameUpload

    dev = torch.device(device)
    rng = np.random.default_rng(0)
    rows = []
    for width, height in CAMERAS:
        frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2)]
        for size in SIZES:
            for mode in ("meta", "device"):
                upload = FrameUpload(size, dev, mode)
                upload(frames[0])  # warm: buffers, constants, kernels
                times, transfer = [], HostTransfer()
                for i in range(reps):
                    with host_sync.counting(transfer):
                        started = time.perf_counter()
                        upload(frames[i % 2])
                        if dev.type == "cuda":
                            torch.cuda.synchronize(dev)
                        times.append(time.perf_counter() - started)
                rows.append({"camera": f"{width}x{height}", "image_size": size, "path": mode,
                             "ms": 1e3 * statistics.median(times),
                             "upload_bytes": transfer.upload_bytes // reps})
    return rows


def table(rows: list[dict]) -> str:
    """A markdown table of ``measure``'s rows."""
    lines = ["| camera | image_size | path | ms per frame | bytes to the device |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['camera']} | {r['image_size']} | {r['path']} | {r['ms']:.1f} | "
              f"{r['upload_bytes']:,} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args(argv)
    print(table(measure(args.device, args.reps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
