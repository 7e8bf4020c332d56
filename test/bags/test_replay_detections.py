"""`sam2_ros replay` driven by a detections topic in the bag (offline auto-labelling): the
objects come from the detector's messages, each on the frame its stamp names, with their
class as label, and the output bag carries ~/detections beside ~/objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import (
    DETECTIONS_OUT_TOPIC,
    OBJECTS_TOPIC,
    ReplayError,
    ReplayOptions,
    replay_bag,
)
from sam2_ros.cli.main import main
from sam2_ros.messages import stamp_to_ns
from sam2_ros.settings import TrackerSettings


@pytest.fixture(scope="module")
def detector_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("det") / "bag"
    assert main(["make-bag", str(out), "--width", "160", "--height", "120", "--duration", "1.5",
                 "--detector"]) == 0
    return out


def test_make_bag_records_the_detector_late_and_slower(detector_bag: Path) -> None:
    info = bag_io.inspect_bag(detector_bag)
    assert info.topics[bag_io.DETECTIONS_TOPIC].msgtype == bag_io.DETECTION_ARRAY_TYPE
    images = [s for _, s, _ in bag_io.iter_messages(detector_bag, [bag_io.IMAGE_TOPIC])]
    for _, recorded, msg in bag_io.iter_messages(detector_bag, [bag_io.DETECTIONS_TOPIC]):
        named = stamp_to_ns(msg.header.stamp)
        assert named in images and recorded > named  # names a frame, recorded after it
    assert info.topics[bag_io.DETECTIONS_TOPIC].count < len(images) / 2


def test_replay_creates_objects_from_detections_and_writes_them_out(
    detector_bag: Path, tmp_path: Path
) -> None:
    report = replay_bag(detector_bag, None, tmp_path / "run", TrackerSettings(cpu_threads=1),
                        ReplayOptions(progress=False))
    counts = report.summary["detections"]
    assert counts["topic"] == bag_io.DETECTIONS_TOPIC and counts["bad"] == 0
    assert counts["messages"] == bag_io.inspect_bag(detector_bag).topics[
        bag_io.DETECTIONS_TOPIC].count
    # Each object from the detector's first sight of it; the false alarms (scored below
    # detection_min_score) made none. (The triangle, out of the image for a while, may be
    # found again by the model on something else and then come back as a second object.)
    assert 3 <= counts["objects_created"] <= 4
    out_bag = tmp_path / "run" / "output_bag"
    objects = {s: m for _, s, m in bag_io.iter_messages(out_bag, [OBJECTS_TOPIC])}
    detections = {s: m for _, s, m in bag_io.iter_messages(out_bag, [DETECTIONS_OUT_TOPIC])}
    assert detections.keys() == objects.keys() and len(objects) == report.frames
    labels = {o.id: o.label for m in objects.values() for o in m.objects}
    assert set(labels.values()) == {"circle", "rectangle", "triangle"}
    assert len(labels) == counts["objects_created"]
    compared = 0
    for stamp, msg in objects.items():
        visible = [o for o in msg.objects if o.visible and o.area > 0]
        dets = detections[stamp].detections
        assert [d.id for d in dets] == [str(o.id) for o in visible]
        for det, obj in zip(dets, visible, strict=True):
            assert det.bbox.size_x == obj.bbox.width and det.bbox.size_y == obj.bbox.height
            assert det.results[0].hypothesis.class_id == obj.label
            compared += 1
    assert compared > 20
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["detections"] == counts


def test_replay_needs_prompts_or_detections(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    assert main(["make-bag", str(plain), "--width", "64", "--height", "48",
                 "--duration", "0.3"]) == 0
    with pytest.raises(ReplayError, match="give a prompts file"):
        replay_bag(plain, None, tmp_path / "run", TrackerSettings(), ReplayOptions())
    with pytest.raises(ReplayError, match="no topic /nope"):
        replay_bag(plain, None, tmp_path / "run2", TrackerSettings(),
                   ReplayOptions(detections_topic="/nope"))
