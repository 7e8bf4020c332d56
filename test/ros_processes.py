"""Helpers for tests that run the real node in a subprocess and talk to it with real rclpy.

Everything waits for events (log lines, matched endpoints, messages, futures) with a
deadline, never for a fixed time; a failed wait says what it waited for and shows the tail
of the node's log.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from sam2_ros.messages import stamp_to_ns

REPO = Path(__file__).resolve().parents[1]
NODE_SCRIPT = REPO / "scripts" / "tracker_node"
#: The bound on a node process's start (Python, torch, the model) on a machine shared with
#: other jobs; a process that exits ends a wait on its log at once.
START_WAIT = 300.0
RELIABLE = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)


def unique_domain_and_namespace(prefix: str) -> tuple[int, str]:
    """A random ROS_DOMAIN_ID (1..200) and a namespace unlikely to clash with other runs."""
    rng = random.Random(os.urandom(8))
    return rng.randint(1, 200), f"/{prefix}_{os.getpid()}_{rng.randrange(1 << 30):x}"


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    poll: float = 0.01,
    progress: Callable[[], object] | None = None,
) -> object:
    """Poll ``predicate`` until it is truthy (graph queries have no event to wait on).

    With ``progress`` (e.g. how many answers came), ``timeout`` counts from its last
    change: a long queue on a busy machine may take long, but must keep moving.
    """
    deadline = time.monotonic() + timeout
    last = progress() if progress else None
    while True:
        value = predicate()
        if value:
            return value
        if progress and (now := progress()) != last:
            last, deadline = now, time.monotonic() + timeout
        if time.monotonic() > deadline:
            stalled = f" (stalled at {last})" if progress else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{stalled}")
        time.sleep(poll)


class NodeProcess:
    """The tracker node started as ``python scripts/tracker_node --ros-args ...``, or any
    other ROS command line (``command``, e.g. ``ros2 launch ...``) with the same log waits."""

    def __init__(
        self,
        ros_args: Sequence[str],
        domain_id: int,
        cwd: Path,
        script: Path = NODE_SCRIPT,
        command: Sequence[str] | None = None,
    ) -> None:
        env = dict(os.environ)
        env.update(
            ROS_DOMAIN_ID=str(domain_id),
            PYTHONUNBUFFERED="1",
            RCUTILS_LOGGING_BUFFERED_STREAM="0",
            RCUTILS_COLORIZED_OUTPUT="0",
            OMP_NUM_THREADS="1",  # tiny model and frames: threads only add contention
        )
        self.command = (
            list(command)
            if command is not None
            else [sys.executable, str(script), "--ros-args", *ros_args]
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            self.command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # A command (ros2 launch) gets its own process group, which stop() signals as a
            # terminal's Ctrl-C does: launch expects its nodes to get the SIGINT too.
            start_new_session=command is not None,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def log(self, since: int = 0) -> str:
        with self._cond:
            return "\n".join(self.lines[since:])

    def tail(self, count: int = 40) -> str:
        with self._cond:
            return "\n".join(self.lines[-count:])

    def wait_for_log(self, pattern: str, timeout: float = 30.0, since: int = 0) -> str:
        """Wait for a log line (after line ``since``) matching the regex; returns it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[since:]:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    state = "running" if self.proc.poll() is None else f"exited {self.proc.poll()}"
                    raise AssertionError(
                        f"no node log line matching {pattern!r} within {timeout:.0f} s "
                        f"(node {state}); log tail:\n{self.tail()}"
                    )
                self._cond.wait(min(left, 0.5))

    def wait_ready(self, timeout: float = START_WAIT) -> str:
        """Until the tracker node says it tracks (model loaded, topics and services up)."""
        return self.wait_for_log(r"ready: tracking frames", timeout)

    def count(self, pattern: str, since: int = 0) -> int:
        regex = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self.lines[since:] if regex.search(line))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGINT, as Ctrl-C would; kill only if it does not exit (releasing the model and
        leaving Python takes seconds on a busy machine)."""
        if self.proc.poll() is None:
            self._signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode


    def _signal(self, signum: int) -> None:
        """To the process, or to its whole group when it leads one (no orphan left)."""
        if os.getpgid(self.proc.pid) == self.proc.pid:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)


class Inbox:
    """Messages received on one topic, with waits on their content."""

    def __init__(self) -> None:
        self.messages: list = []
        self._cond = threading.Condition()

    def __call__(self, msg) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[object], bool], timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self.messages:
                    if predicate(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout:.0f} s waiting for {what} "
                        f"({len(self.messages)} messages received)"
                    )
                self._cond.wait(left)

    def with_stamp(self, stamp_ns: int, timeout: float = 30.0):
        return self.wait_for(
            lambda m: stamp_of(m.header) == stamp_ns, timeout, f"a message stamped {stamp_ns}"
        )

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()


def stamp_of(header) -> int:
    return stamp_to_ns(header.stamp)


class RosClient:
    """A test-side rclpy node in its own context, spun by a background executor."""

    def __init__(self, domain_id: int, name: str = "sam2_test_client") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # shutdown while spinning
            self.executor.spin()

    def subscribe(self, msg_type, topic: str, qos: QoSProfile = RELIABLE) -> Inbox:
        inbox = Inbox()
        inbox.subscription = self.node.create_subscription(msg_type, topic, inbox, qos)
        return inbox

    def publisher(self, msg_type, topic: str, qos: QoSProfile = RELIABLE):
        return self.node.create_publisher(msg_type, topic, qos)

    def client(self, srv_type, name: str, timeout: float = 60.0, depth: int | None = None):
        """A service client; the default service QoS (as `ros2 service call` and most
        clients use) unless ``depth``: a client keeping more requests in flight than the
        default history (10) holds needs a deeper one, or DDS may drop its requests or
        their answers."""
        if depth is None:
            client = self.node.create_client(srv_type, name)
        else:
            qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                             history=HistoryPolicy.KEEP_LAST)
            client = self.node.create_client(srv_type, name, qos_profile=qos)
        if not client.wait_for_service(timeout_sec=timeout):
            raise AssertionError(f"service {name} not available within {timeout:.0f} s")
        return client

    @staticmethod
    def wait_for_matches(publishers: Sequence = (), inboxes: Sequence[Inbox] = (),
                         timeout: float = 60.0) -> None:
        """Until our side sees the node's end of each topic: a subscription for each of our
        publishers, a publisher for each inbox (see publish_until_answered for the rest)."""
        for pub in publishers:
            wait_until(lambda p=pub: p.get_subscription_count() > 0, timeout,
                       f"the node's subscription to {pub.topic_name}")
        for inbox in inboxes:
            wait_until(lambda i=inbox: i.subscription.get_publisher_count() > 0, timeout,
                       f"the node's {inbox.subscription.topic_name} publisher")

    @staticmethod
    def call(client, request, timeout: float = 60.0):
        return RosClient.call_all([(client, request)], timeout)[0]

    @staticmethod
    def call_all(calls: Sequence[tuple[object, object]], timeout: float = 60.0) -> list:
        """Send every (client, request) at once with call_async; wait for all the answers,
        each within ``timeout`` of the one before (a busy machine answers a long queue
        slowly, but it must keep answering)."""
        done = threading.Semaphore(0)
        futures = []
        for client, request in calls:
            future = client.call_async(request)
            future.add_done_callback(lambda _f: done.release())
            futures.append(future)
        for _ in futures:
            if not done.acquire(timeout=timeout):
                answered = sum(f.done() for f in futures)
                names = sorted({c.srv_name for c, _ in calls})
                raise AssertionError(
                    f"only {answered} of {len(futures)} calls to {names} answered, "
                    f"none more for {timeout:.0f} s"
                )
        return [f.result() for f in futures]

    @staticmethod
    def publish_until_answered(
        publish: Callable[[int], object],
        inboxes: Sequence[Inbox],
        first_stamp: int,
        what: str,
        timeout: float = 120.0,
        step_ns: int = 1_000_000,
    ) -> list:
        """Publish a frame (``publish(stamp)``), again under a new stamp after a growing pause,
        until every inbox holds the node's answer to one of them; returns those answers.

        DDS matches the two ends of a topic one side at a time: an answer the node publishes
        before its publisher has matched our subscription is never delivered, although our
        side already sees the publisher. The first frame after discovery therefore proves
        that the path works both ways, and is sent again rather than awaited forever.
        """
        sent: list[int] = []
        deadline = time.monotonic() + timeout
        patience = 2.0
        while True:
            sent.append(first_stamp + len(sent) * step_ns)
            publish(sent[-1])
            pause_ends = min(deadline, time.monotonic() + patience)
            try:
                return [
                    inbox.wait_for(lambda m: stamp_of(m.header) in sent,
                                   max(0.0, pause_ends - time.monotonic()), what)
                    for inbox in inboxes
                ]
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise AssertionError(
                        f"timed out after {timeout:.0f} s waiting for {what}: no answer to the "
                        f"frames stamped {sent}"
                    ) from None
            patience *= 2

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5)
        self._thread.join(5)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "rgb8"):
    """A sensor_msgs/Image from an RGB array (rgb8, bgr8 or mono8)."""
    from sensor_msgs.msg import Image

    from sam2_ros.imaging.codec import encode_rgb

    data, step = encode_rgb(rgb, encoding)
    msg = Image(
        height=rgb.shape[0],
        width=rgb.shape[1],
        encoding=encoding,
        step=step,
        is_bigendian=0,
        data=data,
    )
    set_stamp(msg.header, stamp_ns, frame_id)
    return msg


def set_stamp(header, stamp_ns: int, frame_id: str) -> None:
    header.stamp.sec = int(stamp_ns // 1_000_000_000)
    header.stamp.nanosec = int(stamp_ns % 1_000_000_000)
    header.frame_id = frame_id
