"""Which scenes training clips come from: `sam2_ros train --crossing-share` draws that share of
video clips from the crossing family, of the train split only, and leaves the other clips
as they were. Scenes are rendered small and short; no training dependencies are needed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sam2_ros.evaluation.random_scenes import CROSSING_KINDS, RandomScene
from sam2_ros.train.clips import CROSSING_MIN_FRAMES, ClipSettings, draw_scene, is_crossing_clip

SEEDS = range(8)


def _first_rgb(scene: RandomScene) -> np.ndarray:
    return next(iter(scene.frames())).rgb


def test_share_one_draws_every_kind_of_crossing_scene_of_the_train_split() -> None:
    settings = ClipSettings(num_frames=4, crossing_share=1.0)
    kinds = set()
    for seed in SEEDS:
        scene, frames, targets = draw_scene(settings, seed)
        assert (scene.cfg.family, scene.cfg.split) == ("crossing", "train")
        assert len(frames) == CROSSING_MIN_FRAMES and targets
        kinds.add(scene.kind)
    assert kinds == set(CROSSING_KINDS)


def test_no_crossing_clip_is_a_held_out_crossing_scene() -> None:
    """The same scene config in the held-out split, and the held-out seeds 0..19 that
    `sam2_ros evaluate --scenes crossing` scores, all render other pictures."""
    settings = ClipSettings(crossing_share=1.0)
    for seed in range(4):
        scene, frames, _ = draw_scene(settings, seed)
        heldout = [RandomScene(replace(scene.cfg, split="heldout"))]
        heldout += [RandomScene(replace(scene.cfg, split="heldout", seed=k)) for k in range(20)]
        for other in heldout:
            assert not np.array_equal(frames[0].rgb, _first_rgb(other)), (seed, other.cfg.seed)


def test_share_zero_draws_no_crossing_clip_and_a_share_changes_only_the_clips_it_replaces() -> None:
    none = ClipSettings(num_frames=4)
    half = replace(none, crossing_share=0.5)
    crossing = 0
    for seed in SEEDS:
        scene, frames, targets = draw_scene(none, seed)
        assert scene.cfg.family == "standard"
        if is_crossing_clip(half, seed):
            crossing += 1
            continue
        scene_half, frames_half, targets_half = draw_scene(half, seed)
        assert scene_half.cfg == scene.cfg and targets_half == targets
        assert np.array_equal(frames_half[-1].rgb, frames[-1].rgb)
    shares = [np.mean([is_crossing_clip(half, k) for k in range(400)])]
    assert 0 < crossing < len(SEEDS) and 0.4 < shares[0] < 0.6


def test_single_frame_clips_never_cross_and_the_share_is_a_fraction() -> None:
    image = ClipSettings(num_frames=1, crossing_share=1.0)
    assert not any(is_crossing_clip(image, seed) for seed in SEEDS)
    assert draw_scene(image, 0)[0].cfg.family == "standard"
    with pytest.raises(ValueError, match="crossing_share"):
        ClipSettings(crossing_share=1.5)


def test_the_train_option_sets_the_share_and_defaults_to_none() -> None:
    from sam2_ros.cli.main import parse_args
    from sam2_ros.train.command import settings_from_args

    def share(*argv: str) -> float:
        return settings_from_args(parse_args(["train", *argv])).clip.crossing_share

    assert share() == 0.0
    assert share("--preset", "shipped-finetune") == 0.0
    assert share("--crossing-share", "0.5") == 0.5
