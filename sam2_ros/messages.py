"""Build the node's output messages from tracker results, for any message library.

The live node fills rclpy message classes; the offline replay fills ``rosbags`` classes to
write the same topics into a bag. Both libraries construct messages from keyword
arguments, so one builder, given the classes to use (``MessageTypes``), serves both, and
``frame_messages`` builds a whole frame's outputs for both: the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2_ros.engine.results import ObjectResult
from sam2_ros.engine.steps.postprocessing import label_image_of
from sam2_ros.imaging.codec import encode_fields
from sam2_ros.imaging.masks import crop_mask
from sam2_ros.imaging.overlay import draw_overlay
from sam2_ros.track_state import OCCLUDED, TRACKING, TrackStates


@dataclass(frozen=True)
class MessageTypes:
    """The message classes of one library (rclpy's generated ones or rosbags')."""

    Time: Any
    Header: Any
    RegionOfInterest: Any
    Image: Any
    Point: Any
    TrackedObject: Any
    TrackedObjectArray: Any


def stamp_to_ns(stamp: Any) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time of any library (exact, no float)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def build_time(types: MessageTypes, stamp_ns: int) -> Any:
    """builtin_interfaces/Time from integer nanoseconds."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return types.Time(sec=sec, nanosec=nanosec)


def build_header(types: MessageTypes, stamp_ns: int, frame_id: str) -> Any:
    return types.Header(stamp=build_time(types, stamp_ns), frame_id=frame_id)


def build_image(types: MessageTypes, header: Any, array: np.ndarray, encoding: str) -> Any:
    """An Image message holding a numpy array laid out as ``encoding`` (host byte order)."""
    return types.Image(header=header, **encode_fields(array, encoding))


def build_roi(types: MessageTypes, bbox: Sequence[int]) -> Any:
    x, y, w, h = (int(v) for v in bbox)
    return types.RegionOfInterest(x_offset=x, y_offset=y, height=h, width=w, do_rectify=False)


def build_tracked_object(
    types: MessageTypes,
    header: Any,
    result: ObjectResult,
    position: Sequence[float] | None = None,
    track: tuple[int, float] | None = None,
) -> Any:
    """TrackedObject: the mask is cropped to the box and left empty when not visible.
    ``track`` is (state, seconds since seen) from ``track_state``; None: judged from this
    frame alone (tracking when visible, occluded otherwise). An occluded object with a
    predicted box (motion mode) carries that box, flagged ``box_predicted``."""
    visible = result.shown
    state = int(track[0]) if track else (TRACKING if result.visible else OCCLUDED)
    predicted = result.predicted_box if not visible and state == OCCLUDED else None
    box = result.bbox if visible else (predicted or (0, 0, 0, 0))
    if visible:
        mask = build_image(types, header, crop_mask(result.mask, result.bbox), "mono8")
    else:
        mask = build_image(types, header, np.zeros((0, 0), np.uint8), "mono8")
    has_position = position is not None and visible
    x, y, z = (float(v) for v in position) if has_position else (0.0, 0.0, 0.0)
    return types.TrackedObject(
        id=int(result.object_id),
        label=result.label,
        visible=bool(result.visible),
        presence=float(result.presence),
        score=float(result.score),
        bbox=build_roi(types, box),
        centroid_x=float(result.centroid[0]) if visible else 0.0,
        centroid_y=float(result.centroid[1]) if visible else 0.0,
        area=int(result.area) if visible else 0,
        mask=mask,
        frames_since_prompt=int(result.frames_since_prompt),
        has_position=bool(has_position),
        position=types.Point(x=x, y=y, z=z),
        state=state,
        seconds_since_seen=float(track[1]) if track else 0.0,
        box_predicted=predicted is not None,
    )


def build_object_array(
    types: MessageTypes,
    stamp_ns: int,
    frame_id: str,
    results: Sequence[ObjectResult],
    positions: Mapping[int, Sequence[float]] | None = None,
    tracks: Mapping[int, tuple[int, float]] | None = None,
) -> Any:
    header = build_header(types, stamp_ns, frame_id)
    positions = positions or {}
    tracks = tracks or {}
    objects = [
        build_tracked_object(
            types, header, r, positions.get(r.object_id), tracks.get(r.object_id)
        )
        for r in sorted(results, key=lambda r: r.object_id)
    ]
    return types.TrackedObjectArray(header=header, objects=objects)


def build_label_image(
    types: MessageTypes,
    stamp_ns: int,
    frame_id: str,
    results: Sequence[ObjectResult],
    image_hw: tuple[int, int],
    threshold: float = 0.0,
) -> Any:
    header = build_header(types, stamp_ns, frame_id)
    return build_image(types, header, label_image_of(results, image_hw, threshold), "16UC1")


@dataclass
class FrameMessages:
    """What the node publishes (and replay records) for one tracked frame."""

    labels: Any  # ~/masks: 16UC1 label image
    objects: Any  # ~/objects: TrackedObjectArray with every object's track state
    states: dict[int, tuple[int, float]]  # object id -> (track state, seconds since seen)
    overlay: Any | None = None  # ~/overlay (bgr8), when asked for
    overlay_bgr: np.ndarray | None = None  # its pixels (replay writes them to a video)


def frame_messages(
    types: MessageTypes,
    stamp_ns: int,
    frame_id: str,
    rgb: np.ndarray,
    results: Sequence[ObjectResult],
    tracks: TrackStates,
    generation: int,
    *,
    positions: Mapping[int, Sequence[float]] | None = None,
    threshold: float = 0.0,
    overlay_alpha: float | None = None,
) -> FrameMessages:
    """One frame's outputs: the track states (``tracks`` is updated), the label image, the
    object array and, when ``overlay_alpha`` is given, the overlay. An object is shown (in
    the label image, its mask and box, the overlay) by one rule, ``ObjectResult.shown``."""
    states = tracks.update(stamp_ns, {r.object_id: r.visible for r in results}, generation,
                           covered={r.object_id for r in results if r.covered})
    out = FrameMessages(
        labels=build_label_image(types, stamp_ns, frame_id, results, rgb.shape[:2], threshold),
        objects=build_object_array(types, stamp_ns, frame_id, results, positions, states),
        states=states,
    )
    if overlay_alpha is not None:
        out.overlay_bgr = draw_overlay(
            rgb, [(r.object_id, r.label, r.mask, r.shown, r.score) for r in results], overlay_alpha
        )
        header = build_header(types, stamp_ns, frame_id)
        out.overlay = build_image(types, header, out.overlay_bgr, "bgr8")
    return out
