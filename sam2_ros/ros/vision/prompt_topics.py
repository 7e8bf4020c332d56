"""Prompts from topics: a detector's ``detections`` and an image viewer's ``click``.

``detections`` (vision_msgs/Detection2DArray, with ``use_detections``): each message is
matched to the tracks on the frame its header stamp names (``engine.detections``: optimal
one-to-one by box IoU) and turned into new objects, box re-prompts and removals. A stamp
of a frame the node received but did not track goes through the same prompt history as
AddPrompt's (``TrackerServices.untracked_frame``); zero means the newest frame.

``click`` (geometry_msgs/PointStamped in image pixels, as rqt_image_view publishes on
``<image>_mouse_left``): a positive click that creates an object on the frame its stamp
names (zero = the newest).

A message that cannot be used (a NaN box, a box outside the image, an unknown stamp) gets
one throttled warning and changes nothing. An empty message is a frame where the detector
saw nothing: no warning, and the tracks count it towards ``detection_forget_after``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence

from geometry_msgs.msg import PointStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from sam2_ros import names
from sam2_ros.engine.detections import DetectionPrompter, check_detections
from sam2_ros.engine.results import ObjectResult
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import StampError
from sam2_ros.messages import stamp_to_ns
from sam2_ros.ros.services import EXPECTED_ERRORS, TrackerServices
from sam2_ros.track_state import LOST
from sam2_ros.vision_messages import detections_of


class UnknownStampError(StampError):
    """A topic prompt names a frame the node neither keeps nor received."""

    kind = "unknown stamp"


class PromptTopics:
    """The ``detections`` and ``click`` subscriptions of one node and what they do."""

    def __init__(self, node: Node, params, bad_message: Callable[[str, int, Exception], None],
                 qos, prefix: str = "") -> None:
        """``prefix``: a camera's (``front/``), before each topic name; empty for one camera."""
        self._node = node
        self._prefix = prefix
        self._log = node.get_logger()
        self._use_detections = bool(params.use_detections)
        self._bad_message = bad_message
        self._qos = qos
        self._prompter = DetectionPrompter(
            params.detection_min_score, params.detection_refresh_iou,
            params.detection_forget_after, max(30, 4 * params.prompt_history),
        )
        self._group = MutuallyExclusiveCallbackGroup()
        self._subs: list = []
        self._services: TrackerServices | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self, services: TrackerServices) -> list[str]:
        """Subscribe; returns the resolved topic names for the node's ready line."""
        self._services = services
        # A group per start: rclpy's groups keep a (dead) reference to every entity ever
        # added, so one group for all activations would grow with each.
        self._group = MutuallyExclusiveCallbackGroup()
        node, kw = self._node, {"callback_group": self._group}
        self._subs.append(node.create_subscription(
            PointStamped, self._prefix + names.CLICK, self._on_click, self._qos, **kw))
        topics = [node.resolve_topic_name(self._prefix + names.CLICK)]
        if self._use_detections:
            try:
                from vision_msgs.msg import Detection2DArray
            except ImportError as exc:
                self._log.info(f"vision_msgs is not installed ({exc}): use_detections has no "
                               f"effect, no '{names.DETECTIONS_IN}' subscription")
            else:
                self._subs.append(node.create_subscription(
                    Detection2DArray, self._prefix + names.DETECTIONS_IN, self._on_detections,
                    self._qos, **kw))
                topics.append(node.resolve_topic_name(self._prefix + names.DETECTIONS_IN))
        return topics

    def stop(self) -> None:
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs = []
        self.forget_all()

    def forget_all(self) -> None:
        """After a full reset or unload: no track, box or match is remembered."""
        self._prompter.forget_all()

    def on_frame(self, stamp: int, image_hw: tuple[int, int],
                 objects: Sequence[ObjectResult], states: Mapping[int, tuple[int, float]]) -> None:
        """A tracked frame's results (worker thread): boxes for late detections, lost ids."""
        lost = [i for i, (state, _) in states.items() if state == LOST]
        self._prompter.on_frame(stamp, image_hw, objects, lost)

    # ------------------------------------------------------------------ shared
    def _frame(self, stamp: int) -> tuple[StreamingTracker, int | None, object]:
        """The tracker, the stamp (None = newest) and, for a received frame the tracker did
        not track, its image. Raises StampError for a stamp of no kept or received frame."""
        services = self._services
        if services is None:
            raise StampError("not started")
        tracker = services.tracker
        if not stamp:
            return tracker, None, None
        frame = services.untracked_frame(tracker, stamp)
        if frame is None and stamp not in tracker.ring_stamps():
            raise UnknownStampError(
                f"unknown stamp {stamp}: no kept or received camera frame has it (too old "
                "for prompt_history, or never received)"
            )
        return tracker, stamp, frame

    def _failed(self, what: str, stamp: int, exc: Exception) -> None:
        if isinstance(exc, EXPECTED_ERRORS):
            self._bad_message(what, stamp, exc)
        else:
            self._log.error(f"{what} message failed unexpectedly: {exc!r}\n"
                            + traceback.format_exc())

    # ------------------------------------------------------------------ click
    def _on_click(self, msg) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        try:
            tracker, at, frame = self._frame(stamp)
            x, y = float(msg.point.x), float(msg.point.y)
            result = tracker.add_prompt(points=[(x, y)], labels=[1], stamp=at, frame=frame)
        except Exception as exc:
            self._failed("click", stamp, exc)
            return
        self._prompter.prompted(tracker, result)
        self._log.info(f"click ({x:.1f}, {y:.1f}) on frame {result.stamp}: new object "
                       f"{result.object_id} (score {result.score:.3f})")

    # ------------------------------------------------------------------ detections
    def _on_detections(self, msg) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        try:
            detections = detections_of(msg)
            if self._prompter.image_hw is None:
                raise StampError("no frame has been tracked yet")
            check_detections(detections, self._prompter.image_hw)
            tracker, at, frame = self._frame(stamp)
            at = at or tracker.latest_stamp
            applied = self._prompter.apply(tracker, at, detections, frame)
        except Exception as exc:
            self._failed("detections", stamp, exc)
            return
        for error in applied.errors:  # e.g. max_objects reached
            self._bad_message("detections", stamp, error)
        for result, det in applied.created:
            self._log.info(f"new object {result.object_id} '{det.label}' from a detection on "
                           f"frame {result.stamp} (detector score {det.score:.2f})")
        for result in applied.refreshed:
            self._log.info(f"object {result.object_id} re-prompted with its detection's box "
                           f"on frame {result.stamp}")
        if applied.removed:
            self._log.info(f"removed objects {applied.removed}: no matching detection for "
                           "detection_forget_after")
        self._log.debug(f"detections on frame {at}: {applied.summary()}")
