"""The training schedule without training: stages, learning rates and the scene curriculum.

These need no training dependencies (the training smoke test runs the real thing)."""

from __future__ import annotations

from itertools import pairwise

from sam2_ros.evaluation.random_scenes import RandomScene, RandomSceneConfig
from sam2_ros.train.clips import scene_config
from sam2_ros.train.trainer import (
    TrainSettings,
    _settings_dict,
    _with_defaults,
    lr_at,
    stage_at,
)


def test_image_stage_comes_first_and_each_stage_has_its_own_schedule() -> None:
    s = TrainSettings(image_steps=300, steps=500, iou_head_steps=20, warmup_steps=100)
    assert stage_at(0, s) == ("image", 0, 300)
    assert stage_at(299, s) == ("image", 299, 300)
    assert stage_at(300, s) == ("video", 0, 500)
    assert stage_at(800, s) == ("iou_head", 0, 20)
    # Warm-up restarts with the video stage, and each stage decays to its floor.
    assert lr_at(0, s) == lr_at(300, s) == s.lr / s.warmup_steps
    assert lr_at(99, s) == lr_at(399, s) == s.lr
    floor = s.lr * s.min_lr_ratio
    assert abs(lr_at(299, s) - floor) < 0.01 * s.lr
    assert abs(lr_at(799, s) - floor) < 0.01 * s.lr
    assert lr_at(800, s) == lr_at(819, s) == s.iou_head_lr


def test_head_phase_cosine_schedule_decays_to_the_floor() -> None:
    s = TrainSettings(image_steps=0, steps=0, iou_head_steps=200, head_lr_schedule="cosine")
    rates = [lr_at(k, s) for k in range(200)]
    assert rates[0] == s.iou_head_lr
    assert all(a >= b for a, b in pairwise(rates))
    assert abs(rates[100] - s.iou_head_lr * (1 + s.min_lr_ratio) / 2) < 1e-3 * s.iou_head_lr
    assert abs(rates[-1] - s.iou_head_lr * s.min_lr_ratio) < 0.01 * s.iou_head_lr


def test_without_image_steps_the_schedule_is_the_video_one() -> None:
    plain = TrainSettings(image_steps=0, steps=500)
    assert [stage_at(k, plain)[0] for k in (0, 499, 500)] == ["video", "video", "iou_head"]
    assert lr_at(250, plain) == lr_at(250 + 300, TrainSettings(image_steps=300, steps=500))


def test_min_objects_holds_through_the_curriculum() -> None:
    for difficulty in (0.0, 0.3, 1.0):
        cfg = scene_config(difficulty, 2, num_frames=1, seed=3)
        assert cfg.min_objects == 2 and cfg.max_objects >= 2
        counts = {len(RandomScene(scene_config(difficulty, 2, num_frames=1, seed=k)).objects)
                  for k in range(12)}
        assert min(counts) >= 2, (difficulty, counts)
    # The default curriculum starts with single objects.
    assert scene_config(0.0).max_objects == 1


def test_occlusion_chance_is_a_training_option_only() -> None:
    """--occlusion changes the chance of an occluder in training scenes (still scaled by the
    curriculum); the default and the held-out scenes keep the full distribution's 0.5."""
    full = RandomSceneConfig().p_occlusion
    assert scene_config(1.0).p_occlusion == full
    assert scene_config(1.0, p_occlusion=0.9).p_occlusion == 0.9
    assert scene_config(0.5, p_occlusion=0.9).p_occlusion == 0.45
    occluded = [len(RandomScene(scene_config(1.0, 2, p, num_frames=8, seed=k)).objects)
                for p in (0.0, 1.0) for k in range(10)]
    # An occluder is one more object in the scene, so with chance 1 every scene has one.
    assert sum(occluded[10:]) > sum(occluded[:10])


def test_runs_saved_before_a_new_option_still_resume() -> None:
    """A state file written before an option existed compares equal once that option is
    filled in at its default, and only then."""
    current = _settings_dict(TrainSettings())
    old = {k: v for k, v in current.items() if k != "iou_loss"}
    old["clip"] = {k: v for k, v in current["clip"].items() if k != "p_occlusion"}
    assert _with_defaults(old) == current
    assert _with_defaults({**old, "lr": 1.0}) != current
    assert _with_defaults(old) != _settings_dict(TrainSettings(iou_loss="mse"))


def test_shipped_presets_are_the_recipe_the_bundled_model_was_trained_with() -> None:
    """`make train-shipped` runs two presets; each must give exactly the settings of the
    options the bundled model's two runs were started with, and an option beside a preset
    wins over it."""
    from sam2_ros.cli.main import parse_args
    from sam2_ros.train.command import settings_from_args
    from sam2_ros.train.presets import PRESETS

    def settings(*argv: str) -> TrainSettings:
        return settings_from_args(parse_args(["train", *argv]))

    base = "--out out/train/sam2_ros_demo --stop-at 8800 --keep-every 500 --eval-scenes 0"
    finetune = (
        "--out out/train/sam2_ros_demo_finetune "
        "--init-from out/train/sam2_ros_demo/sam2_ros_demo.pt --image-steps 0 --steps 2200 "
        "--lr 1e-4 --curriculum 0 --occlusion 0.9 --class-weight 5 --iou-weight 5 "
        "--iou-loss mse --iou-head-steps 600 --head-phase iou+object --head-object-alpha 0.3 "
        "--keep-every 500"
    )
    for name, flags in (("shipped-base", base), ("shipped-finetune", finetune)):
        assert settings("--preset", name) == settings(*flags.split()), name
        args, plain = parse_args(["train", "--preset", name]), parse_args(["train"])
        assert (args.stop_at, args.eval_scenes) == (
            (8800, 0) if name == "shipped-base" else (plain.stop_at, plain.eval_scenes)
        )
    assert settings("--preset", "shipped-finetune") != settings()
    assert settings("--preset", "shipped-finetune", "--lr", "3e-5").lr == 3e-5
    assert finetune.count("--") == len(PRESETS["shipped-finetune"].values)
    for preset in PRESETS.values():  # one line of why per value
        assert set(preset.why) == set(preset.values)
        assert all(why.strip() for why in preset.why.values())


def test_train_options_default_to_train_settings_and_presets_name_them() -> None:
    """`sam2_ros train` with no option is TrainSettings' default recipe, and every value a
    preset sets is one of the command's options (a typo would be ignored by argparse)."""
    from sam2_ros.cli.main import parse_args
    from sam2_ros.train.options import TRAIN_OPTIONS, settings_from_args
    from sam2_ros.train.presets import PRESETS

    assert settings_from_args(parse_args(["train"])) == TrainSettings()
    names = {option.name for option in TRAIN_OPTIONS}
    for preset in PRESETS.values():
        assert set(preset.values) <= names, preset.name
