"""Offline, deterministic replay of a rosbag2 through the streaming tracker.

Every frame of the image topic is tracked (no drops, no ROS graph), prompts come from a
prompts file and/or a detections topic in the bag (vision_msgs/Detection2DArray, applied
on the frame each message's stamp names, as the node does: offline auto-labelling), and
the outputs are what the live node would publish: an output bag with the node's topics
(``~/detections`` too), an overlay video, metrics (and J&F when
the bag carries ground truth).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2_ros import names
from sam2_ros.bags import bag_io
from sam2_ros.bags.prompt_file import FilePrompt, load_prompt_file
from sam2_ros.bags.video import VideoOutput
from sam2_ros.engine.detections import (
    Detection,
    DetectionError,
    DetectionPrompter,
    check_detections,
)
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import TrackerError
from sam2_ros.evaluation.run_summary import RunTimeline, plot_visibility, write_summary
from sam2_ros.imaging.codec import (
    ImageDecodeError,
    StreamBitDepth,
    camera_msg_to_rgb,
    image_msg_to_array,
)
from sam2_ros.messages import FrameMessages, frame_messages, stamp_to_ns
from sam2_ros.settings import TrackerSettings, default
from sam2_ros.track_state import TrackStates
from sam2_ros.vision_messages import VisionTypes, build_detection_array, detections_of

MASKS_TOPIC = names.resolved(names.MASKS)
OBJECTS_TOPIC = names.resolved(names.OBJECTS)
OVERLAY_TOPIC = names.resolved(names.OVERLAY)
DETECTIONS_OUT_TOPIC = names.resolved(names.DETECTIONS_OUT)
_IMAGE_TYPES = (bag_io.IMAGE_TYPE, bag_io.COMPRESSED_TYPE)


class ReplayError(ValueError):
    """A replay that cannot go on; the message is one line saying why."""


@dataclass
class ReplayOptions:
    image_topic: str = ""  # "" = pick the camera image topic
    gt_topic: str = bag_io.GT_LABELS_TOPIC
    gt_dir: Path | None = None  # label images 00000.png, 00001.png ... (frame index order)
    write_overlay_topic: bool = False
    storage: str = "sqlite3"
    progress: bool = True
    alpha: float = 0.5
    #: vision_msgs/Detection2DArray topic to prompt from; "" = the bag's only one, if any;
    #: "none" = ignore detections.
    detections_topic: str = ""
    detection_min_score: float = default("detection_min_score")
    detection_refresh_iou: float = default("detection_refresh_iou")
    detection_forget_after: float = default("detection_forget_after")
    video: bool = True  # write DIR/overlay.mp4
    #: called after each frame is recorded with its index and what was published for it
    #: (``sam2_ros label`` reports progress and keeps a preview frame through it)
    on_frame: Callable[[int, FrameMessages], None] | None = None


@dataclass
class ReplayReport:
    out_dir: Path
    frames: int
    interrupted: bool
    summary: dict = field(default_factory=dict)
    video_codec: str = ""


def choose_image_topic(info: bag_io.BagInfo, wanted: str) -> str:
    """The topic to track: the one asked for, else the camera's colour image topic."""
    listing = ", ".join(f"{t.name} ({t.msgtype})" for t in info.topics.values()) or "none"
    if wanted:
        if wanted not in info.topics:
            raise ReplayError(f"bag has no topic {wanted}; its topics: {listing}")
        if info.topics[wanted].msgtype not in _IMAGE_TYPES:
            raise ReplayError(f"topic {wanted} is {info.topics[wanted].msgtype}, not an image")
        return wanted
    skip = ("depth", "ground_truth", "label", "mask", "overlay")
    candidates = [
        t.name
        for t in info.topics.values()
        if t.msgtype in _IMAGE_TYPES and not any(s in t.name for s in skip)
    ]
    if not candidates:
        raise ReplayError(f"bag has no camera image topic; its topics: {listing}")
    return bag_io.IMAGE_TOPIC if bag_io.IMAGE_TOPIC in candidates else candidates[0]


def choose_detections_topic(info: bag_io.BagInfo, wanted: str) -> str:
    """The detections topic to prompt from ("" = none)."""
    found = [t.name for t in info.topics.values() if t.msgtype == bag_io.DETECTION_ARRAY_TYPE]
    if wanted == "none":
        return ""
    if wanted:
        if wanted not in info.topics:
            raise ReplayError(f"bag has no topic {wanted}; its detection topics: "
                              f"{', '.join(found) or 'none'}")
        if wanted not in found:
            raise ReplayError(f"topic {wanted} is {info.topics[wanted].msgtype}, not "
                              f"{bag_io.DETECTION_ARRAY_TYPE}")
        return wanted
    if len(found) > 1:
        raise ReplayError(f"bag has several detection topics ({', '.join(found)}): choose one "
                          "with --detections-topic")
    return found[0] if found else ""


def replay_bag(
    bag: str | Path,
    prompts_path: str | Path | None,
    out_dir: str | Path,
    settings: TrackerSettings,
    options: ReplayOptions | None = None,
    tracker_factory: Callable[[], StreamingTracker] | None = None,
) -> ReplayReport:
    """Track every frame of a bag as the node would, and write what it would publish.

    Args:
        bag: a rosbag2 folder (sqlite3 or MCAP).
        prompts_path: a prompts YAML file; None: only the bag's detections topic prompts.
        out_dir: gets output_bag/, overlay.mp4, metrics.json|md and visibility.png.
        settings: the tracker's parameters.
        options: topics, video and limits of this replay; None: the defaults.
        tracker_factory: builds the tracker instead of ``settings.build()`` (a shared model).
    Returns:
        The ReplayReport: output folder, frames tracked, whether interrupted, metrics.
    Raises:
        ReplayError: no usable image topic, nothing to prompt from, an ambiguous
            detections topic, or ``out_dir`` holds an output bag already.
        PromptFileError: a malformed prompts file.
    """
    run = _open_run(bag, prompts_path, Path(out_dir), options or ReplayOptions())
    tracker = tracker_factory() if tracker_factory else settings.build()
    codec = _track_every_frame(run, tracker)
    summary = _write_metrics(run, tracker)
    return ReplayReport(run.out_dir, len(run.timeline.stamps), run.interrupted, summary, codec)


@dataclass
class _Run:
    """One replay: its checked inputs and what it has gathered so far."""

    bag: Path
    info: bag_io.BagInfo
    image_topic: str
    prompts: list[FilePrompt]
    out_dir: Path
    options: ReplayOptions
    gt: dict[int, np.ndarray]  # stamp -> ground-truth labels from the bag
    detections_topic: str = ""
    detections: dict[int, list[list[Detection]]] = field(default_factory=dict)  # by stamp
    prompter: DetectionPrompter | None = None
    vision: VisionTypes = field(default_factory=bag_io.rosbags_vision_types)  # ~/detections
    detection_counts: dict[str, int] = field(default_factory=lambda: {
        "messages": 0, "bad": 0, "objects_created": 0, "re_prompts": 0, "removed": 0,
        "refused": 0})
    timeline: RunTimeline = field(default_factory=RunTimeline)
    gt_ids: dict[int, int] = field(default_factory=dict)  # object id -> ground-truth id
    tracks: TrackStates = field(default_factory=TrackStates)
    bit_depth: StreamBitDepth = field(default_factory=StreamBitDepth)  # as the node scales
    interrupted: bool = False


def _open_run(
    bag: str | Path, prompts_path: str | Path, out_dir: Path, options: ReplayOptions
) -> _Run:
    """Check every input before anything is written; create the output folder."""
    info = bag_io.inspect_bag(bag)
    image_topic = choose_image_topic(info, options.image_topic)
    detections_topic = choose_detections_topic(info, options.detections_topic)
    if prompts_path is None and not detections_topic:
        raise ReplayError("nothing to track: give a prompts file (--prompts) or a bag with a "
                          f"{bag_io.DETECTION_ARRAY_TYPE} topic")
    prompts = load_prompt_file(prompts_path) if prompts_path is not None else []
    if options.gt_dir is not None and not Path(options.gt_dir).is_dir():
        raise ReplayError(f"ground-truth folder not found: {options.gt_dir}")
    if (out_dir / "output_bag").exists():
        raise ReplayError(f"{out_dir / 'output_bag'} already exists: choose another --out folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    gt = _read_ground_truth(bag, info, options.gt_topic)
    run = _Run(Path(bag), info, image_topic, prompts, out_dir, options, gt, detections_topic)
    if detections_topic:
        for _, _, msg in bag_io.iter_messages(bag, [detections_topic]):
            run.detections.setdefault(stamp_to_ns(msg.header.stamp), []).append(
                detections_of(msg))
        run.prompter = DetectionPrompter(
            options.detection_min_score, options.detection_refresh_iou,
            options.detection_forget_after, history_frames=30,
        )
    return run


def _track_every_frame(run: _Run, tracker: StreamingTracker) -> str:
    """Track, prompt and record each frame in order (Ctrl-C stops cleanly, keeping what was
    written); returns the video codec used."""
    from tqdm import tqdm

    options = run.options
    topics = {MASKS_TOPIC: bag_io.IMAGE_TYPE, OBJECTS_TOPIC: bag_io.TRACKED_OBJECT_ARRAY_TYPE,
              DETECTIONS_OUT_TOPIC: bag_io.DETECTION_ARRAY_TYPE}
    if options.write_overlay_topic:
        topics[OVERLAY_TOPIC] = bag_io.IMAGE_TYPE
    with (
        bag_io.BagWriter(run.out_dir / "output_bag", topics, storage=options.storage) as writer,
        VideoOutput(run.out_dir / "overlay.mp4" if options.video else None,
                    frame_rate(run.info, run.image_topic)) as video,
        tqdm(
            total=run.info.topics[run.image_topic].count, desc="replay", unit="frame",
            disable=None if options.progress else True,
        ) as bar,
    ):  # fmt: skip
        try:
            messages = bag_io.iter_messages(run.bag, [run.image_topic])
            for index, (_, _, msg) in enumerate(messages):
                stamp, rgb, results = _track_frame(run, tracker, index, msg)
                _score_frame(run, index, stamp, results)
                out = _record_frame(run, writer, video, tracker, msg.header.frame_id, stamp, rgb,
                                    results)
                bar.update(1)
                if options.on_frame is not None:
                    options.on_frame(index, out)
        except KeyboardInterrupt:
            run.interrupted = True
    return video.codec


def _track_frame(run: _Run, tracker: StreamingTracker, index: int, msg) -> tuple:
    """Decode and track frame ``index``, then apply the prompts the file gives for it;
    returns (stamp, rgb, the frame's results after its prompts)."""
    stamp = stamp_to_ns(msg.header.stamp)
    where = f"frame {index} of {run.image_topic}"
    try:
        rgb = camera_msg_to_rgb(msg, run.bit_depth)
    except (ImageDecodeError, ValueError) as exc:
        raise ReplayError(f"{where}: {exc}") from exc
    started = time.perf_counter()
    try:
        tracker.track(rgb, stamp)
    except TrackerError as exc:
        raise ReplayError(f"{where}: {exc}") from exc
    for prompt in (p for p in run.prompts if p.applies_to(index, stamp)):
        object_id = _apply(tracker, prompt, stamp)
        if prompt.gt_id is not None:
            run.gt_ids[object_id] = prompt.gt_id
    if run.prompter is not None:
        _apply_detections(run, tracker, stamp, rgb.shape[:2])
    results = tracker.latest_results()
    run.timeline.add_frame(stamp, results, time.perf_counter() - started)
    return stamp, rgb, results


def _apply_detections(run: _Run, tracker: StreamingTracker, stamp: int,
                      image_hw: tuple[int, int]) -> None:
    """The detection messages naming this frame, applied as the node applies them (all
    frames are tracked offline, so each message is applied right on its frame)."""
    tracks = run.tracks
    lost = [i for i, t in tracks.tracks.items() if t.unseen_frames > tracks.occluded_frames]
    run.prompter.on_frame(stamp, image_hw, tracker.latest_results(), lost)
    counts = run.detection_counts
    for detections in run.detections.get(stamp, []):
        counts["messages"] += 1
        try:
            check_detections(detections, image_hw)
        except DetectionError:
            counts["bad"] += 1
            continue
        applied = run.prompter.apply(tracker, stamp, detections)
        counts["objects_created"] += len(applied.created)
        counts["re_prompts"] += len(applied.refreshed)
        counts["removed"] += len(applied.removed)
        counts["refused"] += len(applied.errors)


def _score_frame(run: _Run, index: int, stamp: int, results: list) -> None:
    """J, F and identity against the frame's ground truth, from the bag or --gt-dir."""
    labels = run.gt.get(stamp)
    if labels is None and run.options.gt_dir is not None:
        labels = read_label_image(run.options.gt_dir, index)
    if labels is not None:
        run.timeline.add_ground_truth(results, labels, run.gt_ids)


def _record_frame(
    run: _Run,
    writer: bag_io.BagWriter,
    video: VideoOutput,
    tracker: StreamingTracker,
    frame_id: str,
    stamp: int,
    rgb: np.ndarray,
    results: list,
) -> FrameMessages:
    """What the node would publish for the frame, into the output bag, and the overlay
    into the video (built by the node's own ``frame_messages``); returns it."""
    out = frame_messages(
        bag_io.rosbags_message_types(), stamp, frame_id, rgb, results, run.tracks,
        tracker.generation, threshold=tracker.mask_threshold, overlay_alpha=run.options.alpha,
    )  # fmt: skip
    writer.write(MASKS_TOPIC, stamp, out.labels)
    writer.write(OBJECTS_TOPIC, stamp, out.objects)
    detections = build_detection_array(run.vision, out.objects.header, results)
    writer.write(DETECTIONS_OUT_TOPIC, stamp, detections)
    video.write(out.overlay_bgr)
    if run.options.write_overlay_topic:
        writer.write(OVERLAY_TOPIC, stamp, out.overlay)
    return out


def _write_metrics(run: _Run, tracker: StreamingTracker) -> dict:
    """DIR/metrics.md|json and DIR/visibility.png; returns the summary."""
    frames = len(run.timeline.stamps)
    unused = [p.line for p in run.prompts if p.frame is not None and p.frame >= frames]
    summary = run.timeline.summary()
    summary.update(
        {
            "bag": str(run.bag),
            "image_topic": run.image_topic,
            "interrupted": run.interrupted,
            "random_weights": tracker.loaded.random_weights,
            "weights": tracker.loaded.weights,
            "image_size": tracker.image_size,
            "prompts_not_reached_lines": unused,
        }
    )
    if run.detections_topic:
        summary["detections"] = {"topic": run.detections_topic, **run.detection_counts}
    notes = [
        f"Bag `{run.bag}`, topic `{run.image_topic}`, {frames} frames"
        + (" (interrupted)" if run.interrupted else "")
        + f", image_size {tracker.image_size}.",
        f"Weights: {tracker.loaded.weights}.",
    ]
    write_summary(summary, run.out_dir, "metrics", "sam2_ros replay", notes)
    plot_visibility(run.timeline, run.out_dir / "visibility.png", f"replay of {run.bag.name}")
    return summary


def _apply(tracker: StreamingTracker, prompt: FilePrompt, stamp: int) -> int:
    try:
        result = tracker.add_prompt(
            object_id=prompt.object_id or None,
            points=prompt.points,
            labels=prompt.labels,
            box=prompt.box,
            mask=prompt.mask,
            stamp=stamp,
            clear_previous=prompt.clear_previous,
            label=prompt.label,
        )
    except TrackerError as exc:
        raise ReplayError(f"prompt at line {prompt.line}: {exc}") from exc
    return result.object_id


def _read_ground_truth(bag: str | Path, info: bag_io.BagInfo, topic: str) -> dict:
    if not topic or topic not in info.topics:
        return {}
    return {
        stamp_to_ns(msg.header.stamp): image_msg_to_array(msg)
        for _, _, msg in bag_io.iter_messages(bag, [topic])
    }


def read_label_image(folder: Path, index: int) -> np.ndarray | None:
    """Ground-truth labels of frame ``index`` from a folder of PNGs (DAVIS layout: one file
    per frame named by its index, pixel value or palette index = object id)."""
    from PIL import Image

    for name in (f"{index:05d}.png", f"{index:06d}.png", f"{index}.png"):
        path = Path(folder) / name
        if path.is_file():
            return np.array(Image.open(path))
    return None


def frame_rate(info: bag_io.BagInfo, topic: str) -> float:
    """Mean frame rate of a topic from its message count and the bag's time span."""
    count = info.topics[topic].count
    if count < 2 or info.duration_s <= 0:
        return 10.0
    return (count - 1) / info.duration_s
