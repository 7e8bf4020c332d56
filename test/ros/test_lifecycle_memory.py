"""The managed node gives its memory back: configure/activate/deactivate/cleanup cycles over
real DDS, frames tracked between transitions, leave resident memory where the second cycle
left it, and the node still tracks after the last activation (numbers: docs/benchmarks.md,
lifecycle cycles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lifecycle_msgs.msg import State, Transition
from ros_processes import (
    REPO,
    NodeProcess,
    RosClient,
    image_msg,
    stamp_of,
    unique_domain_and_namespace,
    wait_until,
)
from sam2_ros.msg import TrackedObjectArray
from sam2_ros.srv import AddPrompt
from sensor_msgs.msg import Image
from test_lifecycle_node import _state, _transition

from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene

WAIT = 60.0
CYCLES = 12
FRAMES_PER_CYCLE = 4
#: Allowed growth of what a cycle keeps: resident memory right after cleanup (the model
#: released, the C heap trimmed), second cycle to last. Kept code: about half of this (a
#: slow creep remains); before the release on cleanup it grew by half of this every cycle.
BOUND_KEPT_MB = 40.0
#: Allowed growth of resident memory after each cycle's frames, second cycle to last: glibc
#: may keep up to 64 MB freed at the top of its heap untrimmed (twice its largest dynamic
#: mmap threshold), so single samples jump; a model kept per cycle would still exceed it.
BOUND_ACTIVE_MB = 64.0
SCENE = SceneConfig(width=320, height=240, fps=10.0, num_objects=2, seed=1, with_depth=False,
                    duration_s=(FRAMES_PER_CYCLE * (CYCLES + 1) + 2) / 10.0)
CYCLE = (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP,
         Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def test_cycles_keep_memory_flat_and_the_node_tracks_after(tmp_path: Path) -> None:
    frames = iter(list(render_scene(SCENE)))
    domain, ns = unique_domain_and_namespace("sam2_lcmem")
    node = NodeProcess(["-p", "image_size:=256", "-p", "qos_reliability:=reliable",
                        "-r", f"__ns:={ns}"], domain, tmp_path,
                       script=REPO / "scripts" / "tracker_lifecycle_node")
    client = RosClient(domain)
    base = f"{ns}/sam2_tracker"
    try:
        publisher = client.publisher(Image, f"{ns}/image")
        objects = client.subscribe(TrackedObjectArray, f"{base}/objects")

        def track(count: int):
            """Publish frames one at a time, each awaited on ~/objects; returns the last."""
            wait_until(lambda: publisher.get_subscription_count() > 0, WAIT,
                       "the image subscription after activate")
            for _ in range(count):
                frame = next(frames)
                publisher.publish(image_msg(frame.rgb, frame.stamp_ns, "camera"))
                last = objects.with_stamp(frame.stamp_ns, WAIT)
            return frame, last

        for transition in CYCLE[2:]:
            assert _transition(client, base, transition)
        track(FRAMES_PER_CYCLE)
        kept, active = [], []
        for cycle in range(CYCLES):
            for transition in CYCLE:
                assert _transition(client, base, transition), (cycle, transition, node.tail())
                if transition == Transition.TRANSITION_CLEANUP:
                    kept.append(_rss_mb(node.proc.pid))
            track(FRAMES_PER_CYCLE)
            active.append(_rss_mb(node.proc.pid))
        print("resident MB after each cleanup:", " ".join(f"{m:.0f}" for m in kept))
        print("resident MB after each cycle's frames:", " ".join(f"{m:.0f}" for m in active))
        assert kept[-1] - kept[1] <= BOUND_KEPT_MB, (
            f"after cleanup, resident memory grew {kept[-1] - kept[1]:.0f} MB from cycle 2 to "
            f"{CYCLES}: {kept}")
        assert active[-1] - active[1] <= BOUND_ACTIVE_MB, (
            f"resident memory grew {active[-1] - active[1]:.0f} MB from cycle 2 to {CYCLES}: "
            f"{active}")

        assert _state(client, base) == State.PRIMARY_STATE_ACTIVE
        frame, _ = track(1)
        add_prompt = client.client(AddPrompt, f"{base}/add_prompt", WAIT)
        x0, y0, x1, y1 = _box_of_largest(frame.labels)
        answer = RosClient.call(add_prompt, AddPrompt.Request(
            points=[], point_labels=[], use_box=True, box=[x0, y0, x1, y1]), WAIT)
        assert answer.success and answer.object_id > 0, answer.message
        _, last = track(1)
        tracked = {o.id: o for o in last.objects}
        assert answer.object_id in tracked and tracked[answer.object_id].area > 0, (
            f"object {answer.object_id} not tracked on the next frame "
            f"(stamp {stamp_of(last.header)}): {sorted(tracked)}")
    finally:
        client.close()
        assert node.stop() == 0, node.tail()


def _box_of_largest(labels: np.ndarray) -> tuple[float, float, float, float]:
    """The box of the ground-truth object with the most pixels in the frame."""
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    assert ids.size, "no object in the frame"
    ys, xs = np.nonzero(labels == ids[np.argmax(counts)])
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())
