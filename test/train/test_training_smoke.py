"""`sam2_ros train` end to end on tiny clips: the loss goes down, the run is deterministic
and resumable, and its checkpoint loads into the engine and tracks. No full training here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sam2_ros.engine.model_loading import DEMO_MODEL, build_model
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.evaluation.synthetic_scene import SceneConfig, first_frame_prompts, render_scene

REPO = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("SAM2_ROS_TRAIN_SITE") or REPO / ".train-site")
TINY = ["--image-steps", "0", "--iou-head-steps", "0", "--clip-frames", "3", "--image-size", "128",
        "--eval-scenes", "1", "--eval-frames", "3"]

pytestmark = pytest.mark.skipif(
    not (SITE / "tensordict").is_dir(),
    reason=f"training dependencies not installed in {SITE} (make train-deps installs them)",
)


def _train(out: Path, steps: int, *extra: str, returncode: int = 0
           ) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{SITE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               OMP_NUM_THREADS="2")
    command = [sys.executable, "-m", "sam2_ros.cli.main", "train", "--out", str(out),
               "--steps", str(steps), "--checkpoint-every", "4", *TINY, *extra]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == returncode, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def test_training_smoke(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _train(out, 12)
    # Without a terminal (a log file) tqdm's bar is off; progress comes as lines instead.
    assert "[train] step 12/12 (100%)" in first.stdout and "min left" in first.stdout
    losses = json.loads((out / "losses.json").read_text())
    assert len(losses) == 12 and all(np.isfinite(losses))
    # The loss on fixed held-out clips (eval mode, deterministic prompts) falls from the
    # random initialisation's (per-step training losses vary too much with the sampled
    # prompt type to show it in a dozen steps).
    val = json.loads((out / "val_losses.json").read_text())
    assert [step for step, _ in val] == [0, 4, 8, 12]
    assert val[-1][1] < 0.5 * val[0][1], val
    for name in ("sam2_ros_demo.pt", "state.pt", "loss.png", "report.md", "report.json"):
        assert (out / name).is_file(), name
    assert "Held-out scenes" in (out / "report.md").read_text()

    # Resumable: a second call goes on from the state file instead of starting over.
    resumed = _train(out, 16, "--keep-every", "8")
    assert "resuming" in resumed.stdout and "at step 12" in resumed.stdout
    assert len(json.loads((out / "losses.json").read_text())) == 16
    # Kept along the way: only the step that is a multiple of --keep-every.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00016.pt"]
    bad = _train(tmp_path / "bad", 4, "--keep-every", "6", returncode=2)
    assert "must be a multiple of --checkpoint-every 4" in bad.stderr
    # A longer schedule may be followed part way (how the shipped model was made).
    stopped = _train(out, 19, "--stop-at", "18", "--eval-scenes", "0")
    assert "at step 16" in stopped.stdout and "18 steps" in stopped.stdout
    assert len(json.loads((out / "losses.json").read_text())) == 18

    # The IoU-head phase after the schedule trains the IoU head and nothing else.
    before = torch.load(out / "state.pt", map_location="cpu", weights_only=False)["model"]
    _train(out, 18, "--iou-head-steps", "3", "--eval-scenes", "0")
    after = torch.load(out / "state.pt", map_location="cpu", weights_only=False)["model"]
    assert len(json.loads((out / "iou_head_losses.json").read_text())) == 3
    assert len(json.loads((out / "losses.json").read_text())) == 18
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("iou_prediction_head" in k for k in changed), changed
    assert "IoU-head phase: 3 steps" in (out / "report.md").read_text()

    # --init-from with --steps 0: only the IoU-head phase, on the given weights.
    head = tmp_path / "head"
    _train(head, 0, "--init-from", str(out / "sam2_ros_demo.pt"), "--iou-head-steps", "2",
           "--eval-scenes", "0")
    start = torch.load(out / "sam2_ros_demo.pt", map_location="cpu", weights_only=True)["model"]
    tuned = torch.load(head / "sam2_ros_demo.pt", map_location="cpu", weights_only=True)["model"]
    changed = {k for k in start if not torch.equal(start[k], tuned[k])}
    assert changed and all("iou_prediction_head" in k for k in changed), changed
    # --head-phase iou+object trains the object-score (occlusion) head too, and only those.
    both = tmp_path / "both"
    _train(both, 0, "--init-from", str(out / "sam2_ros_demo.pt"), "--iou-head-steps", "2",
           "--head-phase", "iou+object", "--head-object-alpha", "0.2", "--eval-scenes", "0")
    tuned = torch.load(both / "sam2_ros_demo.pt", map_location="cpu", weights_only=True)["model"]
    changed = {k.split(".")[1] for k in start if not torch.equal(start[k], tuned[k])}
    assert changed == {"iou_prediction_head", "pred_obj_score_head"}, changed

    # Deterministic for a seed: a fresh run with the same settings repeats every step (to
    # float rounding: with other processes on the cores one step differed by 1e-7 relative).
    again = tmp_path / "again"
    _train(again, 12, "--eval-scenes", "0")
    repeated = json.loads((again / "losses.json").read_text())
    assert len(repeated) == len(losses)
    np.testing.assert_allclose(repeated, losses, rtol=1e-5)

    # The exported checkpoint is an official-format one the engine loads and tracks with.
    loaded = build_model(DEMO_MODEL, out / "sam2_ros_demo.pt", device="cpu", image_size=128)
    assert not loaded.random_weights
    cfg = SceneConfig(width=96, height=72, duration_s=0.3, fps=10.0, seed=1)
    tracker = StreamingTracker(loaded)
    prompt = first_frame_prompts(cfg)[0]
    for frame in render_scene(cfg):
        tracker.track(frame.rgb, frame.stamp_ns)
        if frame.index == prompt.frame_index:
            result = tracker.add_prompt(points=[prompt.point], labels=[1])
            assert result.result.mask.shape == (72, 96)
    assert tracker.latest_results()[0].mask.shape == (72, 96)


def test_image_stage_then_video_stage(tmp_path: Path) -> None:
    """--image-steps trains on single frames first, then the video schedule runs, with a
    share of single-frame clips mixed in; the same seed repeats the same losses."""
    out = tmp_path / "staged"
    args = ("--image-steps", "4", "--image-share", "0.5", "--min-objects", "2",
            "--eval-scenes", "0")
    _train(out, 3, *args)
    losses = json.loads((out / "losses.json").read_text())
    assert len(losses) == 7 and all(np.isfinite(losses))
    state = torch.load(out / "state.pt", map_location="cpu", weights_only=False)
    assert state["settings"]["image_steps"] == 4 and state["settings"]["image_share"] == 0.5
    assert state["settings"]["clip"]["min_objects"] == 2
    again = tmp_path / "again"
    _train(again, 3, *args)
    assert json.loads((again / "losses.json").read_text()) == losses

    # A fine-tune from those weights with the options of the shipped recipe's last stage:
    # they reach the saved settings (so a resume must repeat them) and change the training.
    tune_args = ("--init-from", str(out / "sam2_ros_demo.pt"), "--image-steps", "0",
                 "--eval-scenes", "0")
    options = ("--curriculum", "0", "--class-weight", "5", "--iou-weight", "5",
               "--iou-loss", "mse", "--occlusion", "0.9")
    _train(tmp_path / "plain", 2, *tune_args)
    _train(tmp_path / "tuned", 2, *tune_args, *options)
    saved = torch.load(tmp_path / "tuned" / "state.pt", map_location="cpu",
                       weights_only=False)["settings"]
    assert saved["curriculum"] == 0 and saved["iou_loss"] == "mse"
    assert saved["loss_weights"]["loss_class"] == 5 and saved["loss_weights"]["loss_iou"] == 5
    assert saved["clip"]["p_occlusion"] == 0.9
    plain = json.loads((tmp_path / "plain" / "losses.json").read_text())
    tuned = json.loads((tmp_path / "tuned" / "losses.json").read_text())
    assert len(plain) == len(tuned) == 2 and plain != tuned


def test_training_on_varied_clips(tmp_path: Path) -> None:
    """`--variety 1` (the general preset's generator) trains: finite losses, a checkpoint."""
    out = tmp_path / "varied"
    _train(out, 4, "--variety", "1", "--eval-scenes", "0")
    losses = json.loads((out / "losses.json").read_text())
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert (out / "sam2_ros_demo.pt").is_file()

