#!/usr/bin/env python3
"""Several cameras from one node against one node process per camera (docs/benchmarks.md).

For 1, 2 and 3 cameras: one ``sam2_tracker`` process with ``cameras: [cam0, ...]``, then
as many single-camera processes (namespaces ``/cam0`` ...), each camera fed synthetic
320x240 frames (its own scene) faster than either keeps up, one object prompted per camera
through its ``add_prompt``. Per camera and in total: processed frames per second, latency
from publication to ``objects`` (p50, p95); total resident memory of the node processes;
CPU seconds the node processes used per processed frame (on a shared machine more
processes get a larger share of the cores, so frames per CPU second compare fairly).
Run (``sam2_ros`` from the colcon install, with its msg/srv): ``make bench-cameras``, or
``. tools/env.sh && cd /tmp && PYTHONPATH=$PYTHONPATH:$OLDPWD python -m benchmarks.cameras``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.common.machine import load_average, machine_info
from benchmarks.node_latency import NodeProcess, exit_on_termination, stop_all, wait_until


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--layouts", nargs="+", choices=["one", "separate"],
                   default=["one", "separate"],
                   help="one node for all cameras, one process per camera, or both (default)")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--rate", type=float, default=15.0, help="Hz per camera (15)")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds (20)")
    p.add_argument("--settle", type=float, default=3.0, help="seconds after the prompts (3)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--torch-threads", type=int, default=0, help="each node's cpu_threads")
    p.add_argument("--startup-timeout", type=float, default=300.0)
    p.add_argument("--json", default=None, help="write the results here as JSON")
    return p.parse_args(argv)


def camera_frames(index: int, count: int = 60):
    """A camera's frames (its own scene) and a click on its first object."""
    from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene

    cfg = SceneConfig(width=320, height=240, fps=30.0, duration_s=count / 30.0,
                      num_objects=3, seed=index, with_depth=False)
    scene = list(render_scene(cfg))
    ys, xs = np.nonzero(scene[0].labels == 1)
    return [f.rgb for f in scene], (float(np.median(xs)), float(np.median(ys)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Camera:
    """One camera's publisher, result subscription, prompt client and timings."""

    def __init__(self, client, index: int, image_topic: str, base: str) -> None:
        from builtin_interfaces.msg import Time
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sam2_ros.msg import TrackedObjectArray
        from sam2_ros.srv import AddPrompt
        from sensor_msgs.msg import Image

        from sam2_ros.messages import stamp_to_ns

        self._time, self._stamp_to_ns = Time, stamp_to_ns
        self.name = f"cam{index}"
        frames, self.click = camera_frames(index)
        self.messages = []
        for rgb in frames:
            msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                        step=rgb.shape[1] * 3, data=rgb.tobytes())
            msg.header.frame_id = self.name
            self.messages.append(msg)
        best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                                 history=HistoryPolicy.KEEP_LAST)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                              history=HistoryPolicy.KEEP_LAST)
        # Each camera publishes from a participant of its own, as camera drivers do: from
        # one, a round's three 230 kB images overran its shared-memory segment and the
        # first camera's image was often lost before the node took it.
        import rclpy

        self._driver_context = rclpy.Context()
        rclpy.init(context=self._driver_context, domain_id=client.context.get_domain_id())
        self._driver = rclpy.create_node(f"sam2_bench_{self.name}_driver",
                                         context=self._driver_context)
        self.pub = self._driver.create_publisher(Image, image_topic, best_effort)
        self.sub = client.create_subscription(TrackedObjectArray, f"{base}/objects",
                                              self._on_objects, reliable)
        self.prompt = client.create_client(AddPrompt, f"{base}/add_prompt")
        self.add_prompt_type = AddPrompt
        self.published: dict[int, float] = {}
        self.received: dict[int, float] = {}
        self.lock = threading.Lock()

    def close(self) -> None:
        """The camera's own participant."""
        import rclpy

        self._driver.destroy_node()
        rclpy.try_shutdown(context=self._driver_context)

    def _on_objects(self, msg) -> None:
        now = time.monotonic()
        with self.lock:
            self.received.setdefault(self._stamp_to_ns(msg.header.stamp), now)

    def publish(self, i: int) -> None:
        msg = self.messages[i % len(self.messages)]
        now_ns = time.time_ns()
        msg.header.stamp = self._time(sec=now_ns // 10**9, nanosec=now_ns % 10**9)
        with self.lock:
            self.published[now_ns] = time.monotonic()
        self.pub.publish(msg)

    def request(self):
        from geometry_msgs.msg import Point

        request = self.add_prompt_type.Request(object_id=0, label=self.name)
        request.points = [Point(x=self.click[0], y=self.click[1], z=0.0)]
        request.point_labels = [1]
        return request

    def stats(self, start: float, end: float) -> dict:
        with self.lock:
            window = [(s, t) for s, t in self.published.items() if start <= t <= end]
            lat = np.array([self.received[s] - t for s, t in window if s in self.received])
        out = {"published": len(window), "processed": int(lat.size),
               "processed_hz": lat.size / (end - start)}
        if lat.size:
            out.update(latency_p50_s=float(np.percentile(lat, 50)),
                       latency_p95_s=float(np.percentile(lat, 95)))
        return out


def start_nodes(args, client, domain: int, workdir: str, count: int, one_node: bool,
                nodes: list[NodeProcess]) -> list[tuple[Camera, NodeProcess]]:
    """The node processes (into ``nodes`` as each starts, so the caller stops every one
    started should a later one fail) and, per camera, its Camera and its process."""
    from sam2_ros import names

    node_args = argparse.Namespace(image_size=args.image_size, device=args.device,
                                   torch_threads=args.torch_threads, node_arg=[])
    names_ = [f"cam{i}" for i in range(count)]
    if one_node:
        listed = "[" + ", ".join(names_) + "]"
        nodes.append(NodeProcess(node_args, domain, workdir, ["-p", f"cameras:={listed}"]))
        cameras = [Camera(client, i, f"/{n}/image", f"{names.node_fqn()}/{n}")
                   for i, n in enumerate(names_)]
        return list(zip(cameras, nodes * count, strict=True))
    for n in names_:
        nodes.append(NodeProcess(node_args, domain, workdir, ["-r", f"__ns:=/{n}"]))
    cameras = [Camera(client, i, f"/{n}/image", names.node_fqn(n)) for i, n in enumerate(names_)]
    return list(zip(cameras, nodes, strict=True))


def feed(cameras: list[Camera], rate: float, stop: threading.Event) -> None:
    """Publish every camera's next frame at ``rate`` until ``stop``."""
    period, next_t, i = 1.0 / rate, time.monotonic(), 0
    while not stop.is_set():
        for camera in cameras:
            camera.publish(i)
        i += 1
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))


def prompt_all(pairs) -> None:
    """One object on each camera, once its node has published a first result."""
    for camera, node in pairs:
        wait_until(lambda c=camera: len(c.received) > 0, 120, f"{camera.name}'s result", node)
        future = camera.prompt.call_async(camera.request())
        wait_until(future.done, 120, f"{camera.name}'s prompt", node)
        if not future.result().success:
            raise RuntimeError(f"{camera.name}: {future.result().message}")


def measure(args, nodes, cameras: list[Camera], stop: threading.Event) -> dict:
    """The window's numbers: per camera, in total, CPU and memory of the node processes."""
    time.sleep(args.settle)
    start = time.monotonic()
    cpu_start = sum(cpu_seconds(n.proc.pid) for n in nodes)
    time.sleep(args.duration)
    end = time.monotonic()
    cpu_used = sum(cpu_seconds(n.proc.pid) for n in nodes) - cpu_start
    out = {"rss_mib": sum(rss_kib(n.proc.pid) for n in nodes) / 1024,
           "load_average": load_average()}
    stop.set()
    time.sleep(1.0)  # results of frames published before ``end`` still on their way
    per = {c.name: c.stats(start, end) for c in cameras}
    lat = [p.get("latency_p50_s", float("nan")) for p in per.values()]
    out.update(per_camera=per, total_hz=sum(p["processed_hz"] for p in per.values()),
               latency_p50_s_mean=float(np.nanmean(lat)),
               latency_p95_s_max=max(p.get("latency_p95_s", float("nan")) for p in per.values()),
               cpu_s_per_frame=cpu_used / max(1, sum(p["processed"] for p in per.values())),
               cpu_share=cpu_used / (end - start))  # cores' worth the node processes got
    return out


def run_config(args, count: int, one_node: bool) -> dict:
    """One configuration: ``count`` cameras in one node (or one node each)."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    domain = random.Random(os.urandom(8)).randint(1, 101)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    client = rclpy.create_node("sam2_bench_cameras", context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(client)
    threading.Thread(target=executor.spin, daemon=True).start()
    workdir = tempfile.mkdtemp(prefix="sam2_cameras_bench_")
    nodes: list[NodeProcess] = []
    cameras: list[Camera] = []
    stop = threading.Event()
    out: dict = {"cameras": count, "processes": 1 if one_node else count, "one_node": one_node}
    try:
        pairs = start_nodes(args, client, domain, workdir, count, one_node, nodes)
        cameras.extend(c for c, _ in pairs)
        t0 = time.monotonic()
        for camera, node in pairs:
            wait_until(camera.prompt.service_is_ready, args.startup_timeout,
                       f"{camera.name}'s add_prompt", node)
            wait_until(lambda c=camera: c.pub.get_subscription_count() > 0, 60,
                       f"{camera.name}'s image subscription", node)
        out["startup_s"] = time.monotonic() - t0
        threading.Thread(target=feed, args=(cameras, args.rate, stop), daemon=True).start()
        prompt_all(pairs)
        out.update(measure(args, nodes, cameras, stop))
    finally:
        stop.set()
        try:
            stop_all(nodes)  # first: an interrupted cleanup must not leave a node running
        finally:
            executor.shutdown(timeout_sec=2)
            for camera in cameras:
                camera.close()
            client.destroy_node()
            rclpy.try_shutdown(context=context)
            shutil.rmtree(workdir, ignore_errors=True)
    return out


def table(results: list[dict]) -> str:
    """docs/benchmarks.md's rows."""
    rows = ["| cameras | processes | processed fps per camera | total fps | latency p50 / p95 "
            "(s) | CPU s per frame | cores used | RSS total (MiB) | load average |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "per_camera" not in r:
            rows.append(f"| {r['cameras']} | {r['processes']} | failed: {r.get('error')} |"
                        " | | | | | |")
            continue
        per = " / ".join(f"{p['processed_hz']:.2f}" for p in r["per_camera"].values())
        rows.append(f"| {r['cameras']} | {r['processes']} | {per} | {r['total_hz']:.2f} | "
                    f"{r['latency_p50_s_mean']:.2f} / {r['latency_p95_s_max']:.2f} | "
                    f"{r['cpu_s_per_frame']:.2f} | {r['cpu_share']:.2f} | "
                    f"{r['rss_mib']:.0f} | {r['load_average'][0]:.1f} |")
    return "\n".join(rows)


def layouts(args, count: int) -> list[bool]:
    """``one_node`` of each layout to run (for one camera the two are the same)."""
    if count == 1:
        return [True]
    return [one for one in (True, False) if ("one" if one else "separate") in args.layouts]


def main(argv=None) -> int:
    args = parse_args(argv)
    exit_on_termination()  # SIGTERM too stops the node processes (Ctrl-C: finally, atexit)
    machine = machine_info(args.device)
    results = []
    for count in args.cameras:
        for one_node in layouts(args, count):
            label = "one node" if one_node else f"{count} nodes"
            print(f"[cameras] {count} camera(s), {label} ...", flush=True)
            try:
                results.append(run_config(args, count, one_node))
            except Exception as exc:
                results.append({"cameras": count, "processes": 1 if one_node else count,
                                "error": f"{type(exc).__name__}: {exc}"})
            print(table(results[-1:]).splitlines()[-1], flush=True)
    print(f"\n{machine['cpu']}, {machine['cpu_cores']} cores; image_size {args.image_size}, "
          f"{args.rate:g} Hz per camera, {args.duration:g} s measured\n")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "args": vars(args),
                                               "results": results}, indent=1))
    return 0 if all("per_camera" in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
