"""`sam2_ros demo` end to end at its smallest settings: a real node process, real DDS,
prompts through the service, a recorded output bag whose stamps are the input frames'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="the demo needs rclpy: source tools/env.sh")

from ros_processes import unique_domain_and_namespace

from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import DETECTIONS_OUT_TOPIC, MASKS_TOPIC, OBJECTS_TOPIC
from sam2_ros.messages import stamp_to_ns


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    domain, _ = unique_domain_and_namespace("demo")
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), OMP_NUM_THREADS="1")
    out = tmp_path / "demo"
    command = [
        sys.executable, "-m", "sam2_ros.cli.main", "demo", "--out", str(out),
        "--duration", "1.2", "--fps", "5", "--width", "96", "--height", "72",
        "--model", "sam2.1_hiera_t", "--image-size", "64", "--device", "cpu",
    ]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "RANDOM weights" in run.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_in"] == 6
    assert 1 <= summary["frames_processed"] <= 6
    assert summary["frames_dropped"] == summary["frames_in"] - summary["frames_processed"]
    assert summary["prompts_accepted"] >= 1
    assert summary["objects"], "no object was tracked"
    assert summary["latency_s"]["p95"] > 0
    # The node's own engine time, read from its /diagnostics status.
    assert summary["engine_frame_ms_median"] > 0
    assert "Engine time per frame" in (out / "summary.md").read_text()
    for name in ("overlay.mp4", "summary.md", "visibility.png", "node.log"):
        assert (out / name).stat().st_size > 0, name
    # It ends saying where the video and summary are, and a one-line verdict.
    *_, video_line, summary_line, verdict = run.stdout.strip().splitlines()
    assert video_line == f"[demo] overlay video: {out / 'overlay.mp4'}"
    assert summary_line.startswith(f"[demo] summary: {out / 'summary.md'}")
    processed = summary["frames_processed"]
    assert verdict.startswith(f"[demo] verdict: {processed}/6 frames processed, J&F 0."), verdict
    assert f"{summary['identity']['switches']} identity switch(es)" in verdict

    input_stamps = {
        stamp_to_ns(m.header.stamp)
        for _, _, m in bag_io.iter_messages(out / "input_bag", [bag_io.IMAGE_TOPIC])
    }
    output = out / "output_bag"
    for topic in (OBJECTS_TOPIC, MASKS_TOPIC):
        stamps = [
            stamp_to_ns(m.header.stamp) for _, _, m in bag_io.iter_messages(output, [topic])
        ]
        assert stamps, f"nothing recorded on {topic}"
        assert set(stamps) <= input_stamps, f"{topic} stamps are not input frame stamps"
        assert len(stamps) == summary["frames_processed"]
    last = [m for _, _, m in bag_io.iter_messages(output, [OBJECTS_TOPIC])][-1]
    assert {o.id for o in last.objects} == {int(i) for i in summary["objects"]}
    masks = [m for _, _, m in bag_io.iter_messages(output, [MASKS_TOPIC])]
    assert (masks[-1].encoding, masks[-1].width, masks[-1].height) == ("16UC1", 96, 72)


def test_demo_with_the_detector_needs_no_prompt(tmp_path: Path) -> None:
    """`sam2_ros demo --detector` with the bundled model: no click at all, every object made
    from the synthetic detector's late, jittered, missing messages, with its class label,
    under one id to the end; ~/detections recorded beside ~/objects."""
    domain, _ = unique_domain_and_namespace("demo_det")
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "sam2_ros.cli.main", "demo", "--detector",
               "--out", str(out), "--duration", "4"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    print(run.stdout[-1500:])
    assert summary["prompts_sent"] == 0
    labels = [o["label"] for o in summary["objects"].values()]
    assert sorted(labels) == ["circle", "rectangle", "triangle"], labels  # one id each
    log = (out / "node.log").read_text()
    assert log.count("from a detection on frame") == len(labels)
    info = bag_io.inspect_bag(out / "input_bag")
    assert info.topics[bag_io.DETECTIONS_TOPIC].count >= 10
    recorded = bag_io.inspect_bag(out / "output_bag").topics
    assert recorded[DETECTIONS_OUT_TOPIC].count == recorded[OBJECTS_TOPIC].count
