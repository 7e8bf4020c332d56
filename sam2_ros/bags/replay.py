"""Offline, deterministic replay of a rosbag2 through the streaming tracker.

Every frame of the image topic is tracked (no drops, no ROS graph), prompts come from a
prompts file, and the outputs are what the live node would publish: an output bag with
the node's topics, an overlay video, metrics (and J&F when the bag carries ground truth).
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
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import TrackerError
from sam2_ros.evaluation.run_summary import RunTimeline, plot_visibility, write_summary
from sam2_ros.imaging.codec import (
    ImageDecodeError,
    StreamBitDepth,
    camera_msg_to_rgb,
    image_msg_to_array,
)
from sam2_ros.imaging.overlay import draw_overlay
from sam2_ros.messages import build_image, build_label_image, build_object_array, stamp_to_ns
from sam2_ros.settings import TrackerSettings
from sam2_ros.track_state import TrackStates

MASKS_TOPIC = names.resolved(names.MASKS)
OBJECTS_TOPIC = names.resolved(names.OBJECTS)
OVERLAY_TOPIC = names.resolved(names.OVERLAY)
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


def replay_bag(
    bag: str | Path,
    prompts_path: str | Path,
    out_dir: str | Path,
    settings: TrackerSettings,
    options: ReplayOptions | None = None,
    tracker_factory: Callable[[], StreamingTracker] | None = None,
) -> ReplayReport:
    """Track every frame of a bag; write DIR/output_bag, DIR/overlay.mp4, DIR/metrics.*"""
    options = options or ReplayOptions()
    info = bag_io.inspect_bag(bag)
    image_topic = choose_image_topic(info, options.image_topic)
    prompts = load_prompt_file(prompts_path)
    if options.gt_dir is not None and not Path(options.gt_dir).is_dir():
        raise ReplayError(f"ground-truth folder not found: {options.gt_dir}")
    out_dir = Path(out_dir)
    output_bag = out_dir / "output_bag"
    if output_bag.exists():
        raise ReplayError(f"{output_bag} already exists: choose another --out folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    gt = _read_ground_truth(bag, info, options.gt_topic)
    tracker = tracker_factory() if tracker_factory else settings.build()
    gt_ids: dict[int, int] = {}
    timeline = RunTimeline()
    types = bag_io.rosbags_message_types()
    fps = frame_rate(info, image_topic)
    topics = {MASKS_TOPIC: bag_io.IMAGE_TYPE, OBJECTS_TOPIC: bag_io.TRACKED_OBJECT_ARRAY_TYPE}
    if options.write_overlay_topic:
        topics[OVERLAY_TOPIC] = bag_io.IMAGE_TYPE
    total = info.topics[image_topic].count
    interrupted = False
    from tqdm import tqdm

    with (
        bag_io.BagWriter(output_bag, topics, storage=options.storage) as writer,
        VideoOutput(out_dir / "overlay.mp4", fps) as video,
        tqdm(
            total=total, desc="replay", unit="frame", disable=None if options.progress else True
        ) as bar,
    ):
        try:
            tracks = TrackStates()
            bit_depth = StreamBitDepth()  # 16-bit input scaled as the node scales it
            for index, (_, _, msg) in enumerate(bag_io.iter_messages(bag, [image_topic])):
                stamp = stamp_to_ns(msg.header.stamp)
                frame_id = msg.header.frame_id
                try:
                    rgb = camera_msg_to_rgb(msg, bit_depth)
                except (ImageDecodeError, ValueError) as exc:
                    raise ReplayError(f"frame {index} of {image_topic}: {exc}") from exc
                started = time.perf_counter()
                try:
                    tracker.track(rgb, stamp)
                except TrackerError as exc:
                    raise ReplayError(f"frame {index} of {image_topic}: {exc}") from exc
                for prompt in (p for p in prompts if p.applies_to(index, stamp)):
                    object_id = _apply(tracker, prompt, stamp)
                    if prompt.gt_id is not None:
                        gt_ids[object_id] = prompt.gt_id
                seconds = time.perf_counter() - started
                results = tracker.latest_results()
                timeline.add_frame(stamp, results, seconds)
                labels = gt.get(stamp)
                if labels is None and options.gt_dir is not None:
                    labels = read_label_image(options.gt_dir, index)
                if labels is not None:
                    timeline.add_ground_truth(results, labels, gt_ids)
                hw = rgb.shape[:2]
                writer.write(
                    MASKS_TOPIC, stamp, build_label_image(types, stamp, frame_id, results, hw)
                )
                states = tracks.update(
                    stamp, {r.object_id: r.visible for r in results}, tracker.generation
                )
                writer.write(
                    OBJECTS_TOPIC, stamp,
                    build_object_array(types, stamp, frame_id, results, tracks=states),
                )
                overlay = draw_overlay(
                    rgb,
                    [(r.object_id, r.label, r.mask, r.visible, r.score) for r in results],
                    options.alpha,
                )
                video.write(overlay)
                if options.write_overlay_topic:
                    header = bag_io.make_header(stamp, frame_id)
                    writer.write(OVERLAY_TOPIC, stamp, build_image(types, header, overlay, "bgr8"))
                bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
    unused = [p.line for p in prompts if p.frame is not None and p.frame >= len(timeline.stamps)]
    summary = timeline.summary()
    summary.update(
        {
            "bag": str(bag),
            "image_topic": image_topic,
            "interrupted": interrupted,
            "random_weights": tracker.loaded.random_weights,
            "image_size": tracker.image_size,
            "prompts_not_reached_lines": unused,
        }
    )
    notes = [
        f"Bag `{bag}`, topic `{image_topic}`, {len(timeline.stamps)} frames"
        + (" (interrupted)" if interrupted else "")
        + f", image_size {tracker.image_size}.",
        "Weights: RANDOM (no checkpoint given): masks are meaningless."
        if tracker.loaded.random_weights
        else f"Weights: {settings.checkpoint}",
    ]
    write_summary(summary, out_dir, "metrics", "sam2_ros replay", notes)
    plot_visibility(timeline, out_dir / "visibility.png", f"replay of {Path(bag).name}")
    return ReplayReport(out_dir, len(timeline.stamps), interrupted, summary, video.codec)


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
