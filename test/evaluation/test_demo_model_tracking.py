"""Tracking judged by its meaning: the bundled demo model follows what was clicked.

Parity with Meta's predictor proves the engine's arithmetic; these tests prove that a click
on an object, on the frame it was given, yields masks on that object in later frames, and
that a prompt given late by stamp lands where it was meant. Each threshold is a measured
value of the bundled model with a margin (docs/demo_model.md); the same check runs
on random weights of the same architecture and must fail, so the test tells a tracker from
noise; the same holds for the occlusion head ("visible") on scenes where objects hide.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sam2_ros.engine.model_loading import DEMO_MODEL, LoadedModel, build_model, resolve_config
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.evaluation.scene_eval import (
    EvalReport,
    click_objects,
    evaluate_heldout,
    heldout_scene,
)
from sam2_ros.evaluation.synthetic_scene import SceneConfig, first_frame_prompts, render_scene

#: J of the bundled model on the designed scene, objects clicked once: measured 0.389 (the
#: same with the clicks given three frames late by stamp); random weights of the same
#: architecture: 0.000. The threshold keeps a margin for slower machines and bf16.
MIN_DEMO_SCENE_J = 0.2

#: IoU of each object's mask prompted in time and three frames late, once both prompts are
#: in (batched and unbatched rounding only): measured 1.0000 for every object and frame
#: (2026-12-02, fp32); an object lost in one run scores 0.
MIN_SAME_OBJECT_IOU = 0.98

#: Held-out scenes (never trained on) where clicked objects are fully hidden for 101 frames
#: in all, behind a nearer object or out of the picture.
OCCLUSION_SEEDS = (12, 18, 30, 32, 35)
#: Hidden frames reported invisible + frames in view reported visible - 1 on those scenes:
#: measured 0.55 for the bundled model (63% and 92%); random weights 0.00 (they report
#: every frame invisible). Over all 20 held-out scenes the model's rates are 57% and 92%.
MIN_OCCLUSION_YOUDEN = 0.3
#: The object score ranking in-view frames above hidden ones on those scenes (ROC AUC):
#: measured 0.893 for the bundled model, 0.438 for random weights.
MIN_OCCLUSION_AUC = 0.7

#: J&F through `sam2_ros evaluate` on held-out scenes 0-1, 8 frames each: measured 0.383 for
#: the bundled model, 0.003 for random weights.
MIN_EVALUATE_JF = 0.25


@pytest.fixture(scope="module")
def demo_model() -> LoadedModel:
    torch.set_num_threads(2)
    return build_model(DEMO_MODEL, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def random_demo_architecture() -> LoadedModel:
    """The demo model's architecture with random weights (its config by path: no bundle)."""
    return build_model(str(resolve_config(DEMO_MODEL)), device="cpu", precision="fp32")


def test_bundled_demo_model_loads_without_random_weights(demo_model: LoadedModel) -> None:
    assert not demo_model.random_weights
    assert demo_model.image_size == 256


def test_clicked_objects_are_tracked_on_an_unseen_scene(
    demo_model: LoadedModel, random_demo_architecture: LoadedModel
) -> None:
    """The designed demo scene (never trained on: training draws random scenes only)."""
    trained, _ = _designed_scene_j(demo_model, late_prompt=False)
    noise, _ = _designed_scene_j(random_demo_architecture, late_prompt=False)
    print(f"designed scene J: demo model {trained:.3f}, random weights {noise:.3f}")
    assert trained >= MIN_DEMO_SCENE_J
    assert noise < MIN_DEMO_SCENE_J  # the threshold tells a tracker from noise


def _designed_scene_j(model: LoadedModel, late_prompt: bool) -> tuple[float, list[np.ndarray]]:
    """J on the designed demo scene, objects clicked on their first frame; with
    ``late_prompt`` the clicks come three frames later, naming that frame by stamp."""
    cfg = SceneConfig(duration_s=1.6, fps=10.0, num_objects=3, seed=0, with_depth=False)
    frames = list(render_scene(cfg))
    prompts = {p.frame_index: [] for p in first_frame_prompts(cfg)}
    for p in first_frame_prompts(cfg):
        prompts[p.frame_index].append(p)
    tracker = StreamingTracker(model, prompt_history=8)
    ids: dict[int, int] = {}
    masks: list[np.ndarray] = []
    pending: list[tuple[int, object]] = []
    js = []
    for frame in frames:
        tracker.track(frame.rgb, frame.stamp_ns)
        pending += [(frame.index, p) for p in prompts.get(frame.index, [])]
        due = [(i, p) for i, p in pending if not late_prompt or frame.index >= i + 3]
        for i, p in due:
            result = tracker.add_prompt(points=[p.point], labels=[1], stamp=p.stamp_ns)
            assert result.stamp == p.stamp_ns and result.frame_index == i
            ids[result.object_id] = p.obj_id
            pending.remove((i, p))
        results = tracker.latest_results()
        masks.append(np.stack([r.mask for r in results]) if results else np.zeros((0,)))
        for r in results:
            gt = frame.labels == ids[r.object_id]
            if frame.index >= 3 and gt.any():
                pred = r.mask if r.visible else np.zeros_like(gt)
                js.append((pred & gt).sum() / max(1, (pred | gt).sum()))
    return float(np.mean(js)), masks


def test_late_prompt_by_stamp_ends_like_the_prompt_in_time(demo_model: LoadedModel) -> None:
    j_in_time, in_time = _designed_scene_j(demo_model, late_prompt=False)
    j_late, late = _designed_scene_j(demo_model, late_prompt=True)
    print(f"designed scene J: prompt in time {j_in_time:.3f}, three frames late {j_late:.3f}")
    assert j_late >= MIN_DEMO_SCENE_J
    # Once the late prompts are in, both runs hold the same masks, object by object
    # (batching may round a few boundary pixels differently). Per object, not per frame:
    # background is most of a frame, so a whole-frame pixel match passes an object lost.
    ious = []
    for a, b in zip(in_time[-8:], late[-8:], strict=True):
        assert a.shape == b.shape and a.shape[0] == 3
        for in_time_mask, late_mask in zip(a, b, strict=True):
            union = (in_time_mask | late_mask).sum()
            ious.append((in_time_mask & late_mask).sum() / union if union else 1.0)
    print(f"per-object IoU of the two runs over the last 8 frames: min {min(ious):.4f}")
    assert min(ious) >= MIN_SAME_OBJECT_IOU


def test_bf16_autocast_masks_agree_with_fp32(demo_model: LoadedModel) -> None:
    """precision "auto" picks bf16 on CPUs with native bf16; its masks must be fp32's."""
    bf16 = build_model(DEMO_MODEL, device="cpu", precision="bf16")
    assert bf16.autocast_dtype is torch.bfloat16
    scene = heldout_scene(7, 10)
    runs, logits = [], []
    for model in (demo_model, bf16):
        tracker = StreamingTracker(model)
        masks, frame_logits = [], []
        for i, frame in enumerate(scene.frames()):
            tracker.track(frame.rgb, frame.stamp_ns)
            if i == 0:
                click_objects(tracker, frame.rgb, frame.labels, frame.stamp_ns, 120)
            masks.append(np.stack([r.mask for r in tracker.latest_results()]))
            frame_logits.append(np.stack([r.logits for r in tracker.latest_results()]))
        runs.append(np.stack(masks))
        logits.append(np.stack(frame_logits))
    fp32, low = runs
    iou = (fp32 & low).sum() / max(1, (fp32 | low).sum())
    diff = np.abs(logits[0] - logits[1])
    print(f"bf16 vs fp32 over 10 frames: mask IoU {iou:.4f}; mask logits |difference| "
          f"median {np.median(diff):.3f}, 99th percentile {np.percentile(diff, 99):.3f}, "
          f"max {diff.max():.3f} (logits span {np.percentile(np.abs(logits[0]), 99):.1f} "
          "at the 99th percentile)")
    assert iou >= 0.98


def test_compiled_encoder_tracks_as_the_eager_one(demo_model: LoadedModel) -> None:
    """compile: true (inductor, weights frozen) gives the eager model's masks."""
    compiled = build_model(DEMO_MODEL, device="cpu", precision="fp32",
                           compile_image_encoder=True)
    assert isinstance(compiled.model.image_encoder, torch._dynamo.eval_frame.OptimizedModule)
    scene = heldout_scene(7, 8)
    runs = []
    for model in (demo_model, compiled):
        tracker = StreamingTracker(model)
        masks = []
        for i, frame in enumerate(scene.frames()):
            tracker.track(frame.rgb, frame.stamp_ns)
            if i == 0:
                click_objects(tracker, frame.rgb, frame.labels, frame.stamp_ns, 120)
            masks.append(np.stack([r.mask for r in tracker.latest_results()]))
        runs.append(np.stack(masks))
    eager, comp = runs
    assert eager.any()
    iou = (eager & comp).sum() / max(1, (eager | comp).sum())
    print(f"compiled vs eager encoder, 8 frames: mask IoU {iou:.5f}")
    assert iou >= 0.995


def _occlusion_report(model: LoadedModel, seeds: tuple[int, ...]) -> EvalReport:
    """Held-out scenes tracked with every object clicked once on the first frame."""
    return evaluate_heldout(lambda: StreamingTracker(model), seeds)


def test_visibility_head_on_occlusion_sequences(
    demo_model: LoadedModel, random_demo_architecture: LoadedModel
) -> None:
    """While a tracked object is fully hidden (behind a nearer one or out of the frame),
    SAM 2's occlusion head should say "not visible", and "visible" while it is in view.
    Judged by both rates together (hidden-invisible + shown-visible - 1, Youden's J): a
    head that always answers the same scores 0, whichever answer it gives."""
    trained = _occlusion_report(demo_model, OCCLUSION_SEEDS)
    noise = _occlusion_report(random_demo_architecture, OCCLUSION_SEEDS)
    frames = sum(s.hidden_frames for s in trained.scenes)
    print(f"{frames} hidden frames; demo model: reported invisible "
          f"{trained.hidden_invisible_rate:.0%}, in view reported visible "
          f"{trained.shown_visible_rate:.0%}, ranking AUC {trained.visibility_auc:.3f}; random "
          f"weights: {noise.hidden_invisible_rate:.0%}, {noise.shown_visible_rate:.0%}, "
          f"AUC {noise.visibility_auc:.3f}")
    assert frames >= 10
    assert trained.hidden_invisible_rate + trained.shown_visible_rate - 1 >= MIN_OCCLUSION_YOUDEN
    assert noise.hidden_invisible_rate + noise.shown_visible_rate - 1 < MIN_OCCLUSION_YOUDEN
    assert trained.visibility_auc >= MIN_OCCLUSION_AUC
    assert noise.visibility_auc < MIN_OCCLUSION_AUC


def test_evaluate_command_tells_the_bundled_model_from_random_weights(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sam2_ros evaluate` (docs/demo_model.md's numbers): same scenes, the bundled weights
    and the same architecture's random weights; the table is printed and the JSON holds every
    scene."""
    from sam2_ros.cli.main import main

    common = ["evaluate", "--scenes", "2", "--frames", "8", "--precision", "fp32",
              "--device", "cpu", "--cpu-threads", "2"]
    scores = {}
    for name, model in (("bundled", DEMO_MODEL), ("random", str(resolve_config(DEMO_MODEL)))):
        path = tmp_path / f"{name}.json"
        assert main([*common, "--model", model, "--json", str(path)]) == 0
        out = capsys.readouterr().out
        assert "| J&F |" in out and "2 held-out scenes, 8 frames each" in out
        assert ("RANDOM weights" in out) == (name == "random")
        scores[name] = json.loads(path.read_text())
        assert [s["seed"] for s in scores[name]["scenes"]] == [0, 1]
    print(f"evaluate J&F: bundled {scores['bundled']['jf']:.3f}, "
          f"random {scores['random']['jf']:.3f}")
    assert scores["bundled"]["jf"] >= MIN_EVALUATE_JF > scores["random"]["jf"]


def test_evaluate_command_rejects_an_empty_evaluation(capsys: pytest.CaptureFixture[str]) -> None:
    from sam2_ros.cli.main import main

    assert main(["evaluate", "--scenes", "0"]) == 2
    assert "--scenes must be >= 1" in capsys.readouterr().err
