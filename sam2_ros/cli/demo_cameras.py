"""`sam2_ros demo --cameras N`: N synthetic cameras into one tracker node.

Camera i plays its own scene (the designed one plus i random shapes) on
``/<camera>/image`` of a node started with ``cameras: [cam0, cam1, ...]``; each camera's
objects are prompted through its own ``~/<camera>/add_prompt`` and its outputs recorded
from ``~/<camera>/...``. The summary has a section per camera and the overlay video shows
the cameras side by side (frame k of each camera's ``~/<camera>/overlay`` beside the
others').
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import choose_image_topic, frame_rate
from sam2_ros.bags.video import VideoOutput
from sam2_ros.cli.demo_player import Player
from sam2_ros.cli.demo_runner import ground_truth, make_scene_bag, node_command, stop_node
from sam2_ros.engine.model_loading import describe_weights
from sam2_ros.evaluation.run_summary import verdict_line, write_summary
from sam2_ros.settings import TrackerSettings


def run_camera_demo(args: argparse.Namespace, settings: TrackerSettings) -> int:
    """The multi-camera demo; 0 on success, 1 when the node failed."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    out = args.out or Path("out") / time.strftime("demo-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    cameras = tuple(f"cam{i}" for i in range(args.cameras))
    bags = {c: make_scene_bag(args, out / f"input_bag_{c}", seed=i, num_objects=3 + i)
            for i, c in enumerate(cameras)}
    print(f"[demo] {len(cameras)} cameras into one node: {', '.join(cameras)}; "
          f"{describe_weights(settings.model, settings.checkpoint)}")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    node_log = open(out / "node.log", "w")  # noqa: SIM115 - closed in finally
    node_proc = subprocess.Popen(node_command(settings, "", False, cameras=cameras),
                                 stdout=node_log, stderr=subprocess.STDOUT)
    print(f"[demo] started tracker node (pid {node_proc.pid}), log: {out / 'node.log'}")
    rclpy.init()
    executor = MultiThreadedExecutor(num_threads=4)
    players = {c: Player(rclpy, f"/{c}/image", False, out / f"output_bag_{c}", camera=c)
               for c in cameras}
    for player in players.values():
        executor.add_node(player.node)
    threading.Thread(target=executor.spin, daemon=True).start()
    results: dict[str, tuple] = {}
    try:
        for player in players.values():
            player.wait_for_node(node_proc)
        threads = [threading.Thread(target=_play, args=(c, players[c], bags[c], node_proc,
                                                        results)) for c in cameras]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        missing = [c for c in cameras if not isinstance(results.get(c), tuple)]
        if missing:
            print(f"[demo] error: {missing}: {[results.get(c) for c in missing]}")
            return 1
    finally:
        for player in players.values():
            player.close()
        executor.shutdown()
        rclpy.try_shutdown()
        stop_node(node_proc)
        node_log.close()
    _write_outputs(out, cameras, players, bags, results)
    return 0


def _play(camera: str, player: Player, bag: Path, node_proc, results: dict) -> None:
    info = bag_io.inspect_bag(bag)
    topic = choose_image_topic(info, "")
    try:
        results[camera] = player.play(bag, topic, ground_truth(bag, info), info, node_proc)
    except RuntimeError as exc:
        results[camera] = str(exc)


def _write_outputs(out: Path, cameras, players, bags, results) -> None:
    """summary.md|json (a section per camera) and overlay.mp4 (cameras side by side)."""
    sections = ["# sam2_ros demo: one node, several cameras", ""]
    for camera in cameras:
        _timeline, cam = results[camera]
        note = (f"Camera {camera} (`{bags[camera]}`): frames in {cam['frames_in']}, processed "
                f"{cam['frames_processed']}, dropped {cam['frames_dropped']}; prompts accepted "
                f"{cam['prompts_accepted']} of {cam['prompts_sent']} through "
                f"~/{camera}/add_prompt.")
        write_summary(cam, out, f"summary_{camera}", f"camera {camera}", [note])
        sections += [(out / f"summary_{camera}.md").read_text().replace("# camera", "## camera"),
                     f"[demo] {camera}: {verdict_line(cam)}", ""]
    (out / "summary.md").write_text("\n".join(sections))
    (out / "summary.json").write_text(json.dumps(
        {c: results[c][1] for c in cameras}, indent=2, default=str) + "\n")
    info = bag_io.inspect_bag(bags[cameras[0]])
    fps = frame_rate(info, choose_image_topic(info, ""))
    strips = [[bgr for _, bgr in sorted(players[c].recorder.overlays, key=lambda o: o[0])]
              for c in cameras]
    with VideoOutput(out / "overlay.mp4", fps / max(1, len(cameras))) as video:
        for k in range(max((len(s) for s in strips), default=0)):
            frames = [s[min(k, len(s) - 1)] for s in strips if s]
            height = max(f.shape[0] for f in frames)
            video.write(np.hstack([np.pad(f, ((0, height - f.shape[0]), (0, 0), (0, 0)))
                                   for f in frames]))
    print((out / "summary.md").read_text())
    print(f"[demo] overlay video (cameras side by side): {out / 'overlay.mp4'}")
