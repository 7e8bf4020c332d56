"""AddPrompt / RemoveObjects / ResetTracks handlers: requests in, tracker calls, responses out.

A handler never raises: every input error (the engine's TrackerError family, an undecodable
mask, any ValueError) becomes ``success=false`` with the error's message, and an
unexpected exception is logged with its traceback and reported the same way, so a client
always gets an answer and the node keeps running.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass

from rclpy.exceptions import InvalidHandle
from rclpy.executors import MultiThreadedExecutor, await_or_execute
from rclpy.time import Time
from sensor_msgs.msg import RegionOfInterest

from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import StampError, TrackerError
from sam2_ros.imaging.codec import ImageDecodeError, mask_msg_to_array
from sam2_ros.messages import stamp_to_ns
from sam2_ros.ros.received_frames import ReceivedFrames


class InactiveError(TrackerError):
    """A request reached a node that is not active (lifecycle)."""


EXPECTED_ERRORS = (TrackerError, ImageDecodeError, ValueError)


class ArrivalOrder:
    """Services whose requests are served in the order their clients sent them.

    Why: rclpy's executor serves the services that are ready at one wake-up in the order
    they were created, so a remove and a reset sent together could be answered, and
    applied, in the other order. The services must share one mutually exclusive callback
    group; run by ``OrderedExecutor``, each turn takes every request waiting on any of them
    and serves them by the time their clients sent them (the request's source timestamp).
    """

    def __init__(self, services: list) -> None:
        self.services = list(services)
        for service in self.services:
            service.arrival_order = self

    def take_all(self) -> list[tuple[object, object, object]]:
        """(service, request, header) of every waiting request, earliest sent first."""
        taken = []
        for rank, service in enumerate(self.services):
            while True:
                with service.handle:
                    request, header = service.handle.service_take_request(
                        service.srv_type.Request
                    )
                if header is None:
                    break
                taken.append((header.source_timestamp, rank, len(taken), service, request, header))
        taken.sort(key=lambda item: item[:3])
        return [item[3:] for item in taken]


class OrderedExecutor(MultiThreadedExecutor):
    """rclpy's multi-threaded executor, serving ``ArrivalOrder`` services in sent order
    (other entities as usual)."""

    def _take_service(self, srv):
        order = getattr(srv, "arrival_order", None)
        if order is None:
            return super()._take_service(srv)
        try:
            taken = order.take_all()
        except InvalidHandle:  # destroyed meanwhile
            return None

        async def _execute() -> None:
            for service, request, header in taken:
                response = await await_or_execute(
                    service.callback, request, service.srv_type.Response()
                )
                service.send_response(response, header)

        return _execute


def ns_to_time(stamp_ns: int):
    """builtin_interfaces/Time of integer nanoseconds (rclpy's own conversion)."""
    return Time(nanoseconds=stamp_ns).to_msg()


def _roi(bbox) -> RegionOfInterest:
    x, y, w, h = (int(v) for v in bbox)
    return RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h, do_rectify=False)


@dataclass
class TrackerServices:
    """The node's three service handlers, bound to the node's tracker shell.

    ``current_tracker()`` gives the tracker or None (a lifecycle node before configure, or
    inactive); ``inactive_reason()`` says why none. ``received`` and ``decode`` let a
    prompt name a camera frame the node received but did not track.
    """

    current_tracker: Callable[[], StreamingTracker | None]
    logger: object
    received: ReceivedFrames
    decode: Callable[[object], object]
    prompt_wait_s: float
    on_reset_all: Callable[[], None] | None = None
    inactive_reason: Callable[[], str] = lambda: "the node is not active"

    @property
    def tracker(self) -> StreamingTracker:
        tracker = self.current_tracker()
        if tracker is None:
            raise InactiveError(self.inactive_reason())
        return tracker

    def untracked_frame(self, tracker: StreamingTracker, stamp: int):
        """What a prompt on ``stamp`` from another source (a detection, a click) needs, as
        AddPrompt gets it: the image of a received frame the tracker did not track, or None."""
        return self._untracked_frame(tracker, stamp)

    def _untracked_frame(self, tracker: StreamingTracker, stamp: int):
        """The image of a received camera frame the tracker did not track, or None.

        A frame received but not processed yet is waited for (at most prompt_wait_s):
        it may still be tracked, or be dropped for a newer one (newest frame wins).
        """
        if stamp in tracker.ring_stamps():
            return None
        # The request may overtake the image (services and images travel separately).
        msg = self.received.wait_received(stamp, self.prompt_wait_s)
        if msg is None:
            return None
        if not self.received.wait_tracked(stamp, self.prompt_wait_s):
            raise StampError(
                f"frame {stamp} was received but not processed within "
                f"{self.prompt_wait_s:.1f} s (prompt_wait): the model is behind"
            )
        if stamp in tracker.ring_stamps():
            return None
        return self.decode(msg)

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
        tracker = self.tracker
        stamp = stamp_to_ns(request.stamp) or None
        frame = self._untracked_frame(tracker, stamp) if stamp else None
        points = [(float(p.x), float(p.y)) for p in request.points] or None
        labels = [int(v) for v in request.point_labels] or None
        box = [float(v) for v in request.box] if request.use_box else None
        mask = mask_msg_to_array(request.mask)
        if request.object_id < 0:
            raise ValueError(
                f"object_id must be 0 (new object) or a tracked id, got {request.object_id}"
            )
        result = tracker.add_prompt(
            object_id=request.object_id or None,
            points=points,
            labels=labels,
            box=box,
            mask=mask,
            stamp=stamp,
            clear_previous=bool(request.clear_previous),
            label=request.label,
            frame=frame,
        )
        kind = "new object" if request.object_id == 0 else "object"
        response.success = True
        response.object_id = int(result.object_id)
        response.frame_stamp = ns_to_time(result.stamp)
        response.score = float(result.score)
        response.bbox = _roi(result.bbox)
        response.message = (
            f"{kind} {result.object_id} prompted on frame {result.stamp}"
            f"{' (a frame the tracker had dropped)' if frame is not None else ''} "
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
                remaining = self.tracker.remove(ids, wait=False)
                response.success = True
                response.message = f"removed {ids}"
                response.remaining_ids = remaining
                return response
        except Exception as exc:
            self._failed("remove_objects", exc, response)
        tracker = self.current_tracker()
        response.remaining_ids = tracker.object_ids if tracker is not None else []
        return response

    # ------------------------------------------------------------------ ResetTracks
    def reset(self, request, response):
        try:
            ids = [int(i) for i in request.object_ids]
            applied = self.tracker.reset(ids or None, wait=False)
            if ids:
                response.message = f"cleared the memory and prompts of objects {ids}"
            else:
                response.message = "reset everything: all objects, memory and kept frames"
                if self.on_reset_all is not None:
                    self.on_reset_all()
            if not applied:
                response.message += " (applied when the frame in progress ends)"
            response.success = True
            return response
        except Exception as exc:
            return self._failed("reset", exc, response)
