"""`sam2_ros train`'s options as a table: each row names the TrainSettings field it sets.

Defaults come from ``TrainSettings`` (as the model options' come from the node's parameter
table), so the command line, a saved run and ``settings_from_args`` agree; presets are
keyed by the same names. Rows without a field are the command's own (when to stop, the
final evaluation), not the run's. ``cli/arguments.py`` turns the rows into options.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

from sam2_ros.evaluation.random_scenes import HELDOUT_FRAMES, HELDOUT_SCENES
from sam2_ros.train.trainer import HEAD_PHASE_PARAMS, TrainSettings

_UNSET = object()


@dataclass(frozen=True)
class TrainOption:
    """One option: ``--name`` (dashes for underscores), the field it sets, and its help."""

    name: str  # argparse's dest
    #: The TrainSettings field: a name, or ``clip.NAME`` / ``loss_weights.KEY`` inside one;
    #: empty for an option of the command alone (its default is then ``default``).
    field: str = ""
    text: str | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    #: The value's type; default: that of the field's default. Path fields hold "" for none.
    kind: type | None = None
    default: object = _UNSET

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def field_default(self, settings: TrainSettings) -> object:
        """The field's value in ``settings`` (``clip.x`` and ``loss_weights.x`` looked into)."""
        group, _, key = self.field.rpartition(".")
        if group == "loss_weights":
            return settings.loss_weights[key]
        return getattr(getattr(settings, group) if group else settings, key)

    def argument(self, settings: TrainSettings) -> dict[str, object]:
        """``add_argument``'s keywords, the default taken from ``settings``."""
        if self.default is not _UNSET:
            default = self.default
        else:
            default = self.field_default(settings)
            if self.kind is Path:
                default = Path(default) if default else None
        keywords = {"type": self.kind or type(default), "default": default}
        if self.choices:
            keywords["choices"] = self.choices
        if self.metavar:
            keywords["metavar"] = self.metavar
        if self.text is not None:
            keywords["help"] = self.text
        return keywords


TRAIN_OPTIONS: tuple[TrainOption, ...] = (
    TrainOption("out", "out_dir", kind=Path),
    TrainOption("steps", "steps",
                "video steps: the second stage's schedule (warm-up, cosine decay, curriculum); "
                "a run may be extended by giving a larger value on the same --out"),
    TrainOption("image_steps", "image_steps",
                "single-frame steps (SAM 2's promptable segmentation on images) before the "
                "--steps video steps; each stage has its own schedule"),
    TrainOption("image_share", "image_share",
                "share of the video stage's steps that are single-frame clips (images and "
                "video trained together, as SAM 2 does)"),
    TrainOption("stop_at", text="stop (and export, evaluate) at this step (counted from the "
                "first image step); 0: at the end", kind=int, default=0),
    TrainOption("iou_head_steps", "iou_head_steps",
                "steps after the schedule that train only the heads --head-phase names "
                "(IoU loss: MSE)"),
    TrainOption("head_phase", "head_phase",
                "heads that phase trains: the IoU head, or it and the object-score "
                "(occlusion) head", choices=tuple(HEAD_PHASE_PARAMS)),
    TrainOption("head_object_alpha", "head_object_alpha",
                "that phase's object-score loss weighs in-view frames by this and hidden ones "
                "by 1 minus it (-1: plain BCE, Meta's)"),
    TrainOption("head_lr_schedule", "head_lr_schedule",
                "that phase's learning rate: constant, or cosine decay over it",
                choices=("constant", "cosine")),
    TrainOption("init_from", "init_from",
                "start from these weights (Meta's checkpoint format); with --steps 0 only the "
                "IoU-head phase runs on them", metavar="CHECKPOINT", kind=Path),
    TrainOption("seed", "seed"),
    TrainOption("lr", "lr"),
    TrainOption("dice_weight", "loss_weights.loss_dice",
                "weight of the dice loss (Meta's 1; 20 was tried, see docs/demo_model.md)"),
    TrainOption("class_weight", "loss_weights.loss_class",
                "weight of the object-score (occlusion head) loss (Meta's 1)"),
    TrainOption("iou_weight", "loss_weights.loss_iou",
                "weight of the IoU-prediction loss (Meta's 1)"),
    TrainOption("iou_loss", "iou_loss", "IoU-prediction loss: Meta's L1 or MSE",
                choices=("l1", "mse")),
    TrainOption("curriculum", "curriculum",
                "share of each stage over which clip difficulty rises to the held-out "
                "distribution (0: full difficulty from the start, for a fine-tune with "
                "--init-from)"),
    TrainOption("occlusion", "clip.p_occlusion",
                "chance of an occluder in a training scene (default: the held-out scenes' "
                "0.5); held-out scenes never change", metavar="P", kind=float),
    TrainOption("crossing_share", "clip.crossing_share",
                "share of video clips drawn from the crossing family (look-alikes that cross, "
                "swap, hide and return; train split only, at least 12 frames); 0: none, as "
                "before", metavar="FRACTION"),
    TrainOption("variety", "clip.variety",
                "share of clips re-dressed with more variety (backdrops of many kinds and "
                "scales, clutter, flat objects, zoom, warp, light, blur; "
                "train/varied_scenes.py); 0: none, as before", metavar="FRACTION"),
    TrainOption("threads", "threads", "0: every core"),
    TrainOption("clip_frames", "clip.num_frames"),
    TrainOption("min_objects", "clip.min_objects",
                "fewest objects in a training scene, curriculum included"),
    TrainOption("image_size", "clip.image_size"),
    TrainOption("checkpoint_every", "checkpoint_every"),
    TrainOption("keep_every", "keep_every",
                "also keep the weights every N steps as OUT/checkpoints/step_N.pt (a multiple "
                "of --checkpoint-every; 0: newest only)", metavar="N"),
    TrainOption("clips", "clips",
                "0: a new random clip every step; n: cycle through n clips (a smoke test that "
                "the model can learn)"),
    TrainOption("eval_scenes", text="held-out scenes for the final report (0: none)",
                kind=int, default=HELDOUT_SCENES),
    TrainOption("eval_frames", kind=int, default=HELDOUT_FRAMES),
)


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """The run's TrainSettings from the options' values (a preset's included); warm-up is
    the default's, shortened to a tenth of a short run."""
    defaults = TrainSettings()
    top: dict[str, object] = {}
    clip: dict[str, object] = {}
    weights = dict(defaults.loss_weights)
    for option in TRAIN_OPTIONS:
        if not option.field:
            continue
        value = getattr(args, option.name)
        if option.kind is Path:
            value = str(value or "")
        group, _, key = option.field.rpartition(".")
        {"": top, "clip": clip, "loss_weights": weights}[group][key] = value
    return TrainSettings(
        **top, warmup_steps=min(defaults.warmup_steps, max(1, args.steps // 10)),
        clip=replace(defaults.clip, **clip), loss_weights=weights)
