"""What the plain and the managed (lifecycle) tracker nodes share: model, topics, services.

Threads: the camera and depth subscriptions live on a companion node with an executor of
its own (``camera_input``); their callbacks here only note an image and put it into a
newest-frame-wins slot, or hand depth to ``depth_pairing``. The node's executor runs the
services and the diagnostics timer in their own callback groups. One worker thread takes
frames from the slot, runs the tracker and publishes what ``messages.frame_messages``
builds (replay records the same). Prompts are served while a frame is being encoded (the
tracker is thread-safe). Reset and remove have a callback group of their own and never wait
for a prompt or a frame in progress (the tracker queues them until that frame ends).

Time: one ``StampPolicy``, the tracker's, judges every frame's stamp: a frame a little
before the previous one (reordered, a second publisher) is dropped; one at least
``time_jump_reset`` back, or the ROS clock jumping back as far (bag loop, simulation reset),
starts the stream over. Zero stamps are replaced when the image is received.

Life cycle (the lifecycle node maps its transitions onto it; the plain node runs all at
start): ``load`` builds the model, ``open`` creates publishers and services, ``start``
subscribes and processes, ``stop`` unsubscribes and lets the frame in progress finish
(bounded by ``shutdown_timeout``), ``close`` removes publishers and services, ``unload``
releases the model.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import traceback

import torch
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, RegionOfInterest

from sam2_ros import names
from sam2_ros.engine.stamp_policy import Verdict
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import FrameError, StampError, UnknownObjectError
from sam2_ros.imaging.codec import (
    ImageDecodeError,
    StreamBitDepth,
    camera_msg_to_rgb,
)
from sam2_ros.messages import MessageTypes, build_header, frame_messages, stamp_to_ns
from sam2_ros.names import private
from sam2_ros.ros.camera_input import CameraInput
from sam2_ros.ros.depth_pairing import DepthPairing
from sam2_ros.ros.frame_slot import FrameSlot
from sam2_ros.ros.outputs import (
    NodeStats,
    WarnThrottle,
    build_diagnostics,
    build_markers,
    failure_kind,
)
from sam2_ros.ros.parameters import NodeParameters, RuntimeSettings
from sam2_ros.ros.received_frames import ReceivedFrames
from sam2_ros.ros.services import ArrivalOrder, TrackerServices
from sam2_ros.ros.vision.prompt_topics import PromptTopics
from sam2_ros.ros.vision.vision_outputs import VisionOutputs
from sam2_ros.settings import TrackerSettings
from sam2_ros.track_state import TrackStates

SERVICE_QOS = QoSProfile(
    depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
OUTPUT_QOS = QoSProfile(
    depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)


def message_types() -> MessageTypes:
    from builtin_interfaces.msg import Time as TimeMsg
    from geometry_msgs.msg import Point
    from std_msgs.msg import Header

    from sam2_ros.msg import TrackedObject, TrackedObjectArray

    return MessageTypes(
        TimeMsg, Header, RegionOfInterest, Image, Point, TrackedObject, TrackedObjectArray
    )


class RosLogHandler(logging.Handler):
    """Forward the engine's Python logging (e.g. the random-weights warning) to the ROS log."""

    def __init__(self, logger) -> None:
        super().__init__()
        self._logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        # One call per line: rclpy refuses a call site whose severity changes between calls.
        text = self.format(record)
        if record.levelno >= logging.ERROR:
            self._logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._logger.warning(text)
        elif record.levelno >= logging.INFO:
            self._logger.info(text)
        else:
            self._logger.debug(text)


class TrackerShell:
    """The ROS side of one tracker, attached to a node (plain or lifecycle)."""

    def __init__(self, node: Node, params: NodeParameters) -> None:
        self.node = node
        self.params = params
        self.log = node.get_logger()
        self.settings = RuntimeSettings(params)
        node.add_on_set_parameters_callback(self.settings.on_set_parameters)
        self.settings.add_listener(self._on_setting_changed)
        self._py_log_handler = RosLogHandler(self.log)
        logging.getLogger("sam2_ros").addHandler(self._py_log_handler)
        logging.getLogger("sam2_ros").setLevel(logging.INFO)
        self._types = message_types()
        self._throttle = WarnThrottle(self.log)
        self._stats = NodeStats()
        self._tracks = TrackStates(params.occluded_frames)
        self._received = ReceivedFrames(
            capacity=max(30, 10 * params.prompt_history),
            max_bytes=params.received_frames_mb * 10**6,
        )
        self._depth = DepthPairing(params.depth_slop) if params.use_depth else None
        self._prompt_topics = PromptTopics(node, params, self._bad_message, 10)
        self._vision_out = VisionOutputs(node, self._depth, OUTPUT_QOS)
        self._bit_depth = StreamBitDepth(params.input_bit_depth)
        self.tracker: StreamingTracker | None = None
        self.active = False
        self._last_substitute = 0  # the last stamp given to a zero-stamped image
        self._slot: FrameSlot | None = None
        self._input: CameraInput | None = None
        self._pubs: dict[str, object] = {}
        self._services: list = []
        self._diag_timer = None
        # Prompts wait (for a frame, for the model); reset and remove must not wait behind
        # them, so they have a group of their own, served in the order sent.
        self._prompt_group = MutuallyExclusiveCallbackGroup()
        self._control_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        compressed = params.image_transport == "compressed"
        self._image_type = CompressedImage if compressed else Image
        self._image_topic_rel = "image/compressed" if compressed else "image"
        self.image_topic = node.resolve_topic_name(self._image_topic_rel)
        self._jump_ns = round(params.time_jump_reset * 1e9)
        # Held while a frame's stamp is judged (and the stream restarted) and while a clock
        # jump restarts it: the two see one stream, so one jump back resets once.
        self._restart_lock = threading.Lock()
        # A ROS clock going back (bag played with --loop --clock, a simulation reset).
        self._clock_jump = node.get_clock().create_jump_callback(
            JumpThreshold(
                min_forward=None,
                min_backward=Duration(nanoseconds=-max(1, self._jump_ns)),
                on_clock_change=False,
            ),
            post_callback=self._on_clock_jump,
        )
        self.log.info(
            f"image decoding: sam2_ros.imaging.codec ({params.image_transport}; 16-bit input "
            f"bit depth {params.input_bit_depth or 'auto'})"
        )

    # ------------------------------------------------------------------ life cycle
    def load(self) -> None:
        """Build the model (raises with a clear message for a bad model or checkpoint)."""
        p = self.params
        started = time.monotonic()
        self.tracker = TrackerSettings.from_values(
            p, mask_threshold=self.settings.mask_threshold
        ).build()
        loaded = self.tracker.loaded
        dtype = loaded.autocast_dtype
        self.log.info(
            f"SAM 2 {p.model} on {loaded.device}, "
            f"{'fp32' if dtype is None else str(dtype).replace('torch.', '')}, "
            f"image_size {loaded.image_size}, {torch.get_num_threads()} CPU threads, "
            f"{loaded.weights}; built in {time.monotonic() - started:.1f} s"
        )

    def open(self) -> None:
        """Publishers, services and the diagnostics timer."""
        from sam2_ros.msg import TrackedObjectArray
        from sam2_ros.srv import AddPrompt, RemoveObjects, ResetTracks

        node = self.node
        self._pubs["masks"] = node.create_publisher(Image, private(names.MASKS), OUTPUT_QOS)
        self._pubs["objects"] = node.create_publisher(
            TrackedObjectArray, private(names.OBJECTS), OUTPUT_QOS
        )
        self._pubs["overlay"] = node.create_publisher(Image, private(names.OVERLAY), OUTPUT_QOS)
        if self._depth is not None:
            try:
                from visualization_msgs.msg import MarkerArray
            except ImportError as exc:
                self.log.warning(f"visualization_msgs missing ({exc}): no ~/markers")
            else:
                self._pubs["markers"] = node.create_publisher(
                    MarkerArray, private(names.MARKERS), 5
                )
        try:
            from diagnostic_msgs.msg import DiagnosticArray
        except ImportError as exc:
            self.log.warning(f"diagnostic_msgs is not installed ({exc}): no diagnostics")
        else:
            self._pubs["diagnostics"] = node.create_publisher(
                DiagnosticArray, names.DIAGNOSTICS_TOPIC, 10
            )
            if self.params.diagnostics_period > 0:
                self._diag_timer = node.create_timer(
                    self.params.diagnostics_period, self._publish_diagnostics,
                    callback_group=self._timer_group,
                )
        self._vision_out.open()
        self.handlers = TrackerServices(
            lambda: self.tracker if self.active else None,
            self.log,
            self._received,
            self._decode,
            self.params.prompt_wait,
            on_reset_all=self._stream_restarted,
            inactive_reason=self._inactive_reason,
        )
        prompts = {"qos_profile": SERVICE_QOS, "callback_group": self._prompt_group}
        control = {"qos_profile": SERVICE_QOS, "callback_group": self._control_group}
        self._services = [
            node.create_service(
                AddPrompt, private(names.ADD_PROMPT), self.handlers.add_prompt, **prompts
            ),
            node.create_service(ResetTracks, private(names.RESET), self.handlers.reset, **control),
            node.create_service(
                RemoveObjects,
                private(names.REMOVE_OBJECTS),
                self.handlers.remove_objects,
                **control,
            ),
        ]
        # One group, served in the order the clients sent (with the node's OrderedExecutor).
        ArrivalOrder(self._services[1:])

    def start(self) -> None:
        """Subscribe the camera (and depth) and process frames."""
        node = self.node
        self._slot = FrameSlot(self._process, self._on_worker_error, "sam2-worker")
        qos = self._image_qos()
        self._input = CameraInput(node)
        self._input.subscribe(self._image_type, self._image_topic_rel, self._on_image, qos)
        if self._depth is not None:
            depth = self._input.subscribe(Image, "depth", self._depth.add_depth, qos)
            info = self._input.subscribe(CameraInfo, "camera_info", self._depth.add_info, qos)
            self.log.info(
                f"depth on: {depth} and {info} paired by stamp (slop "
                f"{self.params.depth_slop:.3f} s); frames without a pair are still tracked"
            )
        prompt_topics = self._prompt_topics.start(self.handlers)
        self.active = True
        self.log.info(
            f"ready: tracking frames from {self.image_topic}; prompts from "
            f"{', '.join(prompt_topics)}; services "
            f"{node.resolve_topic_name(private(names.ADD_PROMPT))}, ~/{names.REMOVE_OBJECTS}, "
            f"~/{names.RESET}"
        )

    def stop(self) -> bool:
        """Unsubscribe; the frame in progress finishes within shutdown_timeout. Returns
        whether it did."""
        self.active = False
        if self._input is not None:
            self._input.close()
            self._input = None
        finished = True
        if self._slot is not None:
            finished = self._slot.stop(self.params.shutdown_timeout)
            if not finished:
                self.log.warning(
                    f"the frame in progress did not finish within shutdown_timeout "
                    f"({self.params.shutdown_timeout:.1f} s)"
                )
            self._slot = None
        self._prompt_topics.stop()
        self._received.clear()
        return finished

    def close(self) -> None:
        """Remove services, publishers and the timer (after stop)."""
        node = self.node
        if self._diag_timer is not None:
            node.destroy_timer(self._diag_timer)
            self._diag_timer = None
        for service in self._services:
            node.destroy_service(service)
        self._services = []
        for pub in self._pubs.values():
            node.destroy_publisher(pub)
        self._pubs = {}
        self._vision_out.close()

    def unload(self) -> None:
        """Release the model and its memory."""
        self.tracker = None
        self._tracks = TrackStates(self.params.occluded_frames)
        self._stream_restarted()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def teardown(self) -> None:
        """Everything, in order, for a node being destroyed."""
        self.stop()
        self.close()
        self.unload()
        self._clock_jump.unregister()
        logging.getLogger("sam2_ros").removeHandler(self._py_log_handler)

    def _inactive_reason(self) -> str:
        if self.tracker is None:
            return "the node is not configured (lifecycle: configure and activate it first)"
        return "the node is inactive (lifecycle: activate it first)"

    # ------------------------------------------------------------------ callbacks
    def _image_qos(self) -> QoSProfile:
        reliability = (
            ReliabilityPolicy.RELIABLE
            if self.params.qos_reliability == "reliable"
            else ReliabilityPolicy.BEST_EFFORT
        )
        return QoSProfile(
            depth=self.params.qos_depth, reliability=reliability, history=HistoryPolicy.KEEP_LAST
        )

    def _on_image(self, msg) -> None:
        """Camera thread: note the frame under its stamp and offer it to the worker (never
        waits for a frame in progress)."""
        stamp = self._receive_stamp(msg.header)
        self._received.add(stamp, msg)
        slot = self._slot
        if slot is not None:
            slot.put((msg, stamp, time.monotonic()))

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
                "images have zero stamps and the ROS clock reads 0 (use_sim_time and no "
                "/clock received yet?): stamping them 1, 2, 3 ... ns until the clock runs",
            )
        else:
            self._throttle.warn(
                "zero stamps", "images have zero stamps: using their receive time as stamp"
            )
        return stamp

    def _decode(self, msg):
        return camera_msg_to_rgb(msg, self._bit_depth)

    def _on_setting_changed(self, name: str, value) -> None:
        if name == "mask_threshold" and self.tracker is not None:
            self.tracker.mask_threshold = float(value)
        self.log.info(f"parameter {name} set to {value}")

    def _stream_restarted(self) -> None:
        """All objects are forgotten (reset of all objects, time jump, unload): the
        automatic 16-bit depth is judged again, the topic prompts forget their tracks."""
        self._bit_depth.reset()
        self._prompt_topics.forget_all()

    def _on_clock_jump(self, jump: TimeJump) -> None:
        """The ROS clock went back at least time_jump_reset: a stream that starts over (the
        frames after it would restart the stream anyway; this does it before the first).
        Runs on the thread that received /clock: it must not wait."""
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
                f"the ROS clock jumped back {-jump.delta.nanoseconds / 1e9:.3f} s, to {now} "
                f"(last frame {last})",
                wait=False,
            )
        finally:
            self._restart_lock.release()

    def _restart_stream(self, tracker: StreamingTracker, why: str, wait: bool) -> None:
        self._stats.time_reset()
        self.log.warning(
            f"time went backwards: {why} (bag loop, restarted driver or simulation?): "
            "resetting the tracker, all objects are forgotten"
        )
        tracker.reset(wait=wait)
        self._stream_restarted()
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

    def _on_worker_error(self, exc: Exception) -> None:
        if not self.active:
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
        self._throttle.warn(kind, f"bad {what} message (stamp {stamp_ns}) ignored: {exc}")

    # ------------------------------------------------------------------ the worker
    def _process(self, item) -> None:
        image_msg, stamp, received = item
        tracker = self.tracker
        if tracker is None or not self.active:
            return
        try:
            rgb = self._decode(image_msg)
        except (ImageDecodeError, FrameError) as exc:
            self._bad_message("image", stamp, exc)
            return
        if not self._admit(tracker, stamp, image_msg):
            return
        try:
            result = tracker.track(rgb, stamp)
        except (StampError, FrameError) as exc:  # a newer frame or a reset raced with this one
            self._bad_message("image", stamp, exc)
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
        types = self._types
        frame_id = self.params.frame_id_override or src_header.frame_id
        objects = result.objects
        positions = {}
        if self._depth is not None:
            try:
                positions = self._depth.positions(src_header, objects, self.settings.depth_scale)
            except ValueError as exc:  # the depth state says why, for /diagnostics
                self._bad_message("depth", stamp, exc)
        pubs = self._pubs
        if "masks" not in pubs:  # closed meanwhile
            return
        overlay = pubs["overlay"]
        wanted = self.settings.publish_overlay and overlay.get_subscription_count() > 0
        out = frame_messages(
            types, stamp, frame_id, rgb, objects, self._tracks, result.generation,
            positions=positions,
            threshold=self.settings.mask_threshold,
            overlay_alpha=self.settings.overlay_alpha if wanted else None,
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

    def _publish_diagnostics(self) -> None:
        pub = self._pubs.get("diagnostics")
        if pub is None:
            return
        slot = self._slot
        received, processed, dropped = slot.counts() if slot is not None else (0, 0, 0)
        stats = self._stats.snapshot(received, dropped)
        warnings, errors = [], []
        tracker = self.tracker
        if not self.active:
            warnings.append(self._inactive_reason())
        elif stats["input_rate_hz"] == 0:
            warnings.append(f"no images on {self.image_topic}")
        if tracker is not None and tracker.loaded.random_weights:
            warnings.append("RANDOM weights (no checkpoint)")
        if self._depth is not None and self._depth.state != "ok" and self.active:
            warnings.append(f"depth: {self._depth.state}")
        recent_warnings, recent_errors = self._stats.problems()
        warnings += recent_warnings
        errors += recent_errors
        extra = {
            "frames_received": received,
            "frames_processed": processed,
            "frames_dropped": dropped,
            "objects": len(tracker.object_ids) if tracker is not None else 0,
            "model": self.params.model,
            "device": str(tracker.loaded.device) if tracker is not None else "none",
            "image_size": tracker.loaded.image_size if tracker is not None else 0,
            "depth": "off" if self._depth is None else self._depth.state,
            "state": "active" if self.active else "inactive",
        }
        header = build_header(self._types, self.node.get_clock().now().nanoseconds, "")
        pub.publish(
            build_diagnostics(
                header,
                names.diagnostics_status_name(self.node.get_fully_qualified_name()),
                f"sam2_ros {extra['device']}",
                stats,
                extra,
                warnings,
                errors,
            )
        )
