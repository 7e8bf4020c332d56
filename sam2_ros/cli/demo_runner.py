"""`sam2_ros demo`: the product end to end, over real ROS 2 between real processes.

1. make a synthetic camera bag (or take one);
2. start the real ``sam2_tracker`` node as its own process;
3. play the bag's camera topics into it at the recorded rate (``--lockstep``: each frame
   once the node answered the previous one);
4. prompt each object through the node's ``~/add_prompt`` service, as a planner would,
   on a frame the node has processed (named by stamp) where the object is visible; or,
   with ``--detector``, no prompts at all: the bag's synthetic detector messages are
   played on the node's ``detections`` topic and every object comes from them;
5. record what the node publishes into an output bag, and write the overlay video, a
   visibility plot and a summary (frames in, processed, dropped, latency, objects, J&F).

Here: the steps in order and the node's process; the player (3, 5) is demo_player, with
demo_prompter (4), demo_recorder and demo_summary (5) beside it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from sam2_ros import names
from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import choose_image_topic, frame_rate
from sam2_ros.cli.demo_player import Player
from sam2_ros.cli.demo_summary import print_where_and_verdict, write_demo_summary, write_video
from sam2_ros.evaluation.run_summary import RunTimeline
from sam2_ros.evaluation.synthetic_scene import SceneConfig
from sam2_ros.imaging.codec import image_msg_to_array
from sam2_ros.messages import stamp_to_ns
from sam2_ros.settings import TrackerSettings


def node_command(settings: TrackerSettings, image_topic: str, compressed: bool,
                  detections: bool = False, cameras: tuple[str, ...] = ()) -> list[str]:
    """The installed tracker_node executable with the package's parameter file; with
    ``cameras``, a node serving them (on their own ``<camera>/image``, no remap)."""
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
    ] + (["-p", f"cameras:=[{', '.join(cameras)}]"] if cameras else
         ["-r", f"{input_topic}:={image_topic}"]) + (
        ["-p", f"checkpoint:={settings.checkpoint}"] if settings.checkpoint else []) + (
        ["-p", "use_detections:=true",
         "-r", f"{names.DETECTIONS_IN}:={bag_io.DETECTIONS_TOPIC}"] if detections else []
    )  # fmt: skip


def run_demo(args: argparse.Namespace, settings: TrackerSettings) -> int:
    """The demo's steps in order; 0 on success, 1 when the node failed, 2 for a bad bag."""
    from sam2_ros.engine.model_loading import describe_weights, uses_random_weights

    out = args.out or Path("out") / time.strftime("demo-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    detector = bool(getattr(args, "detector", False))
    lockstep = bool(getattr(args, "lockstep", False))
    bag = args.bag or make_scene_bag(args, out / "input_bag")
    info = bag_io.inspect_bag(bag)
    if detector and bag_io.DETECTIONS_TOPIC not in info.topics:
        print(f"[demo] error: {bag} has no {bag_io.DETECTIONS_TOPIC} topic for --detector "
              "(make one with `sam2_ros make-bag --detector`)", file=sys.stderr)
        return 2
    image_topic = choose_image_topic(info, "")
    gt = ground_truth(bag, info)
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
            out, settings, bag, info, image_topic, gt, detector, lockstep)
    except RuntimeError as exc:
        print(f"[demo] error: {exc} (see {out / 'node.log'})", file=sys.stderr)
        return 1
    fps = frame_rate(info, image_topic)
    codec = write_video(out / "overlay.mp4", player.recorder.overlays, fps, summary)
    summary.update(
        {
            "random_weights": uses_random_weights(settings.model, settings.checkpoint),
            "weights": weights,
            "model": settings.model,
            "image_size": settings.image_size,
            "video_codec": codec,
        }
    )
    write_demo_summary(out, bag, settings, weights, fps, summary, timeline)
    print_where_and_verdict(out, summary)
    return 0


def make_scene_bag(args: argparse.Namespace, bag: Path, seed: int = 0,
                   num_objects: int = 3) -> Path:
    """The designed synthetic scene (three shapes, ground truth) as a camera bag; more
    objects add random shapes (drawn from ``seed``): another camera's scene."""
    cfg = SceneConfig(
        width=args.width,
        height=args.height,
        fps=args.fps,
        duration_s=args.duration,
        num_objects=num_objects,
        seed=seed,
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


def ground_truth(bag: Path, info: bag_io.BagInfo) -> dict[int, np.ndarray]:
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
    lockstep: bool = False,
) -> tuple[Player, RunTimeline, dict]:
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
    command = node_command(settings, image_topic, compressed, detector)
    node_proc = subprocess.Popen(command, env=env, stdout=node_log, stderr=subprocess.STDOUT)
    print(f"[demo] started tracker node (pid {node_proc.pid}), log: {out / 'node.log'}")
    rclpy.init()
    executor = MultiThreadedExecutor(num_threads=3)
    player = Player(rclpy, image_topic, compressed, out / "output_bag", detector)
    executor.add_node(player.node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        player.wait_for_node(node_proc)
        timeline, summary = player.play(bag, image_topic, gt, info, node_proc, lockstep)
        return player, timeline, summary
    finally:
        player.close()
        executor.shutdown()
        rclpy.try_shutdown()
        stop_node(node_proc)
        node_log.close()


def stop_node(node_proc: subprocess.Popen) -> None:
    """SIGINT, as a person would stop it; killed if it has not ended within 20 s."""
    if node_proc.poll() is None:
        node_proc.send_signal(signal.SIGINT)
        try:
            node_proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node_proc.kill()
