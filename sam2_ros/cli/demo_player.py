"""The demo's own ROS node: plays a bag's camera into the tracker node, prompts it and
records what it publishes.

Playback follows the bag's timestamps (``--lockstep``: each frame once the node answered
the previous one); discovery and answers are awaited through events with deadlines.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np

from sam2_ros import names
from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import DETECTIONS_OUT_TOPIC, MASKS_TOPIC, OBJECTS_TOPIC, OVERLAY_TOPIC
from sam2_ros.cli.demo_prompter import Prompter
from sam2_ros.cli.demo_recorder import Recorder
from sam2_ros.cli.demo_summary import summarise
from sam2_ros.evaluation.run_summary import RunTimeline
from sam2_ros.messages import stamp_to_ns

MODEL_START_TIMEOUT_S = 300.0
# How long to wait after the last frame for the node's diagnostics to report its engine
# time: two diagnostics periods of config/tracker.yaml (1 s) and a margin.
ENGINE_REPORT_TIMEOUT_S = 3.0
#: --lockstep: the longest wait for the node's answer to a frame before the next is sent
#: anyway (an answer sent before the node's publisher saw the player's subscription is lost).
LOCKSTEP_WAIT_S = 60.0


class Player:
    """Plays the camera, prompts (``prompter``), records the tracker's topics (``recorder``)."""

    def __init__(self, rclpy, image_topic: str, compressed: bool, output_bag: Path,
                 detector: bool = False, camera: str = "") -> None:
        """``camera``: one of the node's ``cameras`` (its topics and services under
        ``camera/``, the camera's frames published on ``image_topic``); empty for one."""
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.node = rclpy.create_node("sam2_demo_player" + (f"_{camera}" if camera else ""))
        self.detector = detector
        self.output_bag = output_bag
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._create_publishers(image_topic, compressed, camera, qos)
        prefix = names.camera_prefix(camera)
        status = (names.camera_status_name(names.node_fqn(), camera) if camera
                  else names.diagnostics_status_name(names.node_fqn()))
        group = ReentrantCallbackGroup()
        self.recorder = Recorder(status_name=status)
        topics = {k: names.resolved(prefix + name) for k, name in (
            (OBJECTS_TOPIC, names.OBJECTS), (MASKS_TOPIC, names.MASKS),
            (OVERLAY_TOPIC, names.OVERLAY), (DETECTIONS_OUT_TOPIC, names.DETECTIONS_OUT))}
        self.objects_sub = self.recorder.subscribe(self.node, topics, qos, group)
        self.prompter = Prompter(self.node, names.resolved(prefix + names.ADD_PROMPT), group,
                                 self.recorder)
        self.published: dict[int, float] = {}  # camera frame stamp -> when it was published

    def _create_publishers(self, image_topic: str, compressed: bool, camera: str,
                           qos) -> None:
        """The camera's image and info, and with ``detector`` the synthetic detections."""
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        self.image_type = CompressedImage if compressed else Image
        self.image_pub = self.node.create_publisher(self.image_type, image_topic, qos)
        info_topic = (f"/{names.camera_prefix(camera)}camera_info" if camera
                      else bag_io.CAMERA_INFO_TOPIC)
        self.info_pub = self.node.create_publisher(CameraInfo, info_topic, qos)
        if self.detector:
            from vision_msgs.msg import Detection2DArray

            self.detection_type = Detection2DArray
            self.detections_pub = self.node.create_publisher(
                Detection2DArray, bag_io.DETECTIONS_TOPIC, qos)

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
            if ready and self.prompter.client.wait_for_service(timeout_sec=0.5):
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
        lockstep: bool = False,
    ) -> tuple[RunTimeline, dict]:
        """Play the bag, prompting meanwhile; after the node's last answer, the run's
        timeline and summary."""
        topics = [image_topic]
        if bag_io.CAMERA_INFO_TOPIC in info.topics:
            topics.append(bag_io.CAMERA_INFO_TOPIC)
        if self.detector:
            topics.append(bag_io.DETECTIONS_TOPIC)
        # With the detector, no prompt at all: every object comes from its detections.
        self.prompter.start({} if self.detector else gt)
        total = info.topics[image_topic].count
        print(f"[demo] playing {total} frames of {image_topic} at the recorded rate")
        self._publish_bag(bag, topics, image_topic, node_proc, lockstep)
        last = max(self.published)
        rec = self.recorder
        with rec.new_frame:
            rec.new_frame.wait_for(lambda: last in rec.processed, timeout=60.0)
        # The node reports its engine time once per diagnostics period: wait for one report
        # that covers processed frames, which may come after the last frame's result.
        rec.engine_reported.wait(timeout=ENGINE_REPORT_TIMEOUT_S)
        prompter = self.prompter
        prompter.stop()
        gt_ids = None if self.detector else prompter.gt_ids
        return summarise(rec, self.published, gt, gt_ids, (prompter.sent, prompter.accepted))

    def _publish_bag(self, bag: Path, topics: list[str], image_topic: str,
                     node_proc: subprocess.Popen, lockstep: bool) -> None:
        """Every message of ``topics`` at the bag's own timing, like `ros2 bag play`."""
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import CameraInfo

        start_wall = first_stamp = None
        for topic, stamp, _, raw in bag_io.iter_raw_messages(bag, topics):
            if node_proc.poll() is not None:
                raise RuntimeError(f"the tracker node died (exit code {node_proc.returncode})")
            if start_wall is None:
                start_wall, first_stamp = time.monotonic(), stamp
            delay = start_wall + (stamp - first_stamp) / 1e9 - time.monotonic()
            if delay > 0 and not lockstep:
                time.sleep(delay)
            if topic == image_topic:
                msg = deserialize_message(raw, self.image_type)
                header_stamp = stamp_to_ns(msg.header.stamp)
                self.published[header_stamp] = time.monotonic()
                self.image_pub.publish(msg)
                if lockstep:
                    self._wait_for_answer(header_stamp, node_proc)
            elif topic == bag_io.DETECTIONS_TOPIC:
                self.detections_pub.publish(deserialize_message(raw, self.detection_type))
            else:
                self.info_pub.publish(deserialize_message(raw, CameraInfo))

    def _wait_for_answer(self, stamp: int, node_proc: subprocess.Popen) -> None:
        """--lockstep: until the node published its results for ``stamp`` (bounded)."""
        rec = self.recorder
        with rec.new_frame:
            answered = rec.new_frame.wait_for(
                lambda: stamp in rec.processed or node_proc.poll() is not None,
                timeout=LOCKSTEP_WAIT_S,
            )
        if not answered:
            print(f"[demo] lockstep: no answer to the frame stamped {stamp} within "
                  f"{LOCKSTEP_WAIT_S:.0f} s; sending the next")

    def close(self) -> None:
        """Destroy the node, then write what was recorded to the output bag."""
        self.node.destroy_node()
        self.recorder.write_bag(self.output_bag)
