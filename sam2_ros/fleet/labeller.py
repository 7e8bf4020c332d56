"""Label one bag after another with one loaded model: what each fleet worker runs.

Each bag is tracked by ``replay_bag`` (exactly as `sam2_ros replay`) into a hidden temporary
folder, renamed to ``OUT/<bag name>/`` when everything is written, and only then marked
complete by ``label.json`` (written under a temporary name and renamed, so it is whole or
absent). A bag without that marker is redone by the next run. Plain Python, no Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import ReplayOptions, choose_image_topic, replay_bag
from sam2_ros.fleet.bag_list import BagJob
from sam2_ros.settings import TrackerSettings

MARKER = "label.json"
PREVIEW = "preview.png"
#: (frames done, frames in the bag) after each frame
Progress = Callable[[int, int], None]


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type where the message alone would be unclear."""
    text = " ".join(str(exc).split())
    if isinstance(exc, ValueError | OSError | bag_io.BagError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def completed(out_root: Path, name: str) -> dict | None:
    """The record of a bag finished by an earlier run (None: not finished, redo it)."""
    try:
        record = json.loads((out_root / name / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("status") == "done" else None


def partial_dir(out_root: Path, name: str) -> Path:
    """Where a bag's outputs are written before they are renamed into place."""
    return out_root / f".{name}.partial"


class BagLabeller:
    """One worker: loads the model once, then labels the bags it is handed."""

    def __init__(self, settings: TrackerSettings, options: ReplayOptions, out_root: Path) -> None:
        self.settings = settings
        self.options = replace(options, progress=False, on_frame=None)
        self.out_root = Path(out_root)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.load_error = ""
        started = time.perf_counter()
        try:
            self.loaded = settings.load()
        except Exception as exc:  # reported by ready(): the run stops with it
            self.loaded, self.load_error = None, one_line(exc)
        self.load_s = time.perf_counter() - started

    def ready(self) -> dict:
        """Who this worker is, how long the model took to load, and why it failed to."""
        return {"worker": self.worker, "load_s": self.load_s, "error": self.load_error}

    def label(self, job: BagJob, progress: Progress | None = None) -> dict:
        """Label ``job``'s bag into OUT/<name>/; a failure is returned with its reason."""
        started = time.perf_counter()
        record = {"name": job.name, "bag": str(job.bag), "worker": self.worker,
                  "prompts": str(job.prompts) if job.prompts else None}
        temp = partial_dir(self.out_root, job.name)
        try:
            record.update(self._label_into(job, temp, progress))
        except Exception as exc:  # any bag may be broken: report it, go on with the next
            shutil.rmtree(temp, ignore_errors=True)
            record.update(status="failed", reason=one_line(exc))
        record["wall_s"] = time.perf_counter() - started
        if record["status"] == "done":
            _write_marker(self.out_root / job.name, record)
        return record

    def _label_into(self, job: BagJob, temp: Path, progress: Progress | None) -> dict:
        shutil.rmtree(temp, ignore_errors=True)
        info = bag_io.inspect_bag(job.bag)
        total = info.topics[choose_image_topic(info, self.options.image_topic)].count
        preview: list = []

        def on_frame(index: int, out) -> None:
            if index == total // 2:
                preview.append(out.overlay_bgr)
            if progress is not None:
                progress(index + 1, total)

        report = replay_bag(job.bag, job.prompts, temp, self.settings,
                            replace(self.options, on_frame=on_frame),
                            tracker_factory=lambda: self.settings.build(self.loaded))
        if report.interrupted:
            raise InterruptedError(f"interrupted after {report.frames} of {total} frames")
        if preview:
            import cv2

            cv2.imwrite(str(temp / PREVIEW), preview[0])
        final = self.out_root / job.name
        shutil.rmtree(final, ignore_errors=True)  # an unfinished earlier try
        temp.rename(final)
        return {"status": "done", "reason": "", "frames": report.frames,
                "track_s": report.summary["frame_time_s"]["total"],
                "metrics": _metrics(report.summary)}


def _metrics(summary: dict) -> dict:
    """The numbers of a replay summary that the fleet summary shows per bag."""
    keys = ("J&F_mean", "J_mean", "F_mean", "identity", "detections", "random_weights")
    kept = {k: summary[k] for k in keys if k in summary}
    kept["objects"] = len(summary.get("objects", {}))
    return kept


def _write_marker(folder: Path, record: dict) -> None:
    """label.json, whole or not at all (written aside, then renamed)."""
    temp = folder / (MARKER + ".tmp")
    temp.write_text(json.dumps(record, indent=2) + "\n")
    temp.rename(folder / MARKER)
