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


def test_variety_redresses_only_its_share_and_keeps_labels_on_the_scenes_objects() -> None:
    """`--variety`: its share of clips get new backdrops, clutter, flat objects, camera and
    light (train/varied_scenes.py); 0 leaves every clip as it was, and a share leaves the
    clips it does not pick as they were."""
    from sam2_ros.train.clips import is_varied_clip

    plain = ClipSettings(num_frames=4)
    half = replace(plain, variety=0.5)
    varied = 0
    for seed in SEEDS:
        scene, frames, _ = draw_scene(plain, seed)
        again = draw_scene(replace(plain, variety=0.0), seed)[1]
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, again, strict=True))
        _, other, other_targets = draw_scene(half, seed)
        same = all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, other, strict=True))
        assert same != is_varied_clip(half, seed), seed
        varied += not same
        ids = {o.id for o in scene.objects}
        for f in other:
            assert set(np.unique(f.labels)) <= {0} | ids
        assert other_targets and set(other_targets) <= ids
        again = draw_scene(half, seed)[1]  # deterministic by seed
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(other, again, strict=True))
    assert 0 < varied < len(SEEDS)


def test_varied_clips_change_the_backdrop_and_move_the_camera() -> None:
    settings = ClipSettings(num_frames=6, variety=1.0)
    moved = changed = 0
    for seed in range(12):
        scene, frames, _ = draw_scene(settings, seed)
        plain = list(RandomScene(scene.cfg).frames())
        background = plain[0].labels == 0
        changed += not np.array_equal(frames[0].rgb[background], plain[0].rgb[background])
        # zoom or warp: the labels move off the plain scene's labels on some frame
        moved += any(not np.array_equal(a.labels, b.labels)
                     for a, b in zip(frames, plain, strict=True))
    assert changed >= 8 and moved >= 4, (changed, moved)


def test_general_preset_trains_on_varied_clips() -> None:
    from sam2_ros.cli.main import parse_args
    from sam2_ros.train.command import settings_from_args

    general = settings_from_args(parse_args(["train", "--preset", "general"]))
    assert general.clip.variety == 0.75 and general.init_from.endswith("sam2_ros_demo.pt")
    assert settings_from_args(parse_args(["train"])).clip.variety == 0.0
