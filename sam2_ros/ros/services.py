"""AddPrompt / RemoveObjects / ResetTracks handlers: requests in, tracker calls, responses out.

A handler never raises: every input error (the core's TrackerError family, an undecodable
mask, any ValueError) becomes ``success=false`` with the error's message, and an
unexpected exception is logged with its traceback and reported the same way, so a client
always gets an answer and the node keeps running.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from rclpy.time import Time
from sensor_msgs.msg import RegionOfInterest

from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import TrackerError
from sam2_ros.imaging.codec import ImageDecodeError, mask_msg_to_array

EXPECTED_ERRORS = (TrackerError, ImageDecodeError, ValueError)


def time_to_ns(stamp) -> int:
    """Nanoseconds of a builtin_interfaces/Time (rclpy's own conversion)."""
    return Time.from_msg(stamp).nanoseconds


def ns_to_time(stamp_ns: int):
    """builtin_interfaces/Time of integer nanoseconds (rclpy's own conversion)."""
    return Time(nanoseconds=stamp_ns).to_msg()


def _roi(bbox) -> RegionOfInterest:
    x, y, w, h = (int(v) for v in bbox)
    return RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h, do_rectify=False)


class TrackerServices:
    """The node's three service handlers, bound to one tracker."""

    def __init__(
        self,
        tracker: StreamingTracker,
        logger,
        on_reset_all: Callable[[], None] | None = None,
    ) -> None:
        self.tracker = tracker
        self.logger = logger
        self.on_reset_all = on_reset_all

    def _failed(self, service: str, exc: Exception, response):
        response.success = False
        if isinstance(exc, EXPECTED_ERRORS):
            response.message = str(exc)
            self.logger.info(f"{service} refused: {exc}")
        else:
            response.message = f"internal error ({type(exc).__name__}): {exc}"
            self.logger.error(f"{service} failed unexpectedly: {exc!r}")
            self.logger.error(traceback.format_exc())
        return response

    # ------------------------------------------------------------------ AddPrompt
    def add_prompt(self, request, response):
        try:
            return self._add_prompt(request, response)
        except Exception as exc:
            return self._failed("add_prompt", exc, response)

    def _add_prompt(self, request, response):
        stamp = time_to_ns(request.stamp) or None
        points = [(float(p.x), float(p.y)) for p in request.points] or None
        labels = [int(v) for v in request.point_labels] or None
        box = [float(v) for v in request.box] if request.use_box else None
        mask = mask_msg_to_array(request.mask)
        if request.object_id < 0:
            raise ValueError(
                f"object_id must be 0 (new object) or a tracked id, got {request.object_id}"
            )
        result = self.tracker.add_prompt(
            object_id=request.object_id or None,
            points=points,
            labels=labels,
            box=box,
            mask=mask,
            stamp=stamp,
            clear_previous=bool(request.clear_previous),
            label=request.label,
        )
        kind = "new object" if request.object_id == 0 else "object"
        response.success = True
        response.object_id = int(result.object_id)
        response.frame_stamp = ns_to_time(result.stamp)
        response.score = float(result.score)
        response.bbox = _roi(result.bbox)
        response.message = (
            f"{kind} {result.object_id} prompted on frame {result.stamp} "
            f"(score {result.score:.3f}, area {result.result.area} px, "
            f"re-tracked {result.retracked_frames} later frames)"
        )
        return response

    # ------------------------------------------------------------------ RemoveObjects
    def remove_objects(self, request, response):
        try:
            ids = [int(i) for i in request.object_ids]
            if not ids:
                response.success = True
                response.message = "no ids given: nothing removed"
            else:
                remaining = self.tracker.remove(ids)
                response.success = True
                response.message = f"removed {ids}"
                response.remaining_ids = remaining
                return response
        except Exception as exc:
            self._failed("remove_objects", exc, response)
        response.remaining_ids = self.tracker.object_ids
        return response

    # ------------------------------------------------------------------ ResetTracks
    def reset(self, request, response):
        try:
            ids = [int(i) for i in request.object_ids]
            self.tracker.reset(ids or None)
            if ids:
                response.message = f"cleared the memory and prompts of objects {ids}"
            else:
                response.message = "reset everything: all objects, memory and kept frames"
                if self.on_reset_all is not None:
                    self.on_reset_all()
            response.success = True
            return response
        except Exception as exc:
            return self._failed("reset", exc, response)
