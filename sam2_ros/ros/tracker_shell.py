"""What the plain and the managed (lifecycle) tracker nodes share: model, cameras, worker.

The shell loads the model once and holds one ``cameras.channel.CameraChannel`` per camera
(its session, topics, services, statistics; one with unprefixed names when ``cameras`` is
empty). Camera and depth subscriptions live on a companion node with its own executor
(``camera_input``); their callbacks only put an image into its camera's newest-frame-wins
slot (``frame_slot.FrameSlots``). A worker thread takes the newest waiting frame of each
camera it serves, encodes them in one batch (``engine.multi_session``) and lets each camera
publish; on a CPU one worker per core shares the cameras out (``settings.worker_threads``).
Services run on the node's executor, in callback groups of each camera; prompts are served
while frames are encoded. Life cycle (the lifecycle node maps its transitions onto it; the
plain node runs all at start): ``load`` builds the model and sessions, ``open`` creates
publishers and services, ``start`` subscribes and processes, ``stop`` unsubscribes and lets
the frames in progress finish (within ``shutdown_timeout``), ``close`` removes publishers
and services, ``unload`` releases the model.
"""

from __future__ import annotations

import logging
import time

import torch
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, RegionOfInterest

from sam2_ros import names
from sam2_ros.engine.hardware.heap import release_memory
from sam2_ros.engine.multi_session import SessionFrame, track_newest
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.errors import FrameError, StampError
from sam2_ros.messages import MessageTypes, build_header
from sam2_ros.ros.camera_input import CameraInput
from sam2_ros.ros.cameras.channel import CameraChannel
from sam2_ros.ros.frame_slot import FrameSlots
from sam2_ros.ros.parameters import NodeParameters, RuntimeSettings
from sam2_ros.settings import TrackerSettings, worker_threads

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
    """The ROS side of the tracker, attached to a node (plain or lifecycle): the loaded
    model, the worker, diagnostics and one ``CameraChannel`` per camera (one, with today's
    unprefixed names, when the ``cameras`` parameter is empty)."""

    output_qos = OUTPUT_QOS
    service_qos = SERVICE_QOS

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
        self.types = message_types()
        self.active = False
        self.loaded = None
        self.cameras = [CameraChannel(self, name, MutuallyExclusiveCallbackGroup)
                        for name in (params.cameras or ("",))]
        self._by_name = {c.camera: c for c in self.cameras}
        self._slot: FrameSlots | None = None
        self._input: CameraInput | None = None
        self._diag_pub = None
        self._diag_timer = None
        self._timer_group = MutuallyExclusiveCallbackGroup()
        jump_ns = round(params.time_jump_reset * 1e9)
        # A ROS clock going back (bag played with --loop --clock, a simulation reset).
        self._clock_jump = node.get_clock().create_jump_callback(
            JumpThreshold(
                min_forward=None,
                min_backward=Duration(nanoseconds=-max(1, jump_ns)),
                on_clock_change=False,
            ),
            post_callback=self._on_clock_jump,
        )
        self.log.info(
            f"image decoding: sam2_ros.imaging.codec ({params.image_transport}; 16-bit input "
            f"bit depth {params.input_bit_depth or 'auto'})"
        )

    @property
    def tracker(self) -> StreamingTracker | None:
        """The first camera's tracking session (the only one without ``cameras``)."""
        return self.cameras[0].tracker

    def camera(self, name: str) -> CameraChannel:
        """A camera's part by name ("" without ``cameras``)."""
        return self._by_name[name]

    # ------------------------------------------------------------------ life cycle
    def load(self) -> None:
        """Build the model once and a tracking session per camera on it (raises with a
        clear message for a bad model or checkpoint)."""
        p = self.params
        started = time.monotonic()
        settings = TrackerSettings.from_values(p, mask_threshold=self.settings.mask_threshold)
        self.loaded = loaded = settings.load()
        for channel in self.cameras:
            channel.tracker = settings.build(loaded)
        dtype = loaded.autocast_dtype
        self.log.info(
            f"SAM 2 {p.model} on {loaded.device}, "
            f"{'fp32' if dtype is None else str(dtype).replace('torch.', '')}, "
            f"image_size {loaded.image_size}, {torch.get_num_threads()} CPU threads, "
            f"{loaded.weights}; built in {time.monotonic() - started:.1f} s"
            + (f"; cameras {', '.join(p.cameras)}" if p.cameras else "")
        )

    def open(self) -> None:
        """Publishers, services and the diagnostics timer."""
        try:
            from diagnostic_msgs.msg import DiagnosticArray
        except ImportError as exc:
            self.log.warning(f"diagnostic_msgs is not installed ({exc}): no diagnostics")
        else:
            self._diag_pub = self.node.create_publisher(
                DiagnosticArray, names.DIAGNOSTICS_TOPIC, 10)
            if self.params.diagnostics_period > 0:
                self._diag_timer = self.node.create_timer(
                    self.params.diagnostics_period, self._publish_diagnostics,
                    callback_group=self._timer_group,
                )
        for channel in self.cameras:
            channel.open()

    def start(self) -> None:
        """Subscribe the cameras (and depth) and process frames."""
        workers, threads = worker_threads(self.params.workers, len(self.cameras),
                                          self.loaded.device.type)
        self._slot = FrameSlots(self._process, self._on_worker_error, "sam2-worker", workers,
                                (lambda: torch.set_num_threads(threads)) if threads else None)
        qos = self._image_qos()
        self._input = CameraInput(self.node)
        ready = [c.start(self._input, self._slot.put, qos) for c in self.cameras]
        self.active = True
        for channel, line in zip(self.cameras, ready, strict=True):
            on = f" (camera {channel.camera})" if channel.camera else ""
            self.log.info(f"ready: tracking {line}{on}")
        if workers > 1:
            each = f"{threads} torch thread{'s' if threads > 1 else ''} each"
            self.log.info(f"{workers} workers track the cameras, {each}")

    def stop(self) -> bool:
        """Unsubscribe; the frames in progress finish within shutdown_timeout. Returns
        whether they did."""
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
        for channel in self.cameras:
            channel.stop()
        return finished

    def close(self) -> None:
        """Remove services, publishers and the timer (after stop)."""
        if self._diag_timer is not None:
            self.node.destroy_timer(self._diag_timer)
            self._diag_timer = None
        if self._diag_pub is not None:
            self.node.destroy_publisher(self._diag_pub)
            self._diag_pub = None
        for channel in self.cameras:
            channel.close()

    def unload(self) -> None:
        """Release the model and its memory (what stays: docs/benchmarks.md, lifecycle cycles)."""
        for channel in self.cameras:
            channel.unload()
        self.loaded = None
        release_memory()

    def teardown(self) -> None:
        """Everything, in order, for a node being destroyed."""
        self.stop()
        self.close()
        self.unload()
        self._clock_jump.unregister()
        logging.getLogger("sam2_ros").removeHandler(self._py_log_handler)

    def inactive_reason(self) -> str:
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

    def _on_setting_changed(self, name: str, value) -> None:
        if name == "mask_threshold":
            for channel in self.cameras:
                if channel.tracker is not None:
                    channel.tracker.mask_threshold = float(value)
        self.log.info(f"parameter {name} set to {value}")

    def _on_clock_jump(self, jump: TimeJump) -> None:
        """The ROS clock went back at least time_jump_reset: every camera's stream starts
        over (each decides; runs on the thread that received /clock: must not wait)."""
        for channel in self.cameras:
            channel.on_clock_jump(jump.delta.nanoseconds)

    def _on_worker_error(self, exc: Exception) -> None:
        """Outside any camera's frame (each camera's failures go to its own part)."""
        self.cameras[0].worker_error(exc)

    # ------------------------------------------------------------------ the worker
    def _process(self, batch) -> None:
        """The newest waiting frame of each camera that has one: each decoded and judged
        by its camera, then all tracked together, one batch per SAM 2 step (``multi_session``),
        then each published by its camera. One camera's failure is its own."""
        ready = []
        for name, item in batch:
            channel = self._by_name[name]
            try:
                prepared = channel.prepare(item)
            except Exception as exc:
                channel.worker_error(exc)
                continue
            if prepared is not None and channel.tracker is not None:
                ready.append((channel, item, *prepared))
        if not ready:
            return
        try:
            results = self._track(ready)
        except Exception as exc:  # a bug or a device fault: every camera of the batch
            for channel, *_ in ready:
                channel.worker_error(exc)
            return
        for (channel, item, rgb, _), result in zip(ready, results, strict=True):
            try:
                channel.finish(item, rgb, result)
            except Exception as exc:
                channel.worker_error(exc)

    @staticmethod
    def _track(ready) -> list:
        """Each ready frame's FrameResult, or the StampError/FrameError that refused it."""
        if len(ready) == 1:  # one camera: the tracker's own path
            channel, _, rgb, stamp = ready[0]
            try:
                return [channel.tracker.track(rgb, stamp)]
            except (StampError, FrameError) as exc:  # a newer frame or a reset raced
                return [exc]
        return track_newest([SessionFrame(c.tracker, rgb, stamp) for c, _, rgb, stamp in ready])

    def _publish_diagnostics(self) -> None:
        pub = self._diag_pub
        if pub is None:
            return
        slot = self._slot
        header = build_header(self.types, self.node.get_clock().now().nanoseconds, "")
        fqn = self.node.get_fully_qualified_name()
        node_status = names.diagnostics_status_name(fqn)
        if not self.params.cameras:  # one camera: the node's status is the camera's
            counts = slot.counts("") if slot is not None else (0, 0, 0)
            pub.publish(self.cameras[0].diagnostics(header, node_status, counts))
            return
        arrays = [c.diagnostics(header, names.camera_status_name(fqn, c.camera),
                                slot.counts(c.camera) if slot is not None else (0, 0, 0))
                  for c in self.cameras]
        message = merge_camera_statuses(arrays, node_status, self.cameras,
                                        slot.workers if slot is not None else 0)
        pub.publish(message)


def merge_camera_statuses(arrays, node_status: str, cameras, workers: int):
    """One DiagnosticArray: the node's status (the worst of its cameras', naming the silent
    ones; the number of worker threads) followed by one status per camera."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    statuses = [a.status[0] for a in arrays]
    level = max(s.level for s in statuses)
    silent = [c.camera for c, s in zip(cameras, statuses, strict=True) if "silent" in s.message
              or "no images" in s.message]
    parts = [f"{len(cameras)} cameras"]
    if silent:
        parts.append(f"silent: {', '.join(silent)}")
    node = DiagnosticStatus(level=level, name=node_status, message="; ".join(parts),
                            hardware_id=statuses[0].hardware_id,
                            values=[KeyValue(key="workers", value=str(workers))])
    message = arrays[0]
    message.status = [node, *statuses]
    return message
