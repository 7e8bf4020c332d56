"""The training-history picture: runs laid end to end, held-out points, truncation."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from sam2_ros.train.history import HeldoutPoint, RunLosses, main, moving_median


def _run_dir(path: Path, losses: list[float], val: list, head: list[float]) -> Path:
    path.mkdir()
    (path / "losses.json").write_text(json.dumps(losses))
    (path / "val_losses.json").write_text(json.dumps(val))
    (path / "iou_head_losses.json").write_text(json.dumps(head))
    return path


def test_a_run_read_up_to_a_step_drops_what_came_after(tmp_path: Path) -> None:
    run = _run_dir(tmp_path / "part1", [5.0, 4.0, 3.0, 2.0], [[0, 9.0], [2, 6.0], [4, 1.0]],
                   [0.5, 0.4])
    whole = RunLosses.read(str(run))
    assert (whole.name, len(whole.losses), whole.head_steps) == ("part1", 4, 2)
    cut = RunLosses.read(f"part one={run}:2")
    assert cut.name == "part one" and cut.losses == [5.0, 4.0]
    assert cut.val_losses == [(0, 9.0), (2, 6.0)] and cut.head_steps == 0


def test_the_smoothed_curve_ignores_a_single_huge_step() -> None:
    curve = moving_median([4.0, 4.0, 2000.0, 4.0, 3.0, 3.0], 3)
    assert list(curve) == [4.0, 4.0, 4.0, 4.0, 4.0, 3.0]


def test_history_picture_is_written_from_runs_and_points(tmp_path: Path) -> None:
    first = _run_dir(tmp_path / "a", [10.0 / (k + 1) for k in range(300)], [[0, 9.0], [300, 2]],
                     [])
    second = _run_dir(tmp_path / "b", [3.0] * 100, [[0, 3.0]], [1.0] * 20)
    score = tmp_path / "eval.json"
    score.write_text(json.dumps({"jf": 0.6, "hidden_invisible_rate": 0.5}))
    assert HeldoutPoint.read(f"400={score}") == HeldoutPoint(400, 0.6, 0.5)
    out = tmp_path / "pics" / "history.png"
    assert main(["--run", str(first), "--run", f"fine-tune={second}", "--point",
                 f"300={score}", "--point", f"420={score}", "--mark", "300=fine-tune",
                 "--out", str(out)]) == 0
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[0] > 500 and picture.shape[1] > 800
    assert picture.std() > 10  # drawn, not blank
