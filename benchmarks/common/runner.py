"""Around the measuring: child processes of the benchmarks and their result files.

Parts that must not share a process with the others (memory per engine, Meta's compiling
``vos_optimized`` predictor, the ROS node's client) run as ``python -m benchmarks.<name>``
children with a time limit, killed with their process group when it runs out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

#: The repository root: ``python -m benchmarks.<name>`` runs from here.
REPO = Path(__file__).resolve().parents[2]


def module_command(name: str, *args: str) -> list[str]:
    """The command that runs ``benchmarks.<name>`` with this interpreter (from REPO)."""
    return [sys.executable, "-m", f"benchmarks.{name}", *args]


def run_subprocess(cmd: list[str], timeout: float, env: dict | None = None,
                   cwd: str | None = None, log: Path | None = None) -> tuple[int | None, str]:
    """Run a child; kill its whole process group at the time limit. Returns (rc, tail)."""
    with open(log or os.devnull, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd or str(REPO), start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = None
    tail = log.read_text(errors="replace")[-2000:] if log else ""
    return rc, tail


def vos_command(json_path: Path, scene, image_size: int, device: str, objects: int,
                weights: Path, frames: int) -> list[str]:
    """The worker that times Meta's vos_optimized predictor on ``scene`` (workers.vos)."""
    return module_command(
        "workers", "vos", "--json", str(json_path), "--jpeg-dir", str(scene.jpeg_dir),
        "--image-size", str(image_size), "--device", device, "--objects", str(objects),
        "--points", json.dumps(scene.points), "--weights", str(weights),
        "--frames", str(frames))


def read_json(path: Path) -> dict:
    """What a child wrote to ``path`` so far ({} when it wrote nothing)."""
    return json.loads(path.read_text()) if path.exists() else {}


def redraw_only(report_json: str | None, write: Callable[[dict, Path], str]) -> bool:
    """``--report FILE``: rewrite a report and its plots from an earlier JSON (no timing);
    returns whether that was asked for."""
    if not report_json:
        return False
    path = Path(report_json)
    print(write(json.loads(path.read_text()), path.parent))
    return True


def save_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))
