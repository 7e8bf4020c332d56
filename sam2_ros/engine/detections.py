"""Detections to tracks: which detection is which object, and what to do about each.

A detector (YOLO, Grounding DINO, ...) sees objects, SAM 2 follows them. This module decides,
for one detection message on one frame, with no ROS and no model: which detection belongs
to which track (``match``: optimal one-to-one, by box overlap and then by nearness), which
unmatched detection becomes a new object, which matched track is re-prompted with its
detection's box (drifted or LOST) and which track is forgotten. Identity never jumps: a
detection only ever prompts the track it is matched to. The rules and their parameters, as
a user meets them: docs/detections.md.

``BoxHistory`` keeps each track's box on recent tracked frames, because detections come late
and slower than the camera: a detection is matched against the boxes of the frame its stamp
names, not the newest ones.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linear_sum_assignment

from sam2_ros.engine.results import ObjectResult, PromptResult
from sam2_ros.errors import TrackerError, UnknownObjectError

if TYPE_CHECKING:  # the tracker imports torch; matching needs none of it
    from sam2_ros.engine.streaming_tracker import StreamingTracker

#: Least IoU between a detection and a track's box for them to be the same object.
MATCH_IOU = 0.1
#: Farthest a same-class detection may lie from a track that overlaps nothing, in
#: detection box diagonals, to be matched to it (centre to centre).
REACQUIRE_DISTANCE = 1.5
#: Least IoU between a track's box and a detection of another class, matched to another
#: track, for the track to count as displaced onto that object.
DISPLACED_IOU = 0.5

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


class DetectionError(TrackerError):
    """A detection message that cannot be used (the whole message is left out). ``kind``
    names the problem in words that stay the same between occurrences (warnings are
    throttled per kind)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Detection:
    """One detected object on one frame: its box in pixels, score and class label."""

    box: Box
    score: float
    label: str = ""


def xywh_to_box(bbox: Sequence[float]) -> Box:
    """x, y, width, height (ObjectResult.bbox) as x0, y0, x1, y1."""
    x, y, w, h = (float(v) for v in bbox)
    return (x, y, x + w, y + h)


def check_detections(detections: Sequence[Detection], image_hw: tuple[int, int]) -> None:
    """Raise DetectionError naming the first detection that cannot be used on a frame of
    ``image_hw``: a non-finite value, an empty box, a box that lies outside the image (one
    that sticks out only in part is fine: detectors pad). No detections at all is fine:
    the detector saw nothing on that frame, and the tracks it does not match count towards
    ``forget_after``."""
    height, width = image_hw
    for i, det in enumerate(detections):
        values = (*det.box, det.score)
        if not all(math.isfinite(v) for v in values):
            raise DetectionError(f"detection {i}: box or score is NaN or infinite: {values}",
                                 "detection not finite")
        x0, y0, x1, y1 = det.box
        if x1 <= x0 or y1 <= y0:
            raise DetectionError(f"detection {i}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty",
                                 "detection box empty")
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise DetectionError(
                f"detection {i}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the "
                f"{width}x{height} image",
                "detection box outside the image",
            )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N x 4, x0 y0 x1 y1) with every box in ``b`` (M x 4): N x M."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass(frozen=True)
class TrackView:
    """One track as the matcher sees it on a detection's frame."""

    object_id: int
    box: Box | None  # its mask's box on that frame; None when not visible there
    last_box: Box | None  # where it was last seen (near that frame); None if never
    label: str = ""
    lost: bool = False


@dataclass
class Plan:
    """What one detection message asks of the tracker."""

    create: list[Detection] = field(default_factory=list)
    refresh: list[tuple[int, Detection]] = field(default_factory=list)
    matched: dict[int, Detection] = field(default_factory=dict)
    forget: list[int] = field(default_factory=list)
    ignored: int = 0  # below min_score, or a second box on a tracked object


def match(detections: Sequence[Detection], tracks: Sequence[TrackView]) -> dict[int, int]:
    """Optimal one-to-one assignment of detections to tracks: detection index -> track index.

    First by overlap: IoU >= MATCH_IOU with the track's box on the frame (or where it was
    last seen) and no label conflict, total IoU maximised. Then, among what is left, by
    nearness: same class, centres within REACQUIRE_DISTANCE detection diagonals, total
    distance minimised. A track not visible on the frame, or whose box lies on an object of
    another class (IoU >= DISPLACED_IOU with another track's detection), may be matched to
    a detection of its class anywhere, so an object that comes back keeps its id.
    """
    if not detections or not tracks:
        return {}
    det_boxes = np.array([d.box for d in detections], dtype=np.float64)
    refs = [t.box if t.box is not None else t.last_box for t in tracks]
    raw = np.zeros((len(detections), len(tracks)))
    conflict = np.zeros_like(raw, dtype=bool)
    for j, (track, ref) in enumerate(zip(tracks, refs, strict=True)):
        if ref is not None:
            raw[:, j] = box_iou(det_boxes, np.array([ref]))[:, 0]
        for i, det in enumerate(detections):
            conflict[i, j] = bool(det.label and track.label and det.label != track.label)
    iou = np.where(conflict, 0.0, raw)
    allowed = iou >= MATCH_IOU
    rows, cols = linear_sum_assignment(np.where(allowed, -iou, 0.0))
    pairs = {int(i): int(j) for i, j in zip(rows, cols, strict=True) if allowed[i, j]}
    left_dets = [i for i in range(len(detections)) if i not in pairs and detections[i].label]
    taken = set(pairs.values())
    left_tracks = [j for j in range(len(tracks)) if j not in taken and refs[j] is not None]
    if not left_dets or not left_tracks:
        return pairs
    # A track sitting on an object of another class that a detection matched to another
    # track has lost its own object (SAM's memory jumped): no distance limit for it.
    matched_dets = list(pairs)
    displaced = {j for j in left_tracks
                 if any(conflict[i, j] and raw[i, j] >= DISPLACED_IOU for i in matched_dets)}
    dist = np.full((len(left_dets), len(left_tracks)), np.inf)
    for a, i in enumerate(left_dets):
        x0, y0, x1, y1 = detections[i].box
        diagonal = max(1e-6, float(np.hypot(x1 - x0, y1 - y0)))
        for b, j in enumerate(left_tracks):
            if tracks[j].label != detections[i].label:
                continue
            rx0, ry0, rx1, ry1 = refs[j]
            gap = np.hypot((x0 + x1 - rx0 - rx1) / 2, (y0 + y1 - ry0 - ry1) / 2)
            unseen = tracks[j].box is None or tracks[j].lost
            if gap <= REACQUIRE_DISTANCE * diagonal or j in displaced or unseen:
                dist[a, b] = gap
    near = np.isfinite(dist)
    rows, cols = linear_sum_assignment(np.where(near, dist, 1e12))
    for a, b in zip(rows, cols, strict=True):
        if near[a, b]:
            pairs[left_dets[a]] = left_tracks[b]
    return pairs


class DetectionMatcher:
    """Turns detection messages into plans, remembering when each track was last matched."""

    def __init__(self, min_score: float, refresh_iou: float, forget_after_s: float) -> None:
        self.min_score = min_score
        self.refresh_iou = refresh_iou
        self.forget_after_s = forget_after_s
        self._last_matched: dict[int, int] = {}  # object id -> stamp (ns)

    def plan(self, stamp: int, detections: Sequence[Detection],
             tracks: Sequence[TrackView]) -> Plan:
        """Decide what the detections of the frame ``stamp`` (ns) ask of the tracker."""
        out = Plan()
        usable = [d for d in detections if d.score >= self.min_score]
        out.ignored = len(detections) - len(usable)
        pairs = match(usable, tracks)
        for i, j in pairs.items():
            det, track = usable[i], tracks[j]
            out.matched[track.object_id] = det
            if self._needs_refresh(det, track):
                out.refresh.append((track.object_id, det))
        for i, det in enumerate(usable):
            if i in pairs:
                continue
            if self._overlaps_a_track(det, tracks):
                out.ignored += 1
            else:
                out.create.append(det)
        live = {t.object_id for t in tracks}
        for object_id in [i for i in self._last_matched if i not in live]:
            del self._last_matched[object_id]
        for object_id in live:
            if object_id in out.matched:
                previous = self._last_matched.get(object_id, stamp)
                self._last_matched[object_id] = max(previous, stamp)
            else:
                self._last_matched.setdefault(object_id, stamp)
        if self.forget_after_s > 0:
            limit = int(self.forget_after_s * 1e9)
            out.forget = sorted(
                i for i in live
                if i not in out.matched and stamp - self._last_matched[i] > limit
            )
        return out

    def created(self, object_id: int, stamp: int) -> None:
        """A plan's new object got this id (it counts as matched on its frame)."""
        self._last_matched[object_id] = stamp

    def forget(self, object_ids: Iterable[int]) -> None:
        for object_id in object_ids:
            self._last_matched.pop(object_id, None)

    def reset(self) -> None:
        self._last_matched.clear()

    def _needs_refresh(self, det: Detection, track: TrackView) -> bool:
        if track.lost or track.box is None:
            return True
        iou = float(box_iou(np.array([det.box]), np.array([track.box]))[0, 0])
        return iou < self.refresh_iou

    @staticmethod
    def _overlaps_a_track(det: Detection, tracks: Sequence[TrackView]) -> bool:
        refs = [t.box if t.box is not None else t.last_box for t in tracks]
        refs = [r for r in refs if r is not None]
        if not refs:
            return False
        return bool((box_iou(np.array([det.box]), np.array(refs)) >= MATCH_IOU).any())


class BoxHistory:
    """Each track's box on recent tracked frames, by stamp, so a late detection is matched
    against the frame it was made on. ``capacity`` frames are kept (oldest dropped)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._stamps: list[int] = []
        self._boxes: dict[int, dict[int, Box | None]] = {}
        # Where each object was last seen, kept beyond the window: a lost object may have
        # been out of sight for longer than ``capacity`` frames when a detection finds it.
        self._last_seen: dict[int, tuple[int, Box]] = {}

    def add(self, stamp: int, boxes: Mapping[int, Box | None]) -> None:
        """A tracked frame: object id -> its box there (None when not visible)."""
        if stamp not in self._boxes:
            bisect.insort(self._stamps, stamp)
        self._boxes.setdefault(stamp, {}).update(boxes)
        for object_id, box in boxes.items():
            if box is not None and stamp >= self._last_seen.get(object_id, (stamp, None))[0]:
                self._last_seen[object_id] = (stamp, box)
        while len(self._stamps) > self.capacity:
            del self._boxes[self._stamps.pop(0)]

    def note(self, stamp: int, object_id: int, box: Box | None) -> None:
        """One object's box on one frame (a prompt's result), merged with the frame's."""
        self.add(stamp, {object_id: box})

    def forget(self, object_ids: Iterable[int]) -> None:
        ids = set(object_ids)
        for boxes in self._boxes.values():
            for object_id in ids & boxes.keys():
                del boxes[object_id]
        for object_id in ids:
            self._last_seen.pop(object_id, None)

    def retain(self, object_ids: Iterable[int]) -> None:
        """Forget every object but these (the others were removed or reset)."""
        known = set(self._last_seen).union(*(b.keys() for b in self._boxes.values()))
        self.forget(known - set(object_ids))

    def clear(self) -> None:
        self._stamps.clear()
        self._boxes.clear()
        self._last_seen.clear()

    def views(self, stamp: int, object_ids: Iterable[int], labels: Mapping[int, str],
              lost: Iterable[int] = ()) -> list[TrackView]:
        """Every given track as seen on the frame ``stamp``.

        ``box``: its box on the last recorded frame at or before ``stamp`` (None when not
        visible there). A track missing from that record (made, or prompted, after that
        frame was tracked) is placed between the nearest frames that saw it, before and
        after (linearly), or at the nearer one. ``last_box``: where it was last seen at or
        before ``stamp``, else first seen after it, else last seen at all.
        """
        lost = set(lost)
        at = bisect.bisect_right(self._stamps, stamp)
        before, after = self._stamps[:at], self._stamps[at:]
        views = []
        record = self._boxes[before[-1]] if before else {}
        for object_id in sorted(object_ids):
            seen_before = next(((s, self._boxes[s][object_id]) for s in reversed(before)
                                if self._boxes[s].get(object_id) is not None), None)
            seen_after = next(((s, self._boxes[s][object_id]) for s in after
                               if self._boxes[s].get(object_id) is not None), None)
            last = (seen_before or seen_after or self._last_seen.get(object_id) or (0, None))[1]
            if object_id in record:
                on_frame = record[object_id]
            elif seen_before and seen_after:
                on_frame = _between(seen_before, seen_after, stamp)
            else:
                on_frame = last
            views.append(TrackView(object_id, on_frame, last, labels.get(object_id, ""),
                                   object_id in lost))
        return views


def _between(a: tuple[int, Box], b: tuple[int, Box], stamp: int) -> Box:
    """The box at ``stamp`` on the straight way from box ``a`` to box ``b`` (stamped)."""
    (sa, ba), (sb, bb) = a, b
    w = 0.0 if sb == sa else min(1.0, max(0.0, (stamp - sa) / (sb - sa)))
    return tuple(float(x + w * (y - x)) for x, y in zip(ba, bb, strict=True))


@dataclass
class Applied:
    """What applying one detection message did to the tracker."""

    plan: Plan
    created: list[tuple[PromptResult, Detection]] = field(default_factory=list)
    refreshed: list[PromptResult] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    errors: list[TrackerError] = field(default_factory=list)  # e.g. max_objects reached

    def summary(self) -> str:
        return (f"{len(self.plan.matched)} matched, {len(self.created)} new, "
                f"{len(self.refreshed)} re-prompted, {len(self.removed)} removed, "
                f"{self.plan.ignored} ignored")


def _box_of(result: ObjectResult) -> Box | None:
    """An object's mask box as x0, y0, x1, y1; None when it is not visible."""
    return xywh_to_box(result.bbox) if result.visible and result.area > 0 else None


class DetectionPrompter:
    """Detection messages applied to a tracker: the node's ``detections`` topic and bag
    replay share it. Thread-safe: frames are noted from one thread while messages are
    applied from another.

    Call ``on_frame`` after every tracked frame, ``apply`` for each (checked) message,
    ``prompted`` after any other prompt that created an object (a click), ``forget_all``
    after a full reset.
    """

    def __init__(self, min_score: float, refresh_iou: float, forget_after_s: float,
                 history_frames: int) -> None:
        self._matcher = DetectionMatcher(min_score, refresh_iou, forget_after_s)
        self._history = BoxHistory(history_frames)
        self._lock = threading.Lock()
        self._lost: set[int] = set()
        self._last_frame: int | None = None
        self.image_hw: tuple[int, int] | None = None

    def forget_all(self) -> None:
        with self._lock:
            self._history.clear()
            self._matcher.reset()
            self._lost.clear()
            self._last_frame = None

    def on_frame(self, stamp: int, image_hw: tuple[int, int],
                 results: Sequence[ObjectResult], lost: Iterable[int]) -> None:
        """A tracked frame's results and the ids whose track is LOST."""
        boxes = {r.object_id: _box_of(r) for r in results}
        with self._lock:
            if self._last_frame is not None and stamp < self._last_frame:
                self._history.clear()  # time went backwards: the tracker was reset
            self._last_frame = stamp
            self.image_hw = image_hw
            self._history.add(stamp, boxes)
            self._lost = set(lost)

    def prompted(self, tracker: StreamingTracker, result: PromptResult) -> None:
        """A prompted object's box on the prompted frame and on the newest one (it was
        re-tracked up to there), for the detections that come next."""
        newest = tracker.latest_stamp
        now = next((r for r in tracker.latest_results() if r.object_id == result.object_id),
                   None)
        with self._lock:
            self._history.note(result.stamp, result.object_id, _box_of(result.result))
            if now is not None and newest is not None and newest != result.stamp:
                self._history.note(newest, result.object_id, _box_of(now))
            self._matcher.created(result.object_id, result.stamp)

    def apply(self, tracker: StreamingTracker, stamp: int, detections: Sequence[Detection],
              frame: np.ndarray | None = None) -> Applied:
        """Match a frame's detections to the tracks and prompt, re-prompt and remove.

        A re-prompt starts the object afresh from the detection's box: the drifted (or
        lost) track's memory would pull the mask back where it went wrong.

        Args:
            tracker: the session the detections are for.
            stamp: the detections' frame: a kept frame, or ``frame``'s.
            detections: boxes in that frame's pixels, with class and score.
            frame: (H, W, 3) uint8 RGB of ``stamp`` when the tracker did not track it.
        Returns:
            Applied: the match plan, the objects created, re-prompted and removed, and the
            tracker's refusals (max_objects reached, a frame no longer kept), never raised.
        """
        ids = tracker.object_ids
        with self._lock:
            # The tracker's ids, not a frame's results, say who exists: a frame tracked just
            # before an object was made does not know it yet.
            self._history.retain(ids)
            views = self._history.views(stamp, ids, tracker.labels(), self._lost)
            plan = self._matcher.plan(stamp, detections, views)
        out = Applied(plan)
        for det in plan.create:
            try:
                result = tracker.add_prompt(box=det.box, stamp=stamp, label=det.label,
                                            frame=frame)
            except TrackerError as exc:
                out.errors.append(exc)
                continue
            self.prompted(tracker, result)
            out.created.append((result, det))
        for object_id, det in plan.refresh:
            try:
                tracker.reset([object_id])
                result = tracker.add_prompt(object_id=object_id, box=det.box, stamp=stamp,
                                            frame=frame)
            except UnknownObjectError:  # removed meanwhile
                continue
            except TrackerError as exc:  # e.g. its frame fell out of the ring meanwhile
                out.errors.append(exc)
                continue
            self.prompted(tracker, result)
            out.refreshed.append(result)
        if plan.forget:
            with contextlib.suppress(UnknownObjectError):  # removed meanwhile
                tracker.remove(plan.forget, wait=False)
            with self._lock:
                self._history.forget(plan.forget)
                self._matcher.forget(plan.forget)
            out.removed = list(plan.forget)
        return out


__all__ = [
    "DISPLACED_IOU",
    "MATCH_IOU",
    "REACQUIRE_DISTANCE",
    "Applied",
    "BoxHistory",
    "Detection",
    "DetectionError",
    "DetectionMatcher",
    "DetectionPrompter",
    "Plan",
    "TrackView",
    "box_iou",
    "check_detections",
    "match",
    "xywh_to_box",
]
