#!/usr/bin/env python3
"""End-to-end latency of the real sam2_tracker node with a camera faster than the model.

Starts ``python scripts/tracker_node --ros-args -p image_size:=S -p qos_reliability:=
best_effort`` as a subprocess (in its own ROS domain), publishes synthetic camera frames
(sensor_msgs/Image rgb8) on /image at 30 Hz from this process, adds one object with the
/sam2_tracker/add_prompt service, and times every /sam2_tracker/objects message against
the publish time of the frame it carries the stamp of. Before that, the engine alone
(StreamingTracker with the node's settings, same frames and prompt) is timed in this
process, so the node's latency can be read against the model's own per-frame time.

Needs the colcon install on the path: ``. tools/env.sh`` first, and run it from a folder
other than the repository root so ``sam2_ros`` (with its generated msg/srv) comes from the
install tree. Reports only; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

NODE_SCRIPT = common.REPO / "scripts" / "tracker_node"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None, help="write the results here as JSON")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--rate", type=float, default=30.0, help="camera rate in Hz (30)")
    p.add_argument("--duration", type=float, default=30.0,
                   help="seconds of camera after the prompt is applied (30)")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds after the prompt left out of the statistics (2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--engine-frames", type=int, default=20,
                   help="frames for the engine-alone timing (20)")
    p.add_argument("--startup-timeout", type=float, default=180.0)
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch threads of the node (its cpu_threads parameter) and of the "
                        "engine-alone timing; 0 = the node's default (every core)")
    p.add_argument("--node-arg", action="append", default=[],
                   help="extra -p name:=value for the node (repeatable)")
    p.add_argument("--domain-id", type=int, default=None,
                   help="ROS_DOMAIN_ID for the node and this client (default: random 1..101)")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- frames
def render_frames(width: int, height: int, count: int) -> tuple[list[np.ndarray], tuple]:
    from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene

    cfg = SceneConfig(width=width, height=height, fps=30.0, duration_s=count / 30.0,
                      num_objects=3, seed=0, with_depth=False)
    frames, labels0 = [], None
    for frame in render_scene(cfg):
        frames.append(frame.rgb)
        if labels0 is None:
            labels0 = frame.labels
    ys, xs = np.nonzero(labels0 == 1)
    click = (float(np.median(xs)), float(np.median(ys)))
    return frames, click


def engine_alone(args, frames: list[np.ndarray], click) -> dict:
    """StreamingTracker as the node builds it (default hole filling, 1 object)."""

    from sam2_ros.engine.model_loading import build_model
    from sam2_ros.engine.streaming_tracker import StreamingTracker
    from sam2_ros.settings import apply_cpu_threads

    apply_cpu_threads(args.torch_threads)  # the same thread count as the node uses
    loaded = build_model(common.MODEL, None, args.device, "auto", args.image_size)
    tracker = StreamingTracker(loaded)
    tracker.track(frames[0], stamp=1)
    tracker.add_prompt(points=[click], labels=[1])
    times = []
    for i in range(1, args.engine_frames + 1):
        t0 = time.perf_counter()
        tracker.track(frames[i % len(frames)], stamp=1 + i)
        common.sync(loaded.device)
        times.append(time.perf_counter() - t0)
    stats = common.warm_stats(times)
    del tracker, loaded
    gc.collect()
    return stats


# --------------------------------------------------------------------------- the node
class NodeProcess:
    def __init__(self, args, domain_id: int, cwd: str) -> None:
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1",
                   RCUTILS_COLORIZED_OUTPUT="0", ROS_LOG_DIR=cwd)
        params = [f"model:={common.MODEL}", f"image_size:={args.image_size}",
                  "qos_reliability:=best_effort",
                  f"device:={args.device}", f"cpu_threads:={args.torch_threads}",
                  *args.node_arg]
        self.command = [sys.executable, str(NODE_SCRIPT), "--ros-args"]
        for param in params:
            self.command += ["-p", param]
        self.lines: list[str] = []
        self.proc = subprocess.Popen(self.command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.lines[-n:])

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode


def wait_until(predicate, timeout: float, what: str, node: NodeProcess) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if node.proc.poll() is not None:
            raise RuntimeError(f"the node exited ({node.proc.returncode}) while waiting for "
                               f"{what}; its log:\n{node.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}; node log:"
                               f"\n{node.tail()}")
        time.sleep(0.05)


def measure_node(args, frames: list[np.ndarray], click) -> dict:
    import rclpy
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sam2_ros.msg import TrackedObjectArray
    from sam2_ros.srv import AddPrompt
    from sensor_msgs.msg import Image

    from sam2_ros import names
    from sam2_ros.messages import stamp_to_ns

    domain = args.domain_id or random.Random(os.urandom(8)).randint(1, 101)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    client = rclpy.create_node("sam2_bench_camera", context=context)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(client)
    spinner = threading.Thread(target=lambda: _spin(executor), daemon=True)
    spinner.start()

    published: dict[int, float] = {}  # stamp -> monotonic publish time
    received: dict[int, tuple[float, int]] = {}  # stamp -> (monotonic receive time, objects)
    lock = threading.Lock()

    def on_objects(msg) -> None:
        now = time.monotonic()
        with lock:
            received.setdefault(stamp_to_ns(msg.header.stamp), (now, len(msg.objects)))

    camera_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                            history=HistoryPolicy.KEEP_LAST)
    result_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                            history=HistoryPolicy.KEEP_LAST)
    pub = client.create_publisher(Image, "/image", camera_qos)
    client.create_subscription(TrackedObjectArray, names.resolved(names.OBJECTS), on_objects,
                               result_qos)
    diag: dict = {}
    diag_history: list[tuple[float, dict]] = []
    with contextlib.suppress(ImportError):
        from diagnostic_msgs.msg import DiagnosticArray

        def on_diag(msg) -> None:
            for status in msg.status:
                if not names.is_tracker_status(status.name):
                    continue
                values = {kv.key: kv.value for kv in status.values}
                diag.update(values)
                diag_history.append((time.monotonic(), values))

        client.create_subscription(DiagnosticArray, names.DIAGNOSTICS_TOPIC, on_diag, 10)
    prompt_client = client.create_client(AddPrompt, names.resolved(names.ADD_PROMPT))

    messages = []
    for rgb in frames:
        msg = Image()
        msg.header.frame_id = "camera"
        msg.height, msg.width = rgb.shape[:2]
        msg.encoding = "rgb8"
        msg.step = rgb.shape[1] * 3
        msg.data = rgb.tobytes()
        messages.append(msg)

    stop_publishing = threading.Event()

    def camera() -> None:
        period = 1.0 / args.rate
        next_t = time.monotonic()
        i = 0
        while not stop_publishing.is_set():
            msg = messages[i % len(messages)]
            now_ns = time.time_ns()
            msg.header.stamp = Time(sec=now_ns // 1_000_000_000, nanosec=now_ns % 1_000_000_000)
            t = time.monotonic()
            pub.publish(msg)
            with lock:
                published[now_ns] = t
            i += 1
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()  # fell behind: do not burst to catch up

    workdir = tempfile.mkdtemp(prefix="sam2_node_bench_")
    node = NodeProcess(args, domain, workdir)
    out: dict = {"domain_id": domain, "node_command": " ".join(node.command)}
    publisher_thread = threading.Thread(target=camera, daemon=True)
    try:
        t_start = time.monotonic()
        wait_until(lambda: prompt_client.service_is_ready(), args.startup_timeout,
                   "the add_prompt service", node)
        wait_until(lambda: pub.get_subscription_count() > 0, 30, "the node's /image subscription",
                   node)
        wait_until(lambda: client.count_publishers(names.resolved(names.OBJECTS)) > 0, 30,
                   "the node's objects publisher", node)
        out["startup_s"] = time.monotonic() - t_start
        publisher_thread.start()
        wait_until(lambda: len(received) > 0, 60, "a first result for a published frame", node)
        request = AddPrompt.Request()
        request.object_id = 0
        request.label = "bench"
        request.points = [Point(x=click[0], y=click[1], z=0.0)]
        request.point_labels = [1]
        t0 = time.monotonic()
        future = prompt_client.call_async(request)
        wait_until(future.done, 60, "the add_prompt response", node)
        response = future.result()
        out["prompt_s"] = time.monotonic() - t0
        out["prompt_response"] = {"success": response.success, "message": response.message,
                                  "object_id": response.object_id}
        if not response.success:
            raise RuntimeError(f"add_prompt failed: {response.message}")
        measure_from = time.monotonic() + args.settle
        time.sleep(args.settle + args.duration)
        measure_to = time.monotonic()
        stop_publishing.set()
        publisher_thread.join(5)
        deadline = time.monotonic() + 10  # the newest frame is always processed: wait for it
        while time.monotonic() < deadline:
            with lock:
                last_pub = max((s for s, t in published.items() if t <= measure_to), default=0)
                done = any(s >= last_pub for s in received)
            if done:
                break
            time.sleep(0.1)
    finally:
        stop_publishing.set()
        out["node_exit_code"] = node.stop()
        out["node_log_tail"] = node.tail(8)
        executor.shutdown(timeout_sec=2)
        client.destroy_node()
        rclpy.try_shutdown(context=context)
        shutil.rmtree(workdir, ignore_errors=True)

    with lock:
        window = sorted((s, t) for s, t in published.items() if measure_from <= t <= measure_to)
        got = [(t, received[s][0] - t, received[s][1]) for s, t in window if s in received]
    lat = np.array([g[1] for g in got]) if got else np.array([])
    n = len(lat)
    fifth = max(1, n // 5)
    out.update({
        "window_s": measure_to - measure_from,
        "published": len(window),
        "processed": n,
        "dropped": len(window) - n,
        "published_hz": len(window) / max(1e-9, measure_to - measure_from),
        "processed_hz": n / max(1e-9, measure_to - measure_from),
        "objects_in_results": sorted({g[2] for g in got}),
        "node_diagnostics": {k: diag[k] for k in ("frames_received", "frames_processed",
                                                   "frames_dropped") if k in diag},
    })
    # The node's own view (its /diagnostics status, one message per second): tracker time per
    # frame inside the node and the slot-to-published latency, averaged over the window.
    inside = [v for t, v in diag_history if measure_from + 1.0 <= t <= measure_to]
    for key in ("total_ms", "encoder_ms", "memory_attention_ms", "latency_ms",
                "output_rate_hz", "input_rate_hz"):
        vals = [float(v[key]) for v in inside if key in v and float(v[key]) > 0]
        if vals:
            out[f"node_{key}_mean"] = float(np.mean(vals))
    if n:
        out.update({
            "latency_p50_s": float(np.percentile(lat, 50)),
            "latency_p95_s": float(np.percentile(lat, 95)),
            "latency_max_s": float(lat.max()),
            "first_20pct_p50_s": float(np.median(lat[:fifth])),
            "last_20pct_p50_s": float(np.median(lat[-fifth:])),
            "latencies": [(round(g[0] - measure_from, 4), round(g[1], 5)) for g in got],
        })
    return out


def _spin(executor) -> None:
    with contextlib.suppress(Exception):
        executor.spin()


def main(argv=None) -> int:
    args = parse_args(argv)
    from sam2_ros.settings import apply_cpu_threads

    result: dict = {"ok": False, "image_size": args.image_size, "rate_hz": args.rate,
                    "frame_size": [args.width, args.height], "device": args.device,
                    # the count the node picks too (its cpu_threads parameter)
                    "torch_threads": apply_cpu_threads(args.torch_threads),
                    "torch_threads_default": args.torch_threads == 0,
                    "load_average_at_start": common.load_average()}
    try:
        if not NODE_SCRIPT.is_file():
            raise RuntimeError(f"{NODE_SCRIPT} not found")
        frames, click = render_frames(args.width, args.height, 90)
        print(f"[node] engine alone: {args.engine_frames} frames at image_size "
              f"{args.image_size}", flush=True)
        engine = engine_alone(args, frames, click)
        result["engine"] = engine
        result["engine_median_s"] = engine["median_s"]
        result["engine_p95_s"] = engine["p95_s"]
        print(f"[node] engine median {engine['median_s'] * 1000:.0f} ms; starting the node",
              flush=True)
        result.update(measure_node(args, frames, click))
        result["ok"] = result.get("processed", 0) > 0
        if not result["ok"]:
            result["error"] = "no result message matched a published frame"
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["load_average_at_end"] = common.load_average()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    summary = {k: v for k, v in result.items() if k not in ("latencies", "node_log_tail")}
    print(json.dumps(summary, indent=2, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
