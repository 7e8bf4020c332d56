"""`sam2_ros demo` end to end at its smallest settings: a real node process, real DDS,
prompts through the service, a recorded output bag whose stamps are the input frames'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="the demo needs rclpy: source tools/env.sh")

from ros_processes import unique_domain_and_namespace

from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import DETECTIONS_OUT_TOPIC, MASKS_TOPIC, OBJECTS_TOPIC
from sam2_ros.imaging.codec import image_msg_to_array
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
    under one id to the end; ~/detections recorded beside ~/objects. In lockstep: a loaded
    machine dropping frames loses the detections that name them (an object never made)."""
    domain, _ = unique_domain_and_namespace("demo_det")
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "sam2_ros.cli.main", "demo", "--detector",
               "--out", str(out), "--duration", "4", "--lockstep"]
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


def test_the_demo_scene_ends_with_every_id_on_the_object_it_was_clicked_on(
        tmp_path: Path) -> None:
    """`sam2_ros demo` as a user runs it (bundled model, the designed scene, default
    tracking_mode motion), over real DDS: on the last frame the node processed, after the
    rectangle has passed in front of the circle, each id's mask lies on the shape it was
    clicked on (IoU >= 0.5 with it, more than with any other shape). Judged per id at the
    end, not by an average over objects.

    The scene's 60 frames are played in lockstep (each once the node answered the one
    before): at the recorded rate a loaded machine drops frames, and with too many dropped
    the circle's id ends hidden or on the rectangle, so the test would judge the machine's
    speed, not the tracker (docs/identity.md)."""
    domain, _ = unique_domain_and_namespace("demo_ids")
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "sam2_ros.cli.main", "demo", "--out", str(out),
               "--device", "cpu", "--lockstep"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    print(run.stdout[-1500:])
    summary = json.loads((out / "summary.json").read_text())
    truth = {
        stamp_to_ns(m.header.stamp): image_msg_to_array(m)
        for _, _, m in bag_io.iter_messages(out / "input_bag", [bag_io.GT_LABELS_TOPIC])
    }
    last = [m for _, _, m in bag_io.iter_messages(out / "output_bag", [MASKS_TOPIC])][-1]
    stamp = stamp_to_ns(last.header.stamp)
    assert sorted(truth).index(stamp) >= 0.75 * len(truth), "the last frame is before the end"
    ids = image_msg_to_array(last)
    shapes = truth[stamp]
    assert sorted(o["label"] for o in summary["objects"].values()) == [
        "shape1", "shape2", "shape3"]
    for object_id, obj in summary["objects"].items():
        clicked = int(obj["label"].removeprefix("shape"))
        mask = ids == int(object_id)
        ious = {int(g): (mask & (shapes == g)).sum() / max(1, (mask | (shapes == g)).sum())
                for g in np.unique(shapes) if g}
        best = max(ious, key=ious.get)
        assert best == clicked and ious[best] >= 0.5, (
            object_id, obj["label"], ious, f"{summary['frames_processed']}/60 processed")


def test_demo_with_two_cameras_prompts_and_records_each(tmp_path: Path) -> None:
    """`sam2_ros demo --cameras 2`: one node, two scenes (the second has a fourth shape),
    each camera's objects prompted through its own ~/<camera>/add_prompt and its outputs
    recorded from its own topics; the summary has both, the overlay shows them side by
    side."""
    domain, _ = unique_domain_and_namespace("demo_cams")
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), OMP_NUM_THREADS="1")
    out = tmp_path / "demo"
    command = [
        sys.executable, "-m", "sam2_ros.cli.main", "demo", "--cameras", "2", "--out", str(out),
        "--duration", "1.2", "--fps", "5", "--width", "96", "--height", "72",
        "--model", "sam2.1_hiera_t", "--image-size", "64", "--device", "cpu",
    ]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary) == ["cam0", "cam1"]
    for camera, gt_objects in (("cam0", 3), ("cam1", 4)):
        cam = summary[camera]
        assert cam["frames_in"] == 6 and 1 <= cam["frames_processed"] <= 6
        assert 1 <= cam["prompts_accepted"] <= gt_objects
        assert f"~/{camera}/add_prompt" in (out / "summary.md").read_text()
        recorded = bag_io.inspect_bag(out / f"output_bag_{camera}").topics
        assert recorded[OBJECTS_TOPIC].count == cam["frames_processed"]
    log = (out / "node.log").read_text()
    assert "cameras cam0, cam1" in log
    assert (out / "overlay.mp4").stat().st_size > 0
