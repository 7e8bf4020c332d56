"""The ``sam2_tracker`` node: camera frames in, SAM 2 masks, objects, overlay, markers out.

Threads: the executor (MultiThreadedExecutor) runs the image callbacks, which only put the
message into a newest-frame-wins slot, and, in their own callback group, the services and
the diagnostics timer. One worker thread takes frames from the slot, runs the tracker and
publishes. Prompts are served while a frame is being encoded (the tracker is thread-safe).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback

import rclpy
import torch
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, RegionOfInterest

from sam2_ros.errors import FrameError, StampError
from sam2_ros.imaging.codec import ImageDecodeError, camera_msg_to_rgb, depth_msg_to_metres
from sam2_ros.imaging.overlay import draw_overlay
from sam2_ros.messages import (
    MessageTypes,
    build_header,
    build_image,
    build_label_image,
    build_object_array,
)
from sam2_ros.ros.frame_slot import FrameSlot
from sam2_ros.ros.outputs import NodeStats, build_diagnostics, build_markers, depth_positions
from sam2_ros.ros.parameters import RuntimeSettings, declare_parameters
from sam2_ros.ros.services import TrackerServices, time_to_ns

NODE_NAME = "sam2_tracker"
SERVICE_QOS = QoSProfile(
    depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)

def message_types() -> MessageTypes:
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point
    from std_msgs.msg import Header

    from sam2_ros.msg import TrackedObject, TrackedObjectArray

    return MessageTypes(
        Time, Header, RegionOfInterest, Image, Point, TrackedObject, TrackedObjectArray
    )


class _RosLogHandler(logging.Handler):
    """Forward the core's Python logging (e.g. the random-weights warning) to the ROS log."""

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


class _WarnThrottle:
    """One warning per distinct problem per period, with a count of the repeats left out."""

    def __init__(self, logger, period_s: float = 5.0) -> None:
        self._logger = logger
        self._period = period_s
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def warn(self, key: str, text: str) -> None:
        """Log ``text`` unless the same ``key`` was logged less than a period ago."""
        now = time.monotonic()
        with self._lock:
            last, skipped = self._last.get(key, (-1e18, 0))
            if now - last < self._period:
                self._last[key] = (last, skipped + 1)
                return
            self._last[key] = (now, 0)
        more = f" ({skipped} more like it since the last warning)" if skipped else ""
        self._logger.warning(text + more)


class TrackerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        log = self.get_logger()
        self._py_log_handler = _RosLogHandler(log)
        logging.getLogger("sam2_ros").addHandler(self._py_log_handler)
        logging.getLogger("sam2_ros").setLevel(logging.INFO)
        self.params = p = declare_parameters(self)
        self.settings = RuntimeSettings(p)
        self.add_on_set_parameters_callback(self.settings.on_set_parameters)
        self.settings.add_listener(self._on_setting_changed)
        self._types = message_types()
        self._throttle = _WarnThrottle(log)
        self._stats = NodeStats()
        self._last_stamp: int | None = None
        self._stamp_lock = threading.Lock()
        self._zero_stamp_warned = False
        self._stopping = False
        log.info(
            f"image decoding: sam2_ros.imaging.codec ({p.image_transport}; 16-bit input "
            f"bit depth {p.input_bit_depth or 'auto'})"
        )

        from sam2_ros.settings import TrackerSettings

        started = time.monotonic()
        self.tracker = TrackerSettings(
            model=p.model,
            checkpoint=p.checkpoint,
            device=p.device,
            precision=p.precision,
            image_size=p.image_size,
            compile=p.compile,
            cpu_threads=p.cpu_threads,
            max_objects=p.max_objects,
            prompt_history=p.prompt_history,
            max_prompt_frames=p.max_prompt_frames,
            mask_threshold=p.mask_threshold,
        ).build()
        self.loaded = self.tracker.loaded
        weights = (
            "RANDOM weights (no checkpoint parameter; masks mean nothing)"
            if self.loaded.random_weights
            else f"checkpoint {p.checkpoint}"
        )
        dtype = self.loaded.autocast_dtype
        log.info(
            f"SAM 2 {p.model} on {self.loaded.device}, "
            f"{'fp32' if dtype is None else str(dtype).replace('torch.', '')}, "
            f"image_size {self.loaded.image_size}, {torch.get_num_threads()} CPU threads, "
            f"{weights}; built in {time.monotonic() - started:.1f} s"
        )

        self._slot: FrameSlot = FrameSlot(self._process, self._on_worker_error, "sam2-worker")
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._create_publishers()
        self._depth_enabled = self._create_subscriptions()
        self._create_services()
        self._diag_timer = None
        if p.diagnostics_period > 0 and self._diag_pub is not None:
            self._diag_timer = self.create_timer(
                p.diagnostics_period, self._publish_diagnostics, callback_group=self._timer_group
            )
        log.info(
            f"ready: tracking frames from {self._image_topic}; services "
            f"{self.resolve_topic_name('~/add_prompt')}, ~/remove_objects, ~/reset"
        )

    # ------------------------------------------------------------------ set-up
    def _create_publishers(self) -> None:
        out_qos = QoSProfile(
            depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
        )
        from sam2_ros.msg import TrackedObjectArray

        self._masks_pub = self.create_publisher(Image, "~/masks", out_qos)
        self._objects_pub = self.create_publisher(TrackedObjectArray, "~/objects", out_qos)
        self._overlay_pub = self.create_publisher(Image, "~/overlay", out_qos)
        self._markers_pub = None
        try:
            from diagnostic_msgs.msg import DiagnosticArray
        except ImportError as exc:
            self._diag_pub = None
            self.get_logger().warning(f"diagnostic_msgs is not installed ({exc}): no diagnostics")
        else:
            self._diag_pub = self.create_publisher(DiagnosticArray, "~/diagnostics", 10)

    def _image_qos(self) -> QoSProfile:
        reliability = (
            ReliabilityPolicy.RELIABLE
            if self.params.qos_reliability == "reliable"
            else ReliabilityPolicy.BEST_EFFORT
        )
        return QoSProfile(
            depth=self.params.qos_depth, reliability=reliability, history=HistoryPolicy.KEEP_LAST
        )

    def _create_subscriptions(self) -> bool:
        """Subscribe the image (and depth + camera_info); returns whether depth is used."""
        compressed = self.params.image_transport == "compressed"
        image_type = CompressedImage if compressed else Image
        topic = "image/compressed" if compressed else "image"
        self._image_topic = self.resolve_topic_name(topic)
        qos = self._image_qos()
        if self.params.use_depth:
            try:
                import message_filters
            except ImportError as exc:
                self.get_logger().warning(
                    f"use_depth is true but message_filters is not installed ({exc}): depth is "
                    "DISABLED, running without 3D positions and ~/markers"
                )
            else:
                from visualization_msgs.msg import MarkerArray

                self._markers_pub = self.create_publisher(MarkerArray, "~/markers", 5)
                kw = {"qos_profile": qos, "callback_group": self._image_group}
                self._mf_subs = [
                    message_filters.Subscriber(self, image_type, topic, **kw),
                    message_filters.Subscriber(self, Image, "depth", **kw),
                    message_filters.Subscriber(self, CameraInfo, "camera_info", **kw),
                ]
                self._sync = message_filters.ApproximateTimeSynchronizer(
                    self._mf_subs, queue_size=10, slop=0.05
                )
                self._sync.registerCallback(self._on_synced)
                self.get_logger().info(
                    f"depth on: {self._image_topic} synchronised with "
                    f"{self.resolve_topic_name('depth')} and "
                    f"{self.resolve_topic_name('camera_info')}"
                )
                return True
        self._image_sub = self.create_subscription(
            image_type, topic, self._on_image, qos, callback_group=self._image_group
        )
        return False

    def _create_services(self) -> None:
        from sam2_ros.srv import AddPrompt, RemoveObjects, ResetTracks

        self._handlers = TrackerServices(self.tracker, self.get_logger(), self._forget_stamp)
        # The default service QoS keeps 10 requests: a burst from one client would lose some.
        kw = {"qos_profile": SERVICE_QOS, "callback_group": self._service_group}
        self._service_servers = [
            self.create_service(AddPrompt, "~/add_prompt", self._handlers.add_prompt, **kw),
            self.create_service(
                RemoveObjects, "~/remove_objects", self._handlers.remove_objects, **kw
            ),
            self.create_service(ResetTracks, "~/reset", self._handlers.reset, **kw),
        ]

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg) -> None:
        self._slot.put((msg, None, None, time.monotonic()))

    def _on_synced(self, image, depth, info) -> None:
        self._slot.put((image, depth, info, time.monotonic()))

    def _on_setting_changed(self, name: str, value) -> None:
        if name == "mask_threshold":
            self.tracker.mask_threshold = float(value)
        self.get_logger().info(f"parameter {name} set to {value}")

    def _forget_stamp(self) -> None:
        with self._stamp_lock:
            self._last_stamp = None

    def _on_worker_error(self, exc: Exception) -> None:
        if self._stopping:
            return
        self.get_logger().error(
            f"frame processing failed: {exc!r}\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        )

    def _bad_message(self, what: str, stamp_ns: int, exc: Exception) -> None:
        self._stats.bad_message()
        self._throttle.warn(
            f"{what}: {exc}", f"bad {what} message (stamp {stamp_ns}) ignored: {exc}"
        )

    # ------------------------------------------------------------------ the worker
    def _frame_stamp(self, header) -> int:
        stamp = time_to_ns(header.stamp)
        if stamp == 0:
            if not self._zero_stamp_warned:
                self._zero_stamp_warned = True
                self.get_logger().warning(
                    "images have zero stamps: using their receive time as stamp instead"
                )
            stamp = self.get_clock().now().nanoseconds
        return stamp

    def _process(self, item) -> None:
        image_msg, depth_msg, info_msg, received = item
        stamp = time_to_ns(image_msg.header.stamp)
        try:
            rgb = camera_msg_to_rgb(image_msg, self.params.input_bit_depth)
        except (ImageDecodeError, FrameError) as exc:
            self._bad_message("image", stamp, exc)
            return
        stamp = self._frame_stamp(image_msg.header)
        with self._stamp_lock:
            last = self._last_stamp
            if last is not None and stamp == last:
                self._bad_message("image", stamp, ValueError("same stamp as the previous frame"))
                return
            if last is not None and stamp < last:
                self._stats.time_reset()
                self.get_logger().warning(
                    f"time went backwards: frame stamp {stamp} is before the last processed "
                    f"{last} (bag loop or restarted driver?): resetting the tracker, all "
                    "objects are forgotten"
                )
                self.tracker.reset()
            try:
                result = self.tracker.track(rgb, stamp)
            except StampError as exc:  # a reset by service raced with this frame
                self._bad_message("image", stamp, exc)
                return
            except FrameError as exc:
                self._bad_message("image", stamp, exc)
                return
            self._last_stamp = stamp
        self._publish(image_msg.header, stamp, rgb, result, depth_msg, info_msg)
        self._stats.frame_done(received, time.monotonic(), result.timing.as_dict())

    def _publish(self, src_header, stamp, rgb, result, depth_msg, info_msg) -> None:
        types = self._types
        frame_id = self.params.frame_id_override or src_header.frame_id
        objects = result.objects
        positions = {}
        if depth_msg is not None and info_msg is not None:
            try:
                depth = depth_msg_to_metres(depth_msg, self.settings.depth_scale)
                positions = depth_positions(
                    objects, depth, info_msg.k, (info_msg.width, info_msg.height)
                )
            except (ImageDecodeError, ValueError) as exc:
                self._bad_message("depth", stamp, exc)
        self._masks_pub.publish(
            build_label_image(
                types, stamp, frame_id, objects, result.image_hw, self.settings.mask_threshold
            )
        )
        self._objects_pub.publish(build_object_array(types, stamp, frame_id, objects, positions))
        header = build_header(types, stamp, frame_id)
        if self.settings.publish_overlay and self._overlay_pub.get_subscription_count() > 0:
            bgr = draw_overlay(
                rgb,
                [
                    (r.object_id, r.label, r.mask, r.visible and r.area > 0, r.score)
                    for r in objects
                ],
                self.settings.overlay_alpha,
            )
            self._overlay_pub.publish(build_image(types, header, bgr, "bgr8"))
        if self._markers_pub is not None:
            self._markers_pub.publish(build_markers(header, objects, positions))

    def _publish_diagnostics(self) -> None:
        received, processed, dropped = self._slot.counts()
        stats = self._stats.snapshot(received, dropped)
        warnings = []
        if self.loaded.random_weights:
            warnings.append("RANDOM weights (no checkpoint)")
        if stats["input_rate_hz"] == 0:
            warnings.append(f"no images on {self._image_topic}")
        extra = {
            "frames_received": received,
            "frames_processed": processed,
            "frames_dropped": dropped,
            "objects": len(self.tracker.object_ids),
            "model": self.params.model,
            "device": str(self.loaded.device),
            "image_size": self.loaded.image_size,
            "depth": "on" if self._depth_enabled else "off",
        }
        header = build_header(self._types, self.get_clock().now().nanoseconds, "")
        self._diag_pub.publish(
            build_diagnostics(
                header,
                f"{self.get_fully_qualified_name()}: tracking",
                str(self.loaded.device),
                stats,
                extra,
                warnings,
            )
        )

    def destroy_node(self) -> None:
        self._stopping = True
        self._slot.stop()
        logging.getLogger("sam2_ros").removeHandler(self._py_log_handler)
        super().destroy_node()


def main(args=None) -> int:
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = TrackerNode()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # a bad parameter, model or checkpoint: say why and exit 1
        logger = node.get_logger() if node is not None else rclpy.logging.get_logger(NODE_NAME)
        logger.fatal(f"sam2_tracker cannot run: {exc}")
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
