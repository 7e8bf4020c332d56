"""End-to-end latency of the real sam2_tracker node with a camera faster than the model.

Starts ``python scripts/tracker_node --ros-args -p image_size:=S -p qos_reliability:=
best_effort`` as a subprocess (in its own ROS domain), publishes synthetic camera frames
(sensor_msgs/Image rgb8) on /image at 30 Hz from this process, adds one object with the
/sam2_tracker/add_prompt service, and times every /sam2_tracker/objects message against
the publish time of the frame it carries the stamp of. Before that, the engine alone
(StreamingTracker with the node's settings, same frames and prompt) is timed in this
process, so the node's latency can be read against the model's own per-frame time.

``sam2_ros`` must come from the colcon install, which holds the generated msg/srv, so run
it outside the repository root with the root appended to the path (run.py does so):
``. tools/env.sh && cd /tmp && PYTHONPATH=$PYTHONPATH:$OLDPWD python -m benchmarks.node_latency``.
Reports only; asserts nothing.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import importlib.util
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

import sam2_ros
from benchmarks.common.engines import MODEL, sync
from benchmarks.common.machine import load_average
from benchmarks.common.runner import REPO
from benchmarks.common.stats import warm_stats
from sam2_ros import names
from sam2_ros.messages import stamp_to_ns

NODE_SCRIPT = REPO / "scripts" / "tracker_node"


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
                   help="frames for the engine-alone timing (20; at least 3, the first 2 "
                        "are warm-up)")
    p.add_argument("--startup-timeout", type=float, default=180.0)
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch threads of the node (its cpu_threads parameter) and of the "
                        "engine-alone timing; 0 = the node's default (every core)")
    p.add_argument("--node-arg", action="append", default=[],
                   help="extra -p name:=value for the node (repeatable)")
    p.add_argument("--domain-id", type=int, default=None,
                   help="ROS_DOMAIN_ID for the node and this client (default: random 1..101)")
    args = p.parse_args(argv)
    if args.engine_frames < 3:
        p.error("--engine-frames must be at least 3: the first 2 frames are warm-up")
    return args


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
    loaded = build_model(MODEL, None, args.device, "auto", args.image_size)
    tracker = StreamingTracker(loaded)
    tracker.track(frames[0], stamp=1)
    tracker.add_prompt(points=[click], labels=[1])
    times = []
    for i in range(1, args.engine_frames + 1):
        t0 = time.perf_counter()
        tracker.track(frames[i % len(frames)], stamp=1 + i)
        sync(loaded.device)
        times.append(time.perf_counter() - t0)
    stats = warm_stats(times)
    del tracker, loaded
    gc.collect()
    return stats


# --------------------------------------------------------------------------- the node
#: Node processes started and not yet stopped; whatever ends this process, ``atexit`` kills
#: them (each runs in a session of its own, so a terminal's Ctrl-C never reaches them).
_LIVE: set[NodeProcess] = set()


@contextlib.contextmanager
def signals_held(signums=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)):
    """Hold Ctrl-C and termination back while a node is spawned, then deliver them: an
    interrupt that lands inside ``Popen`` would leave a started node unknown to the cleanup."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are only ever handled in the main thread
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: pending.append(signum))
                for s in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in pending:
            signal.raise_signal(signum)


class NodeProcess:
    def __init__(self, args, domain_id: int, cwd: str, ros_args=()) -> None:
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1",
                   RCUTILS_COLORIZED_OUTPUT="0", ROS_LOG_DIR=cwd)
        params = [f"model:={MODEL}", f"image_size:={args.image_size}",
                  "qos_reliability:=best_effort",
                  f"device:={args.device}", f"cpu_threads:={args.torch_threads}",
                  *args.node_arg]
        self.command = [sys.executable, str(NODE_SCRIPT), "--ros-args"]
        for param in params:
            self.command += ["-p", param]
        self.command += list(ros_args)  # e.g. a namespace: "-r", "__ns:=/cam0"
        self.lines: list[str] = []
        with signals_held():  # started and registered, or neither
            self.proc = subprocess.Popen(self.command, cwd=cwd, env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True, bufsize=1, start_new_session=True)
            _LIVE.add(self)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.lines[-n:])

    def interrupt(self) -> None:
        """SIGINT, as Ctrl-C would (the node shuts down cleanly)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def stop(self) -> int | None:
        """SIGINT, then SIGKILL to its process group if it has not exited within 15 s
        (killed too when the wait is interrupted)."""
        try:
            self.interrupt()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        finally:
            self.kill()
        self._reader.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL to the node's process group unless it has exited; no longer live."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        _LIVE.discard(self)


def stop_all(nodes) -> None:
    """Stop every node: SIGINT to all first (they shut down side by side), then each
    waited for; whatever interrupts the waits (a second Ctrl-C), the rest are killed."""
    for node in nodes:
        node.interrupt()
    try:
        for node in nodes:
            node.stop()
    finally:
        for node in nodes:
            node.kill()


@atexit.register
def _kill_live_nodes() -> None:
    for node in list(_LIVE):
        node.kill()


def exit_on_termination() -> None:
    """SIGTERM and SIGHUP raise SystemExit (in the main thread), so ``finally`` blocks and
    ``atexit`` stop the nodes; by default Python dies of them running neither."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))


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


class _Client:
    """This process's ROS side: the camera publisher and what comes back from the node.

    Keeps, under one lock, each published frame's stamp and publish time, each result's
    receive time and object count, and the node's /diagnostics values over time.
    """

    def __init__(self, domain: int) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sam2_ros.msg import TrackedObjectArray
        from sam2_ros.srv import AddPrompt
        from sensor_msgs.msg import Image

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("sam2_bench_camera", context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=3, context=self.context)
        self.executor.add_node(self.node)
        threading.Thread(target=lambda: _spin(self.executor), daemon=True).start()
        self.published: dict[int, float] = {}  # stamp -> monotonic publish time
        self.received: dict[int, tuple[float, int]] = {}  # stamp -> (receive time, objects)
        self.diag: dict = {}
        self.diag_history: list[tuple[float, dict]] = []
        self.lock = threading.Lock()
        self.stop_publishing = threading.Event()
        camera_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                                history=HistoryPolicy.KEEP_LAST)
        result_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                                history=HistoryPolicy.KEEP_LAST)
        self.pub = self.node.create_publisher(Image, "/image", camera_qos)
        self.node.create_subscription(TrackedObjectArray, names.resolved(names.OBJECTS),
                                      self._on_objects, result_qos)
        with contextlib.suppress(ImportError):
            from diagnostic_msgs.msg import DiagnosticArray

            self.node.create_subscription(DiagnosticArray, names.DIAGNOSTICS_TOPIC,
                                          self._on_diag, 10)
        self.prompt_client = self.node.create_client(AddPrompt,
                                                     names.resolved(names.ADD_PROMPT))

    def _on_objects(self, msg) -> None:
        now = time.monotonic()
        with self.lock:
            self.received.setdefault(stamp_to_ns(msg.header.stamp), (now, len(msg.objects)))

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if not names.is_tracker_status(status.name):
                continue
            values = {kv.key: kv.value for kv in status.values}
            self.diag.update(values)
            self.diag_history.append((time.monotonic(), values))

    def camera(self, messages: list, rate: float) -> None:
        """Publish ``messages`` round and round at ``rate`` Hz, stamped now, until stopped."""
        from builtin_interfaces.msg import Time

        period = 1.0 / rate
        next_t = time.monotonic()
        i = 0
        while not self.stop_publishing.is_set():
            msg = messages[i % len(messages)]
            now_ns = time.time_ns()
            msg.header.stamp = Time(sec=now_ns // 1_000_000_000, nanosec=now_ns % 1_000_000_000)
            t = time.monotonic()
            self.pub.publish(msg)
            with self.lock:
                self.published[now_ns] = t
            i += 1
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()  # fell behind: do not burst to catch up

    def newest_answered(self, until: float) -> bool:
        """Whether the newest frame published by ``until`` has its result."""
        with self.lock:
            last_pub = max((s for s, t in self.published.items() if t <= until), default=0)
            return any(s >= last_pub for s in self.received)

    def close(self) -> None:
        self.stop_publishing.set()
        self.executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        import rclpy

        rclpy.try_shutdown(context=self.context)


def _image_messages(frames: list[np.ndarray]) -> list:
    """The frames as rgb8 sensor_msgs/Image, built once before the clock starts."""
    from sensor_msgs.msg import Image

    messages = []
    for rgb in frames:
        msg = Image()
        msg.header.frame_id = "camera"
        msg.height, msg.width = rgb.shape[:2]
        msg.encoding = "rgb8"
        msg.step = rgb.shape[1] * 3
        msg.data = rgb.tobytes()
        messages.append(msg)
    return messages


def _prompt(client: _Client, node: NodeProcess, click, out: dict) -> None:
    """Add one object at ``click`` through the node's add_prompt service."""
    from geometry_msgs.msg import Point
    from sam2_ros.srv import AddPrompt

    request = AddPrompt.Request()
    request.object_id = 0
    request.label = "bench"
    request.points = [Point(x=click[0], y=click[1], z=0.0)]
    request.point_labels = [1]
    t0 = time.monotonic()
    future = client.prompt_client.call_async(request)
    wait_until(future.done, 60, "the add_prompt response", node)
    response = future.result()
    out["prompt_s"] = time.monotonic() - t0
    out["prompt_response"] = {"success": response.success, "message": response.message,
                              "object_id": response.object_id}
    if not response.success:
        raise RuntimeError(f"add_prompt failed: {response.message}")


def _run_camera(args, client: _Client, node: NodeProcess, frames, click,
                out: dict) -> tuple[float, float]:
    """Wait for the node, start the camera, prompt, and run; returns the measured window."""
    t_start = time.monotonic()
    wait_until(lambda: client.prompt_client.service_is_ready(), args.startup_timeout,
               "the add_prompt service", node)
    wait_until(lambda: client.pub.get_subscription_count() > 0, 30,
               "the node's /image subscription", node)
    wait_until(lambda: client.node.count_publishers(names.resolved(names.OBJECTS)) > 0, 30,
               "the node's objects publisher", node)
    out["startup_s"] = time.monotonic() - t_start
    publisher = threading.Thread(target=client.camera,
                                 args=(_image_messages(frames), args.rate), daemon=True)
    publisher.start()
    wait_until(lambda: len(client.received) > 0, 60, "a first result for a published frame",
               node)
    _prompt(client, node, click, out)
    measure_from = time.monotonic() + args.settle
    time.sleep(args.settle + args.duration)
    measure_to = time.monotonic()
    client.stop_publishing.set()
    publisher.join(5)
    deadline = time.monotonic() + 10  # the newest frame is always processed: wait for it
    while time.monotonic() < deadline and not client.newest_answered(measure_to):
        time.sleep(0.1)
    return measure_from, measure_to


def _summary(client: _Client, measure_from: float, measure_to: float) -> dict:
    """Frames published, processed and dropped in the window, and their latencies."""
    with client.lock:
        window = sorted((s, t) for s, t in client.published.items()
                        if measure_from <= t <= measure_to)
        got = [(t, client.received[s][0] - t, client.received[s][1]) for s, t in window
               if s in client.received]
    lat = np.array([g[1] for g in got]) if got else np.array([])
    n = len(lat)
    seconds = max(1e-9, measure_to - measure_from)
    out = {
        "window_s": measure_to - measure_from,
        "published": len(window),
        "processed": n,
        "dropped": len(window) - n,
        "published_hz": len(window) / seconds,
        "processed_hz": n / seconds,
        "objects_in_results": sorted({g[2] for g in got}),
        "node_diagnostics": {k: client.diag[k] for k in ("frames_received",
                                                          "frames_processed",
                                                          "frames_dropped") if k in client.diag},
    }
    # The node's own view (its /diagnostics status, one message per second): tracker time per
    # frame inside the node and the slot-to-published latency, averaged over the window.
    inside = [v for t, v in client.diag_history if measure_from + 1.0 <= t <= measure_to]
    for key in ("total_ms", "encoder_ms", "memory_attention_ms", "latency_ms",
                "output_rate_hz", "input_rate_hz"):
        vals = [float(v[key]) for v in inside if key in v and float(v[key]) > 0]
        if vals:
            out[f"node_{key}_mean"] = float(np.mean(vals))
    if n:
        fifth = max(1, n // 5)
        out.update({
            "latency_p50_s": float(np.percentile(lat, 50)),
            "latency_p95_s": float(np.percentile(lat, 95)),
            "latency_max_s": float(lat.max()),
            "first_20pct_p50_s": float(np.median(lat[:fifth])),
            "last_20pct_p50_s": float(np.median(lat[-fifth:])),
            "latencies": [(round(g[0] - measure_from, 4), round(g[1], 5)) for g in got],
        })
    return out


def measure_node(args, frames: list[np.ndarray], click) -> dict:
    """Start the node in a ROS domain of its own, feed it the camera and time its results."""
    domain = args.domain_id or random.Random(os.urandom(8)).randint(1, 101)
    client = _Client(domain)
    workdir = tempfile.mkdtemp(prefix="sam2_node_bench_")
    node = NodeProcess(args, domain, workdir)
    out: dict = {"domain_id": domain, "node_command": " ".join(node.command)}
    try:
        window = _run_camera(args, client, node, frames, click, out)
    finally:
        client.stop_publishing.set()
        out["node_exit_code"] = node.stop()
        out["node_log_tail"] = node.tail(8)
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)
    out.update(_summary(client, *window))
    return out


def _spin(executor) -> None:
    with contextlib.suppress(Exception):
        executor.spin()


def main(argv=None) -> int:
    args = parse_args(argv)
    exit_on_termination()
    from sam2_ros.settings import apply_cpu_threads

    result: dict = {"ok": False, "image_size": args.image_size, "rate_hz": args.rate,
                    "frame_size": [args.width, args.height], "device": args.device,
                    # the count the node picks too (its cpu_threads parameter)
                    "torch_threads": apply_cpu_threads(args.torch_threads),
                    "torch_threads_default": args.torch_threads == 0,
                    "load_average_at_start": load_average()}
    try:
        if not NODE_SCRIPT.is_file():
            raise RuntimeError(f"{NODE_SCRIPT} not found")
        if importlib.util.find_spec("sam2_ros.msg") is None:
            raise RuntimeError(f"sam2_ros here ({sam2_ros.__file__}) has no generated msg/srv: "
                               "run outside the repository root with the colcon install "
                               "first on the path (see this module's docstring)")
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
    result["load_average_at_end"] = load_average()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    summary = {k: v for k, v in result.items() if k not in ("latencies", "node_log_tail")}
    print(json.dumps(summary, indent=2, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
