"""One camera served by the tracker node: its part of the node, of which the shell holds N.

A camera has its own tracking session (a ``StreamingTracker`` over the node's one loaded
model: object ids, prompts, resets, stamps, track states), its subscriptions (``image``,
``camera_info``, ``depth``, ``detections``, ``click``), outputs and services, all under
its prefix (``front/image``, ``~/front/masks``, ``~/front/add_prompt``; no prefix for a
node without ``cameras``), its received frames, depth pairing, statistics and warnings.
The shell's worker hands it frames: ``prepare`` (decode, unless the camera's thread did
for ``preprocessing: device``; judge the stamp) before the cameras' frames are tracked
together, ``finish`` (publish, count) after.
"""

from __future__ import annotations

import threading
import time
import traceback

from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from sam2_ros import names
from sam2_ros.engine.stamp_policy import Verdict
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import FrameError, StampError, UnknownObjectError
from sam2_ros.imaging.codec import ImageDecodeError, StreamBitDepth, camera_msg_to_rgb
from sam2_ros.messages import build_header, frame_messages, stamp_to_ns
from sam2_ros.names import private
from sam2_ros.ros.depth_pairing import DepthPairing
from sam2_ros.ros.outputs import (
    NodeStats,
    WarnThrottle,
    build_diagnostics,
    build_markers,
    failure_kind,
)
from sam2_ros.ros.received_frames import ReceivedFrames
from sam2_ros.ros.services import ArrivalOrder, TrackerServices
from sam2_ros.ros.vision.prompt_topics import PromptTopics
from sam2_ros.ros.vision.vision_outputs import VisionOutputs
from sam2_ros.track_state import TrackStates


class CameraChannel:
    """A camera's topics, services and tracking session, attached to the shell's node."""

    def __init__(self, shell, camera: str, group_factory) -> None:
        """``shell``: the TrackerShell (node, parameters, run-time settings, message types,
        whether active); ``camera``: the name ("" for the node's only, unprefixed camera)."""
        self.shell = shell
        self.camera = camera
        self.prefix = names.camera_prefix(camera)
        node, params = shell.node, shell.params
        self.node, self.params = node, params
        self.log = node.get_logger()
        self._throttle = WarnThrottle(self.log)
        self._stats = NodeStats()
        self._tracks = TrackStates(params.occluded_frames)
        self._received = ReceivedFrames(
            capacity=max(30, 10 * params.prompt_history),
            max_bytes=params.received_frames_mb * 10**6,
        )
        self._depth = DepthPairing(params.depth_slop) if params.use_depth else None
        self._prompt_topics = PromptTopics(node, params, self._bad_message, 10, self.prefix)
        self._vision_out = VisionOutputs(node, self._depth, shell.output_qos, self.prefix)
        self._bit_depth = StreamBitDepth(params.input_bit_depth)
        self.tracker: StreamingTracker | None = None
        self._last_substitute = 0  # the last stamp given to a zero-stamped image
        self._last_frame = None  # monotonic time of the newest image received
        self._pubs: dict[str, object] = {}
        self._services: list = []
        self.handlers: TrackerServices | None = None
        # Prompts wait (for a frame, for the model); reset and remove must not wait behind
        # them, so they have a group of their own, served in the order sent.
        self._prompt_group = group_factory()
        self._control_group = group_factory()
        compressed = params.image_transport == "compressed"
        self._image_type = CompressedImage if compressed else Image
        self._image_topic_rel = self.prefix + ("image/compressed" if compressed else "image")
        self.image_topic = node.resolve_topic_name(self._image_topic_rel)
        self._jump_ns = round(params.time_jump_reset * 1e9)
        # Held while a frame's stamp is judged (and the stream restarted) and while a clock
        # jump restarts it: the two see one stream, so one jump back resets once.
        self._restart_lock = threading.Lock()

    def _name(self, name: str) -> str:
        return private(self.prefix + name)

    # ------------------------------------------------------------------ life cycle
    def open(self) -> None:
        """Publishers and services."""
        from sam2_ros.msg import TrackedObjectArray
        from sam2_ros.srv import AddPrompt, RemoveObjects, ResetTracks

        node, qos = self.node, self.shell.output_qos
        self._pubs["masks"] = node.create_publisher(Image, self._name(names.MASKS), qos)
        self._pubs["objects"] = node.create_publisher(
            TrackedObjectArray, self._name(names.OBJECTS), qos)
        self._pubs["overlay"] = node.create_publisher(Image, self._name(names.OVERLAY), qos)
        if self._depth is not None:
            try:
                from visualization_msgs.msg import MarkerArray
            except ImportError as exc:
                self.log.warning(f"visualization_msgs missing ({exc}): no ~/markers")
            else:
                self._pubs["markers"] = node.create_publisher(
                    MarkerArray, self._name(names.MARKERS), 5)
        self._vision_out.open()
        self.handlers = TrackerServices(
            lambda: self.tracker if self.shell.active else None,
            self.log,
            self._received,
            self.decode,
            self.params.prompt_wait,
            on_reset_all=self.stream_restarted,
            inactive_reason=self.shell.inactive_reason,
        )
        prompts = {"qos_profile": self.shell.service_qos, "callback_group": self._prompt_group}
        control = {"qos_profile": self.shell.service_qos, "callback_group": self._control_group}
        handlers = self.handlers
        self._services = [
            node.create_service(AddPrompt, self._name(names.ADD_PROMPT), handlers.add_prompt,
                                **prompts),
            node.create_service(ResetTracks, self._name(names.RESET), handlers.reset, **control),
            node.create_service(RemoveObjects, self._name(names.REMOVE_OBJECTS),
                                handlers.remove_objects, **control),
        ]
        # One group, served in the order the clients sent (with the node's OrderedExecutor).
        ArrivalOrder(self._services[1:])

    def start(self, camera_input, put, qos) -> str:
        """Subscribe this camera's image (and depth) on ``camera_input``, frames to ``put``;
        returns the ready line's part for this camera."""
        self._put = put
        camera_input.subscribe(self._image_type, self._image_topic_rel, self._on_image, qos)
        if self._depth is not None:
            depth = camera_input.subscribe(Image, self.prefix + "depth", self._depth.add_depth,
                                           qos)
            info = camera_input.subscribe(CameraInfo, self.prefix + "camera_info",
                                          self._depth.add_info, qos)
            self.log.info(
                f"depth on: {depth} and {info} paired by stamp (slop "
                f"{self.params.depth_slop:.3f} s); frames without a pair are still tracked"
            )
        prompt_topics = self._prompt_topics.start(self.handlers)
        return (f"frames from {self.image_topic}; prompts from {', '.join(prompt_topics)}; "
                f"services {self.node.resolve_topic_name(self._name(names.ADD_PROMPT))}, "
                f"~/{self.prefix}{names.REMOVE_OBJECTS}, ~/{self.prefix}{names.RESET}")

    def stop(self) -> None:
        self._put = None
        self._prompt_topics.stop()
        self._received.clear()

    def close(self) -> None:
        """Remove services and publishers (after stop)."""
        for service in self._services:
            self.node.destroy_service(service)
        self._services = []
        for pub in self._pubs.values():
            self.node.destroy_publisher(pub)
        self._pubs = {}
        self._vision_out.close()

    def unload(self) -> None:
        self.tracker = None
        self._tracks = TrackStates(self.params.occluded_frames)
        self.stream_restarted()

    # ------------------------------------------------------------------ input
    def _on_image(self, msg) -> None:
        """Camera thread: note the frame under its stamp and offer it to the worker (never
        waits for a frame in progress)."""
        stamp = self._receive_stamp(msg.header)
        self._received.add(stamp, msg)
        self._last_frame = time.monotonic()
        put = getattr(self, "_put", None)
        if put is not None:
            put(self.camera, (msg, stamp, time.monotonic(), self._upload_ahead(msg)))

    def _upload_ahead(self, msg):
        """Camera thread, ``preprocessing: device`` only: the frame decoded and its upload
        started now, overlapping the frame in progress (``FrameUpload.prefetch``); None
        otherwise, or when it does not decode (the worker decodes it and says why)."""
        tracker = self.tracker
        if tracker is None or not tracker.prefetches:
            return None
        try:
            return tracker.prefetch(self.decode(msg))
        except (ImageDecodeError, FrameError):
            return None

    def _receive_stamp(self, header) -> int:
        """The header's stamp; for a zero stamp, the receive time (strictly increasing, so
        a paused simulation clock, or none yet under use_sim_time, still orders frames)."""
        stamp = stamp_to_ns(header.stamp)
        if stamp != 0:
            return stamp
        now = self.node.get_clock().now().nanoseconds
        stamp = self._last_substitute = max(now, self._last_substitute + 1)
        if now == 0:
            self._throttle.warn(
                "zero stamps, no clock",
                f"{self._images()} have zero stamps and the ROS clock reads 0 (use_sim_time "
                "and no /clock received yet?): stamping them 1, 2, 3 ... ns until the clock "
                "runs",
            )
        else:
            self._throttle.warn(
                "zero stamps", f"{self._images()} have zero stamps: using their receive time "
                "as stamp"
            )
        return stamp

    def _images(self) -> str:
        return f"images of camera {self.camera}" if self.camera else "images"

    def decode(self, msg):
        return camera_msg_to_rgb(msg, self._bit_depth)

    def stream_restarted(self) -> None:
        """All objects are forgotten (reset of all objects, time jump, unload): the
        automatic 16-bit depth is judged again, the topic prompts forget their tracks."""
        self._bit_depth.reset()
        self._prompt_topics.forget_all()

    def on_clock_jump(self, delta_ns: int) -> None:
        """The ROS clock went back at least time_jump_reset: restart this camera's stream
        unless its frames already did. Must not wait."""
        self._last_substitute = 0
        if not self._restart_lock.acquire(blocking=False):
            return  # a frame is being judged: if it is from before the jump, it restarts
        try:
            tracker = self.tracker
            last = tracker.stamps.last if tracker is not None else None
            now = self.node.get_clock().now().nanoseconds
            if last is None or last - now < self._jump_ns:
                return  # the frames already restarted the stream
            self._restart_stream(
                tracker,
                f"the ROS clock jumped back {-delta_ns / 1e9:.3f} s, to {now} (last frame "
                f"{last})",
                wait=False,
            )
        finally:
            self._restart_lock.release()

    def _restart_stream(self, tracker: StreamingTracker, why: str, wait: bool) -> None:
        self._stats.time_reset()
        on = f" on camera {self.camera}" if self.camera else ""
        self.log.warning(
            f"time went backwards{on}: {why} (bag loop, restarted driver or simulation?): "
            "resetting the tracker, all objects are forgotten"
        )
        tracker.reset(wait=wait)
        self.stream_restarted()
        self._received.clear()

    def _admit(self, tracker: StreamingTracker, stamp: int, msg) -> bool:
        """Whether to track a frame now, by the tracker's stamp policy: a late or repeated
        frame is dropped (counted, one throttled warning); a jump back restarts first."""
        policy = tracker.stamps
        with self._restart_lock:
            verdict = policy.judge(stamp)
            if verdict is Verdict.NEW:
                return True
            if verdict is Verdict.JUMP_BACK:
                self._restart_stream(tracker, policy.explain(stamp, verdict), wait=True)
                self._received.add(stamp, msg)
                return True
        if verdict is Verdict.LATE:
            policy.note_late()
        self._stats.late_frame()
        self._throttle.warn(f"stamp {verdict.value}", policy.explain(stamp, verdict))
        return False

    def worker_error(self, exc: Exception) -> None:
        """A frame of this camera failed in the worker (a bug or a device fault)."""
        if not self.shell.active:
            return
        self._stats.frame_failed()
        # A fault that lasts fails every frame: its traceback once per period, then counted.
        self._throttle.warn(
            f"frame processing: {failure_kind(exc)}",
            f"frame processing failed: {exc!r}\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            level="error",
        )

    def _bad_message(self, what: str, stamp_ns: int, exc: Exception) -> None:
        kind = f"{what}: {failure_kind(exc)}"
        self._stats.bad_message(kind)
        on = f" of camera {self.camera}" if self.camera else ""
        self._throttle.warn(kind, f"bad {what} message{on} (stamp {stamp_ns}) ignored: {exc}")

    # ------------------------------------------------------------------ the worker
    def prepare(self, item):
        """A taken frame decoded and judged: (rgb, stamp), or None when it is not tracked
        (bad image, late stamp: answered as for one camera)."""
        image_msg, stamp, _received, rgb = item
        tracker = self.tracker
        if tracker is None or not self.shell.active:
            return None
        try:
            rgb = rgb if rgb is not None else self.decode(image_msg)
        except (ImageDecodeError, FrameError) as exc:
            self._bad_message("image", stamp, exc)
            return None
        if not self._admit(tracker, stamp, image_msg):
            return None
        return rgb, stamp

    def finish(self, item, rgb, result) -> None:
        """A tracked frame's result (or the StampError/FrameError that refused it, a newer
        frame or a reset having raced with it): publish and count."""
        image_msg, stamp, received, _ = item
        if isinstance(result, (StampError, FrameError)):
            self._bad_message("image", stamp, result)
            return
        tracker = self.tracker
        if tracker is None:
            return
        ring = tracker.ring_stamps()
        if ring:
            self._received.forget_before(ring[0])
        self._received.tracked(ring[-1] if ring else None)
        self._publish(image_msg.header, stamp, rgb, result)
        age = None
        if stamp == stamp_to_ns(image_msg.header.stamp):
            age = (self.node.get_clock().now().nanoseconds - stamp) / 1e9
        self._stats.frame_done(received, time.monotonic(), result.timing.as_dict(), age)

    def _publish(self, src_header, stamp, rgb, result) -> None:
        types, settings = self.shell.types, self.shell.settings
        frame_id = self.params.frame_id_override or src_header.frame_id
        objects = result.objects
        positions = {}
        if self._depth is not None:
            try:
                positions = self._depth.positions(src_header, objects, settings.depth_scale)
            except ValueError as exc:  # the depth state says why, for /diagnostics
                self._bad_message("depth", stamp, exc)
        pubs = self._pubs
        if "masks" not in pubs:  # closed meanwhile
            return
        overlay = pubs["overlay"]
        wanted = settings.publish_overlay and overlay.get_subscription_count() > 0
        out = frame_messages(
            types, stamp, frame_id, rgb, objects, self._tracks, result.generation,
            positions=positions,
            threshold=settings.mask_threshold,
            overlay_alpha=settings.overlay_alpha if wanted else None,
        )  # fmt: skip
        self._prompt_topics.on_frame(stamp, result.image_hw, objects, out.states)
        pubs["masks"].publish(out.labels)
        pubs["objects"].publish(out.objects)
        if out.overlay is not None:
            overlay.publish(out.overlay)
        if "markers" in pubs:
            header = build_header(types, stamp, frame_id)
            pubs["markers"].publish(build_markers(header, objects, positions))
        self._vision_out.publish(src_header, build_header(types, stamp, frame_id), objects,
                                 positions)
        self._remove_lost(out.states)

    def _remove_lost(self, states: dict[int, tuple[int, float]]) -> None:
        """Remove objects lost for longer than remove_lost_after (one at a time: a service
        may have removed or reset some since this frame was tracked)."""
        tracker = self.tracker
        if self.params.remove_lost_after <= 0 or tracker is None:
            return
        removed = []
        for object_id in self._tracks.lost_for(self.params.remove_lost_after, states):
            try:
                tracker.remove([object_id], wait=False)
            except UnknownObjectError:
                continue  # removed meanwhile
            removed.append(object_id)
        if removed:
            self.log.info(
                f"removed objects {removed}: lost for more than "
                f"{self.params.remove_lost_after:.1f} s (remove_lost_after)"
            )

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self, header, status_name: str, counts: tuple[int, int, int]):
        """This camera's DiagnosticArray (one status): rate, drops, latency, depth, and
        whether its frames stopped (silent) while the node is active."""
        received, processed, dropped = counts
        stats = self._stats.snapshot(received, dropped)
        warnings, errors = [], []
        tracker = self.tracker
        if not self.shell.active:
            warnings.append(self.shell.inactive_reason())
        elif stats["input_rate_hz"] == 0:
            warnings.append(self.silence())
        if tracker is not None and tracker.loaded.random_weights:
            warnings.append("RANDOM weights (no checkpoint)")
        if self._depth is not None and self._depth.state != "ok" and self.shell.active:
            warnings.append(f"depth: {self._depth.state}")
        recent_warnings, recent_errors = self._stats.problems()
        extra = {
            "frames_received": received,
            "frames_processed": processed,
            "frames_dropped": dropped,
            "objects": len(tracker.object_ids) if tracker is not None else 0,
            "model": self.params.model,
            "device": str(tracker.loaded.device) if tracker is not None else "none",
            "image_size": tracker.loaded.image_size if tracker is not None else 0,
            "depth": "off" if self._depth is None else self._depth.state,
            "state": "active" if self.shell.active else "inactive",
            "frames_uploaded_ahead": tracker.uploaded_ahead if tracker is not None else 0,
        }
        if self.camera:
            extra["camera"] = self.camera
            extra["image_topic"] = self.image_topic
        return build_diagnostics(header, status_name, f"sam2_ros {extra['device']}", stats,
                                 extra, warnings + recent_warnings, errors + recent_errors)

    def silence(self) -> str:
        """Why no frames arrive: never any, or silent since they stopped."""
        if self._last_frame is None:
            return f"no images on {self.image_topic}"
        ago = time.monotonic() - self._last_frame
        return f"silent: no images on {self.image_topic} for {ago:.1f} s"
