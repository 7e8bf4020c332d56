"""The `sam2_ros` command: make-bag, replay (deterministic, metrics, J&F), and its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import (
    MASKS_TOPIC,
    OBJECTS_TOPIC,
    ReplayOptions,
    replay_bag,
)
from sam2_ros.cli.main import main
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.imaging.codec import image_msg_to_array
from sam2_ros.messages import stamp_to_ns
from sam2_ros.settings import TrackerSettings

# Random weights at 64 px: these tests are about the replay machinery, not tracking.
SIZE = ["--model", "sam2.1_hiera_t", "--image-size", "64", "--device", "cpu"]
PROMPTS = """\
prompts:
  - frame: 0
    label: first
    points: [[30, 30]]
    labels: [1]
  - frame: 3
    label: second
    box: [5, 5, 40, 40]
    gt_id: 2
"""


@pytest.fixture(scope="module")
def scene_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scene") / "bag"
    argv = ["make-bag", str(out), "--width", "96", "--height", "72", "--duration", "0.8"]
    assert main(argv) == 0
    return out


@pytest.fixture()
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.yaml"
    path.write_text(PROMPTS)
    return path


def _messages(bag: Path, topic: str) -> list[tuple[int, bytes]]:
    return [(stamp, raw) for _, stamp, _, raw in bag_io.iter_raw_messages(bag, [topic])]


def test_make_bag_reads_back_with_topics_counts_and_stamps(scene_bag: Path) -> None:
    info = bag_io.inspect_bag(scene_bag)
    assert set(info.topics) == {
        bag_io.IMAGE_TOPIC,
        bag_io.CAMERA_INFO_TOPIC,
        bag_io.DEPTH_TOPIC,
        bag_io.GT_LABELS_TOPIC,
    }
    assert all(t.count == 8 for t in info.topics.values())
    stamps = [
        stamp_to_ns(m.header.stamp)
        for _, _, m in bag_io.iter_messages(scene_bag, [bag_io.IMAGE_TOPIC])
    ]
    assert np.allclose(np.diff(stamps), 1e8)  # 10 fps
    bag_stamps = [s for s, _ in _messages(scene_bag, bag_io.IMAGE_TOPIC)]
    assert bag_stamps == stamps


def test_replay_writes_outputs_and_is_deterministic(
    scene_bag: Path, prompts: Path, tmp_path: Path
) -> None:
    for run in ("a", "b"):
        argv = ["replay", str(scene_bag), "--prompts", str(prompts), "--out", str(tmp_path / run)]
        assert main(argv + SIZE) == 0
    for name in ("overlay.mp4", "metrics.json", "metrics.md", "visibility.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0, name
    for topic in (MASKS_TOPIC, OBJECTS_TOPIC):
        first = _messages(tmp_path / "a" / "output_bag", topic)
        second = _messages(tmp_path / "b" / "output_bag", topic)
        assert len(first) == 8
        assert first == second, f"{topic} differs between two replays"
    input_stamps = [s for s, _ in _messages(scene_bag, bag_io.IMAGE_TOPIC)]
    objects = [
        m for _, _, m in bag_io.iter_messages(tmp_path / "a" / "output_bag", [OBJECTS_TOPIC])
    ]
    assert [stamp_to_ns(m.header.stamp) for m in objects] == input_stamps
    assert [len(m.objects) for m in objects] == [1, 1, 1, 2, 2, 2, 2, 2]
    metrics = (tmp_path / "a" / "metrics.md").read_text()
    assert "J&F" in metrics and "RANDOM" in metrics

    # The same ground truth from a folder of label PNGs gives the same J&F.
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    labels = bag_io.iter_messages(scene_bag, [bag_io.GT_LABELS_TOPIC])
    for index, (_, _, msg) in enumerate(labels):
        Image.fromarray(image_msg_to_array(msg).astype(np.uint8)).save(
            gt_dir / f"{index:05d}.png"
        )
    argv = ["replay", str(scene_bag), "--prompts", str(prompts), "--out", str(tmp_path / "c")]
    assert main([*argv, "--gt-topic", "", "--gt-dir", str(gt_dir), *SIZE]) == 0
    from_bag = json.loads((tmp_path / "a" / "metrics.json").read_text())
    from_dir = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert from_dir["J&F_mean"] == pytest.approx(from_bag["J&F_mean"])


def test_interrupted_replay_leaves_a_readable_bag(
    scene_bag: Path, prompts: Path, tmp_path: Path
) -> None:
    settings = TrackerSettings(model="sam2.1_hiera_t", image_size=64, device="cpu")

    class InterruptedTracker(StreamingTracker):
        """A real tracker whose user presses Ctrl-C during the fifth frame."""

        def track(self, frame, stamp=None):
            if self._next_index == 4:
                raise KeyboardInterrupt
            return super().track(frame, stamp)

    def factory() -> StreamingTracker:
        built = settings.build()
        return InterruptedTracker(built.loaded)

    report = replay_bag(
        scene_bag, prompts, tmp_path / "cut", settings, ReplayOptions(progress=False), factory
    )
    assert report.interrupted and report.frames == 4
    assert len(_messages(tmp_path / "cut" / "output_bag", OBJECTS_TOPIC)) == 4


def _run_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_missing_and_corrupt_bags_are_one_line_errors(
    scene_bag: Path, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["replay", str(tmp_path / "nope"), "--prompts", str(prompts), "--out", str(tmp_path)]
    assert "bag not found" in _run_error(argv + SIZE, capsys)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(scene_bag, corrupt)
    for db in corrupt.glob("*.db3"):
        db.write_bytes(b"this is not sqlite" * 100)
    argv = ["replay", str(corrupt), "--prompts", str(prompts), "--out", str(tmp_path / "o")]
    assert "cannot read bag" in _run_error(argv + SIZE, capsys)


def test_bag_without_image_topic_lists_its_topics(
    scene_bag: Path, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["replay", str(scene_bag), "--prompts", str(prompts), "--out", str(tmp_path / "o")]
    err = _run_error([*argv, "--image-topic", "/front/image", *SIZE], capsys)
    assert "no topic /front/image" in err and "/camera/image_raw" in err


def test_prompt_file_errors_name_line_and_reason(
    scene_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompts:\n  - frame: 0\n    points: [[1, 2]]\n  - frame: 1\n    labels: [1]\n")
    argv = ["replay", str(scene_bag), "--prompts", str(bad), "--out", str(tmp_path / "o")]
    err = _run_error(argv + SIZE, capsys)
    assert f"{bad}:4:" in err and "1 labels for 0 points" in err
    bad.write_text("prompts:\n  - frame: 0\n    points: [[500, 2]]\n")
    err = _run_error([*argv[:-2], "--out", str(tmp_path / "o2"), *SIZE], capsys)
    assert "prompt at line 2" in err and "outside" in err


def test_unsupported_encoding_is_a_one_line_error(
    prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bag = tmp_path / "yuv"
    with bag_io.BagWriter(bag, {bag_io.IMAGE_TOPIC: bag_io.IMAGE_TYPE}) as writer:
        msg = bag_io.numpy_to_image(np.zeros((8, 8), np.uint8), "mono8", 1_000)
        msg.encoding = "yuv422"
        writer.write(bag_io.IMAGE_TOPIC, 1_000, msg)
    argv = ["replay", str(bag), "--prompts", str(prompts), "--out", str(tmp_path / "o")]
    err = _run_error(argv + SIZE, capsys)
    assert "frame 0" in err and "yuv422" in err


def test_console_script_help_explains_each_subcommand() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sam2_ros.cli.main", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    for word in ("make-bag", "replay", "demo", "evaluate", "train", "sam2_ros_demo"):
        assert word in out.stdout
