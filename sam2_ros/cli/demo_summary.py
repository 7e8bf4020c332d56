"""What a demo run is judged by: the node's recorded outputs against ground truth (frames,
latency, identities, J&F), the overlay video, summary.md|json and visibility.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2_ros.bags.video import VideoOutput
from sam2_ros.cli.demo_recorder import Recorder
from sam2_ros.engine.results import ObjectResult
from sam2_ros.evaluation.run_summary import (
    RunTimeline,
    plot_visibility,
    verdict_line,
    write_summary,
)
from sam2_ros.settings import TrackerSettings


def summarise(recorder: Recorder, published: dict[int, float], gt: dict[int, np.ndarray],
              gt_ids: dict[int, int] | None, prompts: tuple[int, int]) -> tuple[RunTimeline, dict]:
    """The run's timeline and summary numbers.

    Args:
        recorder: what the node published.
        published: stamp -> when the demo published that camera frame.
        gt: stamp -> ground-truth label image.
        gt_ids: object id -> the ground-truth object it was prompted on; None when objects
            came from detections, matched then by overlap.
        prompts: prompts sent and accepted.
    """
    timeline = RunTimeline()
    with recorder.lock:
        stamps = sorted(recorder.processed)
        if gt_ids is None:
            gt_ids = _gt_ids_by_overlap(stamps, recorder.label_images, gt)
        for stamp in stamps:
            labels = recorder.label_images.get(stamp)
            results = [_as_result(o, labels) for o in recorder.objects[stamp].objects]
            timeline.add_frame(stamp, results)
            if stamp in published:
                timeline.latencies.append(recorder.processed[stamp] - published[stamp])
            if stamp in gt and labels is not None:
                timeline.add_ground_truth(results, gt[stamp], gt_ids)
    summary = timeline.summary()
    engine_ms = recorder.engine_ms
    summary.update({
        "frames_in": len(published),
        "frames_processed": len(stamps),
        "frames_dropped": len(published) - len(stamps),
        "prompts_sent": prompts[0],
        "prompts_accepted": prompts[1],
        "engine_frame_ms_median": float(np.median(engine_ms)) if engine_ms else None,
    })
    return timeline, summary


def _gt_ids_by_overlap(stamps: list[int], label_images: dict[int, np.ndarray],
                       gt: dict[int, np.ndarray]) -> dict[int, int]:
    """Object id -> the ground-truth object its mask covers most on the first frame it
    shows (objects made from detections have no prompt that says which they are)."""
    out: dict[int, int] = {}
    for stamp in stamps:
        labels, truth = label_images.get(stamp), gt.get(stamp)
        if labels is None or truth is None:
            continue
        for object_id in (int(i) for i in np.unique(labels) if i and int(i) not in out):
            under = truth[labels == object_id]
            under = under[under > 0]
            if under.size:
                out[object_id] = int(np.bincount(under).argmax())
    return out


def _as_result(obj, labels: np.ndarray | None) -> ObjectResult:
    """The parts of a TrackedObject the summary needs, with its mask from ~/masks."""
    mask = (labels == obj.id) if labels is not None else np.zeros((0, 0), dtype=bool)
    bbox = (obj.bbox.x_offset, obj.bbox.y_offset, obj.bbox.width, obj.bbox.height)
    predicted = bool(obj.box_predicted)  # bbox is then the motion filter's, not a mask's
    return ObjectResult(
        object_id=obj.id,
        label=obj.label,
        visible=obj.visible,
        presence=obj.presence,
        score=obj.score,
        mask=mask,
        bbox=(0, 0, 0, 0) if predicted else bbox,
        centroid=(obj.centroid_x, obj.centroid_y),
        area=obj.area,
        frames_since_prompt=obj.frames_since_prompt,
        predicted_box=bbox if predicted else None,
    )


def write_video(
    path: Path, overlays: list[tuple[int, np.ndarray]], fps: float, summary: dict
) -> str:
    """The recorded ~/overlay frames as a video at the rate the node processed them;
    returns the codec used."""
    rate = fps * summary["frames_processed"] / max(1, summary["frames_in"])
    with VideoOutput(path, rate) as video:
        for _, bgr in overlays:
            video.write(bgr)
    return video.codec


def write_demo_summary(
    out: Path,
    bag: Path,
    settings: TrackerSettings,
    weights: str,
    fps: float,
    summary: dict,
    timeline: RunTimeline,
) -> None:
    """summary.md|json and visibility.png."""
    notes = [
        f"Input: `{bag}` ({summary['frames_in']} frames at {fps:.1f} fps); node: "
        f"{settings.model}, image_size {settings.image_size}, device {settings.device}.",
        f"Weights: {weights}.",
        f"Frames in {summary['frames_in']}, processed {summary['frames_processed']}, dropped "
        f"{summary['frames_dropped']} (the node keeps only the newest frame while busy).",
        f"Prompts sent through ~/add_prompt: {summary['prompts_sent']}, accepted "
        f"{summary['prompts_accepted']}.",
    ]
    if summary["engine_frame_ms_median"] is not None:
        notes.append(
            f"Engine time per frame (node diagnostics, median of period means): "
            f"{summary['engine_frame_ms_median']:.0f} ms."
        )
    write_summary(summary, out, "summary", "sam2_ros demo", notes)
    plot_visibility(timeline, out / "visibility.png", "sam2_ros demo: visibility over time")


def print_where_and_verdict(out: Path, summary: dict) -> None:
    """The summary, where every output is, and the one-line verdict last."""
    print((out / "summary.md").read_text())
    print(f"[demo] also in {out}: visibility.png, output_bag/ (what the node published), node.log")
    print(f"[demo] overlay video: {out / 'overlay.mp4'}")
    print(f"[demo] summary: {out / 'summary.md'} (every number: {out / 'summary.json'})")
    print(f"[demo] {verdict_line(summary)}")
