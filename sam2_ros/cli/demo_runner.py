"""`sam2_ros demo`: the product end to end, over real ROS 2 between real processes.

1. make a synthetic camera bag (or take one);
2. start the real ``sam2_tracker`` node as its own process;
3. play the bag's camera topics into it at the recorded rate;
4. prompt each object through the node's ``~/add_prompt`` service, as a planner would,
   on a frame the node has processed (named by stamp) where the object is visible; or,
   with ``--detector``, no prompts at all: the bag's synthetic detector messages are
   played on the node's ``detections`` topic and every object comes from them;
5. record what the node publishes into an output bag, and write the overlay video, a
   visibility plot and a summary (frames in, processed, dropped, latency, objects, J&F).

Discovery and completion are awaited through events (matched endpoints, futures), with
deadlines, never fixed sleeps; playback itself follows the bag's timestamps.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2_ros import names
from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import (
    DETECTIONS_OUT_TOPIC,
    MASKS_TOPIC,
    OBJECTS_TOPIC,
    OVERLAY_TOPIC,
    choose_image_topic,
    frame_rate,
)
from sam2_ros.bags.video import VideoOutput
from sam2_ros.engine.results import ObjectResult
from sam2_ros.evaluation.run_summary import (
    RunTimeline,
    plot_visibility,
    verdict_line,
    write_summary,
)
from sam2_ros.evaluation.synthetic_scene import SceneConfig
from sam2_ros.imaging.codec import image_msg_to_array
from sam2_ros.messages import stamp_to_ns
from sam2_ros.settings import TrackerSettings

DISCOVERY_TIMEOUT_S = 60.0
MODEL_START_TIMEOUT_S = 300.0
MIN_PROMPT_AREA = 80  # pixels of ground truth an object needs before the demo prompts it
#: This ground-truth object (the designed scene's rectangle) is prompted by its box, the
#: others by a click, so that one run sends both kinds of prompt through ~/add_prompt.
BOX_PROMPTED_GT_ID = 2
# How long to wait after the last frame for the node's diagnostics to report its engine
# time: two diagnostics periods of config/tracker.yaml (1 s) and a margin.
ENGINE_REPORT_TIMEOUT_S = 3.0


@dataclass
class _Recorder:
    """What the demo hears from the node, with arrival times."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    processed: dict[int, float] = field(default_factory=dict)  # stamp -> receive time
    objects: dict[int, object] = field(default_factory=dict)  # stamp -> TrackedObjectArray
    label_images: dict[int, np.ndarray] = field(default_factory=dict)
    overlays: list[tuple[int, np.ndarray]] = field(default_factory=list)
    new_frame: threading.Condition = field(default_factory=threading.Condition)


def _node_command(settings: TrackerSettings, image_topic: str, compressed: bool,
                  detections: bool = False) -> list[str]:
    """The installed tracker_node executable with the package's parameter file."""
    try:
        from ament_index_python.packages import get_package_prefix, get_package_share_directory

        prefix = Path(get_package_prefix("sam2_ros"))
        executable = [str(prefix / "lib" / "sam2_ros" / "tracker_node")]
        params = Path(get_package_share_directory("sam2_ros")) / "config" / "tracker.yaml"
    except (ImportError, LookupError, ValueError):
        executable = [sys.executable, "-m", "sam2_ros.ros.tracker_node"]
        params = Path(__file__).resolve().parents[2] / "config" / "tracker.yaml"
    if not executable[0].endswith("tracker_node") or not Path(executable[0]).exists():
        executable = [sys.executable, "-m", "sam2_ros.ros.tracker_node"]
    input_topic = "image/compressed" if compressed else "image"
    return [
        *executable,
        "--ros-args",
        "--params-file",
        str(params),
        "-p", f"model:={settings.model}",
        "-p", f"device:={settings.device}",
        "-p", f"precision:={settings.precision}",
        "-p", f"image_size:={settings.image_size}",
        "-p", f"cpu_threads:={settings.cpu_threads}",
        "-p", f"compile:={str(settings.compile).lower()}",
        "-p", f"tracking_mode:={settings.tracking_mode}",
        "-p", "qos_reliability:=reliable",
        "-p", "publish_overlay:=true",
        "-p", f"image_transport:={'compressed' if compressed else 'raw'}",
        "-r", f"{input_topic}:={image_topic}",
    ] + (["-p", f"checkpoint:={settings.checkpoint}"] if settings.checkpoint else []) + (
        ["-p", "use_detections:=true",
         "-r", f"{names.DETECTIONS_IN}:={bag_io.DETECTIONS_TOPIC}"] if detections else []
    )  # fmt: skip


def run_demo(args: argparse.Namespace, settings: TrackerSettings) -> int:
    """The demo's steps in order; 0 on success, 1 when the node failed, 2 for a bad bag."""
    from sam2_ros.engine.model_loading import describe_weights, uses_random_weights

    out = args.out or Path("out") / time.strftime("demo-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    detector = bool(getattr(args, "detector", False))
    bag = args.bag or _write_scene_bag(args, out / "input_bag")
    info = bag_io.inspect_bag(bag)
    if detector and bag_io.DETECTIONS_TOPIC not in info.topics:
        print(f"[demo] error: {bag} has no {bag_io.DETECTIONS_TOPIC} topic for --detector "
              "(make one with `sam2_ros make-bag --detector`)", file=sys.stderr)
        return 2
    image_topic = choose_image_topic(info, "")
    gt = _ground_truth(bag, info)
    if not gt:
        print(
            f"[demo] error: {bag} has no {bag_io.GT_LABELS_TOPIC} topic to place prompts "
            "from; use `sam2_ros replay --prompts` for such bags",
            file=sys.stderr,
        )
        return 2
    weights = describe_weights(settings.model, settings.checkpoint)
    print(
        f"[demo] model {settings.model}, image_size {settings.image_size or 'config'}, "
        f"device {settings.device}; {weights}"
    )
    try:
        player, timeline, summary = _run_node_and_play(
            out, settings, bag, info, image_topic, gt, detector)
    except RuntimeError as exc:
        print(f"[demo] error: {exc} (see {out / 'node.log'})", file=sys.stderr)
        return 1
    fps = frame_rate(info, image_topic)
    codec = _write_video(out / "overlay.mp4", player.recorder.overlays, fps, summary)
    summary.update(
        {
            "random_weights": uses_random_weights(settings.model, settings.checkpoint),
            "weights": weights,
            "model": settings.model,
            "image_size": settings.image_size,
            "video_codec": codec,
        }
    )
    _write_summary(out, bag, settings, weights, fps, summary, timeline)
    _print_where_and_verdict(out, summary)
    return 0


def _write_scene_bag(args: argparse.Namespace, bag: Path) -> Path:
    """The designed synthetic scene (three shapes, ground truth) as a camera bag."""
    cfg = SceneConfig(
        width=args.width,
        height=args.height,
        fps=args.fps,
        duration_s=args.duration,
        num_objects=3,
        seed=0,
    )
    print(
        f"[demo] synthetic scene {cfg.width}x{cfg.height}, {cfg.fps:g} fps, "
        f"{cfg.duration_s:g} s ({cfg.num_frames} frames) -> {bag}"
    )
    detector = None
    if getattr(args, "detector", False):
        from sam2_ros.evaluation.synthetic_detector import DetectorConfig

        detector = DetectorConfig()
        print(f"[demo] with a synthetic detector on {bag_io.DETECTIONS_TOPIC}: a message every "
              f"{detector.period_frames} frames, {detector.delay_frames} frames late")
    bag_io.write_scene_bag(bag, cfg, detector=detector)
    return bag


def _ground_truth(bag: Path, info: bag_io.BagInfo) -> dict[int, np.ndarray]:
    """Stamp -> ground-truth label image: where the demo prompts, and what it scores."""
    if bag_io.GT_LABELS_TOPIC not in info.topics:
        return {}
    return {
        stamp_to_ns(msg.header.stamp): image_msg_to_array(msg)
        for _, _, msg in bag_io.iter_messages(bag, [bag_io.GT_LABELS_TOPIC])
    }


def _run_node_and_play(
    out: Path,
    settings: TrackerSettings,
    bag: Path,
    info: bag_io.BagInfo,
    image_topic: str,
    gt: dict[int, np.ndarray],
    detector: bool = False,
) -> tuple[_Player, RunTimeline, dict]:
    """Start the node as its own process, play the bag into it, prompt, record; always
    shut both down (the node by SIGINT, as a person would)."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    env = dict(os.environ)
    # Keep the demo's traffic on this machine, away from any real robot on the network.
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE",)})
    compressed = info.topics[image_topic].msgtype == bag_io.COMPRESSED_TYPE
    node_log = open(out / "node.log", "w")  # noqa: SIM115 - closed in finally
    command = _node_command(settings, image_topic, compressed, detector)
    node_proc = subprocess.Popen(command, env=env, stdout=node_log, stderr=subprocess.STDOUT)
    print(f"[demo] started tracker node (pid {node_proc.pid}), log: {out / 'node.log'}")
    rclpy.init()
    executor = MultiThreadedExecutor(num_threads=3)
    player = _Player(rclpy, image_topic, compressed, out / "output_bag", detector)
    executor.add_node(player.node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        player.wait_for_node(node_proc)
        timeline, summary = player.play(bag, image_topic, gt, info, node_proc)
        return player, timeline, summary
    finally:
        player.close()
        executor.shutdown()
        rclpy.try_shutdown()
        _stop_node(node_proc)
        node_log.close()


def _stop_node(node_proc: subprocess.Popen) -> None:
    if node_proc.poll() is None:
        node_proc.send_signal(signal.SIGINT)
        try:
            node_proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node_proc.kill()


def _write_video(
    path: Path, overlays: list[tuple[int, np.ndarray]], fps: float, summary: dict
) -> str:
    """The recorded ~/overlay frames as a video at the rate the node processed them;
    returns the codec used."""
    rate = fps * summary["frames_processed"] / max(1, summary["frames_in"])
    with VideoOutput(path, rate) as video:
        for _, bgr in overlays:
            video.write(bgr)
    return video.codec


def _write_summary(
    out: Path,
    bag: Path,
    settings: TrackerSettings,
    weights: str,
    fps: float,
    summary: dict,
    timeline: RunTimeline,
) -> None:
    """summary.md|json and visibility.png."""
    notes = [
        f"Input: `{bag}` ({summary['frames_in']} frames at {fps:.1f} fps); node: "
        f"{settings.model}, image_size {settings.image_size}, device {settings.device}.",
        f"Weights: {weights}.",
        f"Frames in {summary['frames_in']}, processed {summary['frames_processed']}, dropped "
        f"{summary['frames_dropped']} (the node keeps only the newest frame while busy).",
        f"Prompts sent through ~/add_prompt: {summary['prompts_sent']}, accepted "
        f"{summary['prompts_accepted']}.",
    ]
    if summary["engine_frame_ms_median"] is not None:
        notes.append(
            f"Engine time per frame (node diagnostics, median of period means): "
            f"{summary['engine_frame_ms_median']:.0f} ms."
        )
    write_summary(summary, out, "summary", "sam2_ros demo", notes)
    plot_visibility(timeline, out / "visibility.png", "sam2_ros demo: visibility over time")


def _print_where_and_verdict(out: Path, summary: dict) -> None:
    """The summary, where every output is, and the one-line verdict last."""
    print((out / "summary.md").read_text())
    print(f"[demo] also in {out}: visibility.png, output_bag/ (what the node published), node.log")
    print(f"[demo] overlay video: {out / 'overlay.mp4'}")
    print(f"[demo] summary: {out / 'summary.md'} (every number: {out / 'summary.json'})")
    print(f"[demo] {verdict_line(summary)}")


class _Player:
    """The demo's own ROS node: plays the camera, prompts, records the tracker's topics."""

    def __init__(self, rclpy, image_topic: str, compressed: bool, output_bag: Path,
                 detector: bool = False) -> None:
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        from sam2_ros.msg import TrackedObjectArray
        from sam2_ros.srv import AddPrompt

        self.rclpy = rclpy
        self.node = rclpy.create_node("sam2_demo_player")
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        image_type = CompressedImage if compressed else Image
        self.image_pub = self.node.create_publisher(image_type, image_topic, qos)
        self.info_pub = self.node.create_publisher(CameraInfo, bag_io.CAMERA_INFO_TOPIC, qos)
        self.image_type = image_type
        self.detector = detector
        if detector:
            from vision_msgs.msg import Detection2DArray

            self.detection_type = Detection2DArray
            self.detections_pub = self.node.create_publisher(
                Detection2DArray, bag_io.DETECTIONS_TOPIC, qos)
        group = ReentrantCallbackGroup()
        self.recorder = _Recorder()
        self.output_bag = output_bag
        # Callbacks run on executor threads; sqlite wants one thread, so the messages are
        # kept here and written by close() on the main thread.
        self.recorded: list[tuple[str, int, bytes]] = []
        self._bag_lock = threading.Lock()
        self.objects_sub = self.node.create_subscription(
            TrackedObjectArray, OBJECTS_TOPIC, self._on_objects, qos, callback_group=group, raw=True
        )
        self.node.create_subscription(
            Image, MASKS_TOPIC, self._on_masks, qos, callback_group=group, raw=True
        )
        self.node.create_subscription(
            Image, OVERLAY_TOPIC, self._on_overlay, qos, callback_group=group, raw=True
        )
        self.vision_recorded = False
        if bag_io.rosbags_vision_types() is not None:  # ~/detections into the output bag too
            try:
                from vision_msgs.msg import Detection2DArray
            except ImportError:
                pass
            else:
                self.vision_recorded = True
                self.node.create_subscription(
                    Detection2DArray, DETECTIONS_OUT_TOPIC,
                    lambda raw: self._record(DETECTIONS_OUT_TOPIC, raw, Detection2DArray),
                    qos, callback_group=group, raw=True,
                )
        try:
            from diagnostic_msgs.msg import DiagnosticArray
        except ImportError:
            pass
        else:
            self.node.create_subscription(
                DiagnosticArray,
                names.DIAGNOSTICS_TOPIC,
                self._on_diagnostics,
                10,
                callback_group=group,
            )
        self.engine_ms: list[float] = []
        self.engine_reported = threading.Event()
        self.prompt_client = self.node.create_client(
            AddPrompt, names.resolved(names.ADD_PROMPT), callback_group=group
        )
        self.add_prompt_type = AddPrompt
        self.published: dict[int, float] = {}
        self.gt_ids: dict[int, int] = {}

    # -------------------------------------------------------------- recording callbacks
    def _record(self, topic: str, raw: bytes, msg_type) -> object:
        from rclpy.serialization import deserialize_message

        msg = deserialize_message(raw, msg_type)
        stamp = stamp_to_ns(msg.header.stamp)
        with self._bag_lock:
            self.recorded.append((topic, stamp, bytes(raw)))
        return msg

    def _on_objects(self, raw: bytes) -> None:
        from sam2_ros.msg import TrackedObjectArray

        now = time.monotonic()
        msg = self._record(OBJECTS_TOPIC, raw, TrackedObjectArray)
        stamp = stamp_to_ns(msg.header.stamp)
        rec = self.recorder
        with rec.new_frame:
            rec.processed.setdefault(stamp, now)
            rec.objects[stamp] = msg
            rec.new_frame.notify_all()

    def _on_masks(self, raw: bytes) -> None:
        from sensor_msgs.msg import Image

        msg = self._record(MASKS_TOPIC, raw, Image)
        stamp = stamp_to_ns(msg.header.stamp)
        labels = np.frombuffer(bytes(msg.data), dtype=np.uint16).reshape(msg.height, msg.width)
        with self.recorder.lock:
            self.recorder.label_images[stamp] = labels

    def _on_overlay(self, raw: bytes) -> None:
        from sensor_msgs.msg import Image

        msg = self._record(OVERLAY_TOPIC, raw, Image)
        stamp = stamp_to_ns(msg.header.stamp)
        bgr = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)
        with self.recorder.lock:
            self.recorder.overlays.append((stamp, bgr.copy()))

    def _on_diagnostics(self, msg) -> None:
        """The node's own per-frame engine time (mean over each diagnostics period)."""
        for status in msg.status:
            if not names.is_tracker_status(status.name):
                continue
            values = {kv.key: kv.value for kv in status.values}
            if float(values.get("output_rate_hz", 0) or 0) > 0 and "total_ms" in values:
                self.engine_ms.append(float(values["total_ms"]))
                self.engine_reported.set()

    # -------------------------------------------------------------- steps
    def wait_for_node(self, node_proc: subprocess.Popen) -> None:
        """Until the node subscribes to the camera and serves prompts (model loaded)."""
        deadline = time.monotonic() + MODEL_START_TIMEOUT_S
        print("[demo] waiting for the node to load the model and subscribe ...")
        while time.monotonic() < deadline:
            if node_proc.poll() is not None:
                raise RuntimeError(f"the tracker node exited with code {node_proc.returncode}")
            ready = (
                self.image_pub.get_subscription_count() > 0
                and self.objects_sub.get_publisher_count() > 0
                and (not self.detector or self.detections_pub.get_subscription_count() > 0)
            )
            if ready and self.prompt_client.wait_for_service(timeout_sec=0.5):
                print("[demo] node is up: camera subscribed, ~/add_prompt served")
                return
            time.sleep(0.05)  # polling the graph: there is no matched-event API for this
        raise RuntimeError(f"the node did not come up within {MODEL_START_TIMEOUT_S:.0f} s")

    def play(
        self,
        bag: Path,
        image_topic: str,
        gt: dict[int, np.ndarray],
        info: bag_io.BagInfo,
        node_proc: subprocess.Popen,
    ) -> tuple[RunTimeline, dict]:
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import CameraInfo

        topics = [image_topic]
        if bag_io.CAMERA_INFO_TOPIC in info.topics:
            topics.append(bag_io.CAMERA_INFO_TOPIC)
        if self.detector:
            topics.append(bag_io.DETECTIONS_TOPIC)
        # With the detector, no prompt at all: every object comes from its detections.
        prompter = threading.Thread(target=self._prompt_loop, args=({} if self.detector else gt,),
                                    daemon=True)
        self.prompts_sent = self.prompts_accepted = 0
        self._done = threading.Event()
        prompter.start()
        start_wall = None
        first_stamp = None
        total = info.topics[image_topic].count
        print(f"[demo] playing {total} frames of {image_topic} at the recorded rate")
        for topic, stamp, _, raw in bag_io.iter_raw_messages(bag, topics):
            if node_proc.poll() is not None:
                raise RuntimeError(f"the tracker node died (exit code {node_proc.returncode})")
            if start_wall is None:
                start_wall, first_stamp = time.monotonic(), stamp
            delay = start_wall + (stamp - first_stamp) / 1e9 - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # keep the bag's own timing, like `ros2 bag play`
            if topic == image_topic:
                msg = deserialize_message(raw, self.image_type)
                header_stamp = stamp_to_ns(msg.header.stamp)
                self.published[header_stamp] = time.monotonic()
                self.image_pub.publish(msg)
            elif topic == bag_io.DETECTIONS_TOPIC:
                self.detections_pub.publish(deserialize_message(raw, self.detection_type))
            else:
                self.info_pub.publish(deserialize_message(raw, CameraInfo))
        last = max(self.published)
        rec = self.recorder
        with rec.new_frame:
            rec.new_frame.wait_for(lambda: last in rec.processed, timeout=60.0)
        # The node reports its engine time once per diagnostics period: wait for one report
        # that covers processed frames, which may come after the last frame's result.
        self.engine_reported.wait(timeout=ENGINE_REPORT_TIMEOUT_S)
        self._done.set()
        prompter.join(timeout=30)
        return self._summarise(gt)

    def _prompt_loop(self, gt: dict[int, np.ndarray]) -> None:
        """Prompt every object once, on the first processed frame where it shows well."""
        pending = sorted({int(i) for labels in gt.values() for i in np.unique(labels) if i})
        seen: set[int] = set()
        while pending and not self._done.is_set():
            for stamp in self._newly_processed(seen):
                labels = gt.get(stamp)
                if labels is not None:
                    pending = [i for i in pending if not self._prompt(i, labels == i, stamp)]
                if not pending:
                    return

    def _newly_processed(self, seen: set[int]) -> list[int]:
        """Stamps of frames the node published results for since the last call (waits for
        one up to a second); adds them to ``seen``."""
        rec = self.recorder
        with rec.new_frame:
            rec.new_frame.wait_for(
                lambda: set(rec.processed) - seen or self._done.is_set(), timeout=1.0
            )
            fresh = sorted(set(rec.processed) - seen)
        seen.update(fresh)
        return fresh

    def _prompt(self, gt_id: int, mask: np.ndarray, stamp: int) -> bool:
        """Prompt one object on one processed frame, as a planner would, if it shows well
        there; returns whether the node accepted it."""
        if int(mask.sum()) < MIN_PROMPT_AREA:
            return False
        request = _prompt_request(self.add_prompt_type, gt_id, mask, stamp)
        response = self._call(request)
        self.prompts_sent += 1
        if response is None or not response.success:
            why = response.message if response is not None else "no answer"
            print(f"[demo] prompt for {request.label} refused: {why}")
            return False
        self.prompts_accepted += 1
        self.gt_ids[response.object_id] = gt_id
        print(
            f"[demo] prompted object {response.object_id} ({request.label}) "
            f"on frame stamp {stamp}: score {response.score:.2f}"
        )
        return True

    def _call(self, request):
        future = self.prompt_client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        done.wait(timeout=60.0)
        return future.result() if future.done() else None

    def _summarise(self, gt: dict[int, np.ndarray]) -> tuple[RunTimeline, dict]:
        rec = self.recorder
        timeline = RunTimeline()
        with rec.lock:
            stamps = sorted(rec.processed)
            if self.detector:
                self.gt_ids = _gt_ids_by_overlap(stamps, rec.label_images, gt)
            for stamp in stamps:
                msg = rec.objects[stamp]
                labels = rec.label_images.get(stamp)
                results = [_as_result(o, labels) for o in msg.objects]
                timeline.add_frame(stamp, results)
                if stamp in self.published:
                    timeline.latencies.append(rec.processed[stamp] - self.published[stamp])
                if stamp in gt and labels is not None:
                    timeline.add_ground_truth(results, gt[stamp], self.gt_ids)
        summary = timeline.summary()
        summary.update(
            {
                "frames_in": len(self.published),
                "frames_processed": len(stamps),
                "frames_dropped": len(self.published) - len(stamps),
                "prompts_sent": self.prompts_sent,
                "prompts_accepted": self.prompts_accepted,
                "engine_frame_ms_median": float(np.median(self.engine_ms))
                if self.engine_ms
                else None,
            }
        )
        return timeline, summary

    def close(self) -> None:
        """Write what was recorded to the output bag, in time order; destroy the node."""
        self.node.destroy_node()
        topics = {
            OBJECTS_TOPIC: bag_io.TRACKED_OBJECT_ARRAY_TYPE,
            MASKS_TOPIC: bag_io.IMAGE_TYPE,
            OVERLAY_TOPIC: bag_io.IMAGE_TYPE,
        }
        if self.vision_recorded:
            topics[DETECTIONS_OUT_TOPIC] = bag_io.DETECTION_ARRAY_TYPE
        with self._bag_lock:
            recorded = sorted(self.recorded, key=lambda item: item[1])
        with bag_io.BagWriter(self.output_bag, topics) as bag:
            for topic, stamp, raw in recorded:
                bag.write_raw(topic, stamp, raw)


def _prompt_request(request_type, gt_id: int, mask: np.ndarray, stamp: int):
    """An AddPrompt request for a new object on the frame ``stamp``: a box around the
    ground-truth mask for BOX_PROMPTED_GT_ID, else a click on its most interior point."""
    from geometry_msgs.msg import Point

    from sam2_ros.imaging.masks import interior_point

    request = request_type.Request(object_id=0, label=f"shape{gt_id}")
    request.stamp.sec, request.stamp.nanosec = divmod(stamp, 1_000_000_000)
    if gt_id == BOX_PROMPTED_GT_ID:
        ys, xs = np.nonzero(mask)
        request.use_box = True
        request.box = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
    else:
        x, y = interior_point(mask)
        request.points = [Point(x=float(x), y=float(y), z=0.0)]
        request.point_labels = [1]
    return request


def _gt_ids_by_overlap(stamps: list[int], label_images: dict[int, np.ndarray],
                       gt: dict[int, np.ndarray]) -> dict[int, int]:
    """Object id -> the ground-truth object its mask covers most on the first frame it
    shows (objects made from detections have no prompt that says which they are)."""
    out: dict[int, int] = {}
    for stamp in stamps:
        labels, truth = label_images.get(stamp), gt.get(stamp)
        if labels is None or truth is None:
            continue
        for object_id in (int(i) for i in np.unique(labels) if i and int(i) not in out):
            under = truth[labels == object_id]
            under = under[under > 0]
            if under.size:
                out[object_id] = int(np.bincount(under).argmax())
    return out


def _as_result(obj, labels: np.ndarray | None) -> ObjectResult:
    """The parts of a TrackedObject the summary needs, with its mask from ~/masks."""
    mask = (labels == obj.id) if labels is not None else np.zeros((0, 0), dtype=bool)
    bbox = (obj.bbox.x_offset, obj.bbox.y_offset, obj.bbox.width, obj.bbox.height)
    predicted = bool(obj.box_predicted)  # bbox is then the motion filter's, not a mask's
    return ObjectResult(
        object_id=obj.id,
        label=obj.label,
        visible=obj.visible,
        presence=obj.presence,
        score=obj.score,
        mask=mask,
        bbox=(0, 0, 0, 0) if predicted else bbox,
        centroid=(obj.centroid_x, obj.centroid_y),
        area=obj.area,
        frames_since_prompt=obj.frames_since_prompt,
        predicted_box=bbox if predicted else None,
    )
