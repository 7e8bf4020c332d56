"""Train the demo model from scratch with Meta's training step and loss.

Why not Meta's ``training.trainer.Trainer``: it is built around distributed data loaders,
datasets on disk and hydra experiment folders. What we reuse is what defines SAM 2
training: ``SAM2Train`` (prompt sampling, conditioning frames, memory) and
``MultiStepMultiMasksAndIous`` (Meta's losses and weights). The loop around them is
small: a clip a step, AdamW with warm-up and cosine decay, gradient clipping, and a
resumable state file. Two stages, as SAM 2 itself was trained: ``image_steps``
single-frame clips first, then ``steps`` video clips with memory, each with its own
warm-up, decay and curriculum.

Clip ``i`` is drawn from ``(seed, i)`` alone and the state file carries the random states,
so a resumed run continues the same sequence; the arithmetic may still drift between
reruns (docs/demo_model.md, "Reproducing it").
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from sam2_ros.train.clips import ClipSettings, sample_clip

LOG = logging.getLogger(__name__)

#: SAM2Train options as in Meta's SAM 2.1 training config (prompt sampling and correction).
SAM2_TRAIN_OPTIONS = {
    "prob_to_use_pt_input_for_train": 0.5,
    "prob_to_use_box_input_for_train": 0.5,
    "prob_to_sample_from_gt_for_train": 0.1,
    "num_frames_to_correct_for_train": 2,
    "rand_frames_to_correct_for_train": True,
    "add_all_frames_to_correct_as_cond": True,
    "num_init_cond_frames_for_train": 2,
    "rand_init_cond_frames_for_train": True,
    "num_correction_pt_per_frame": 7,
}

#: Loss weights: Meta's (sam2.1 training config: mask 20, dice 1, IoU 1, class 1). The
#: bundled model's fine-tune weighs the object-score and IoU losses 5 (presets.py); a dice
#: weight of 20 was tried and not adopted (docs/demo_model.md).
LOSS_WEIGHTS = {"loss_mask": 20.0, "loss_dice": 1.0, "loss_iou": 1.0, "loss_class": 1.0}

#: Parameters the phase after the schedule trains (``TrainSettings.head_phase``).
HEAD_PHASE_PARAMS = {
    "iou": ("iou_prediction_head",),
    "iou+object": ("iou_prediction_head", "pred_obj_score_head"),
}


@dataclass
class TrainSettings:
    """Everything that determines a training run (saved beside its checkpoints).

    The defaults are the default recipe (``make train``), which is also part 1 of the
    bundled model's (``presets.py`` names both parts). One line of why per field; what was
    measured for each: docs/demo_model.md.
    """

    out_dir: str = "out/train/sam2_ros_demo"
    model: str = "sam2_ros_demo"  # the config trained: sam2_ros/models/sam2_ros_demo.yaml
    # Single-frame steps first: trained on video alone the model masked every object,
    # whatever was clicked.
    image_steps: int = 6000
    # Single-frame clips within the video stage, as SAM 2 trains on both, to keep the
    # prompt-following the image stage taught.
    image_share: float = 0.25
    steps: int = 4000  # video steps: the second stage's schedule
    seed: int = 0  # clip i comes from (seed, i) alone: a resumed run draws the same clips
    lr: float = 2e-4  # peak learning rate of each stage (AdamW)
    min_lr_ratio: float = 0.05  # cosine decay ends at this share of the peak
    warmup_steps: int = 100  # linear warm-up at the start of each stage
    weight_decay: float = 0.05  # AdamW's, as in Meta's SAM 2.1 training config
    grad_clip: float = 1.0  # gradient norm clip, as in Meta's config
    # Share of each stage over which clips go from easy (one object, nothing hidden) to the
    # held-out distribution: from full difficulty at once the model learned no tracking.
    curriculum: float = 0.4
    # IoU loss: Meta's "l1", or "mse", which regresses the mean IoU rather than its
    # median, so the IoU head tells the decoder's three candidates apart.
    iou_loss: str = "l1"
    clips: int = 0  # 0: a new clip every step; n: cycle through n clips (smoke tests)
    # Start from these weights ({"model": state_dict}) instead of random ones (a fine-tune);
    # with steps 0 only the head phase runs on them.
    init_from: str = ""
    val_clips: int = 4  # held-out clips whose loss is measured at every checkpoint
    precision: str = "fp32"  # bf16 autocast was measured no faster at this model size
    threads: int = 0  # 0: every core
    checkpoint_every: int = 50  # steps between resumable checkpoints
    # Also keep the weights every this many steps (OUT/checkpoints/), to judge a run along
    # the way; 0: only the newest. A multiple of checkpoint_every.
    keep_every: int = 0
    # Steps after the schedule that train only the heads head_phase names (IoU loss MSE):
    # they pick among the decoder's candidates and decide "visible". Off by default: alone
    # on the video-only model they lowered held-out J&F.
    iou_head_steps: int = 0
    iou_head_lr: float = 1e-3  # that phase's learning rate
    # That phase's rate: "constant" (the bundled model's) or "cosine" decay, which was
    # measured to leave the object score ranking hidden frames no better.
    head_lr_schedule: str = "constant"
    # Heads that phase trains: "iou", or "iou+object", which adds the object-score
    # (occlusion) head behind ``visible``.
    head_phase: str = "iou"
    # Focal alpha of that phase's object-score loss: in-view frames weigh alpha, hidden ones
    # 1 - alpha, since hidden frames are few (-1: plain BCE, Meta's).
    head_object_alpha: float = -1.0
    clip: ClipSettings = field(default_factory=ClipSettings)
    loss_weights: dict[str, float] = field(default_factory=lambda: dict(LOSS_WEIGHTS))


@dataclass
class TrainState:
    """What a resumed run needs besides the weights."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # (step, loss on the fixed validation clips) at the start and at every checkpoint.
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    # IoU-head phase: MSE between predicted and actual IoU of the candidates, per step.
    iou_head_losses: list[float] = field(default_factory=list)


def build_train_model(model: str, seed: int, image_size: int) -> torch.nn.Module:
    """Meta's SAM2Train from a sam2_ros model config, with SAM 2's training options."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from sam2_ros.engine.model_loading import resolve_config

    cfg = OmegaConf.load(resolve_config(model))
    cfg.model._target_ = "training.model.sam2.SAM2Train"
    cfg.model.image_size = image_size
    OmegaConf.update(cfg, "model", SAM2_TRAIN_OPTIONS, merge=True)
    OmegaConf.resolve(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = instantiate(cfg.model, _recursive_=True)
    net.rng = np.random.default_rng(seed)  # SAM2Train's prompt sampler
    return net


def stage_at(step: int, settings: TrainSettings) -> tuple[str, int, int]:
    """(stage, step within it, its length): "image", "video" or "iou_head"."""
    if step < settings.image_steps:
        return "image", step, settings.image_steps
    step -= settings.image_steps
    if step < settings.steps:
        return "video", step, settings.steps
    return "iou_head", step - settings.steps, settings.iou_head_steps


def lr_at(step: int, settings: TrainSettings) -> float:
    """Per stage: linear warm-up, then cosine decay to min_lr_ratio * lr; the IoU-head
    phase at its own rate."""
    stage, step, length = stage_at(step, settings)
    if stage == "iou_head":
        if settings.head_lr_schedule == "constant":
            return settings.iou_head_lr
        return cosine_decay(settings.iou_head_lr, settings.min_lr_ratio, step / max(1, length))
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    span = max(1, length - settings.warmup_steps)
    return cosine_decay(settings.lr, settings.min_lr_ratio, (step - settings.warmup_steps) / span)


def cosine_decay(peak: float, floor_ratio: float, progress: float) -> float:
    """From ``peak`` at progress 0 to ``floor_ratio * peak`` at 1 (and after)."""
    floor = peak * floor_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    """One training run in ``settings.out_dir``; resumes from its state file when present."""

    STATE = "state.pt"
    EXPORT = "sam2_ros_demo.pt"

    def __init__(self, settings: TrainSettings) -> None:
        from training.loss_fns import MultiStepMultiMasksAndIous

        from sam2_ros.engine.model_loading import cpu_autocast_dtype

        self.settings = settings
        self.out = Path(settings.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        self.autocast = cpu_autocast_dtype(settings.precision)
        self.model = build_train_model(settings.model, settings.seed, settings.clip.image_size)
        if settings.init_from:
            weights = torch.load(settings.init_from, map_location="cpu", weights_only=True)
            self.model.load_state_dict(weights["model"])
        self.model.train()
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 or "pos_embed" in name else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": settings.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr)
        self.loss_fn = MultiStepMultiMasksAndIous(
            weight_dict=dict(settings.loss_weights), supervise_all_iou=True,
            iou_use_l1_loss=settings.iou_loss == "l1",
            pred_obj_scores=True, focal_gamma_obj_score=0.0, focal_alpha_obj_score=-1.0)
        train_object = settings.head_phase == "iou+object"
        self.head_loss_fn = MultiStepMultiMasksAndIous(
            weight_dict={"loss_mask": 0.0, "loss_dice": 0.0, "loss_iou": 1.0,
                         "loss_class": 1.0 if train_object else 0.0},
            supervise_all_iou=True, iou_use_l1_loss=False, pred_obj_scores=True,
            focal_gamma_obj_score=0.0, focal_alpha_obj_score=settings.head_object_alpha)
        self.head_params = HEAD_PHASE_PARAMS[settings.head_phase]
        self.state = TrainState()
        torch.manual_seed(settings.seed)
        self._resume()

    # ------------------------------------------------------------------ state
    def _resume(self) -> None:
        path = self.out / self.STATE
        if not path.exists():
            return
        data = torch.load(path, map_location="cpu", weights_only=False)
        if _with_defaults(data["settings"]) != _settings_dict(self.settings):
            raise ValueError(
                f"{path} was written with other settings; use another --out or the same settings"
            )
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        torch.set_rng_state(data["torch_rng"])
        self.model.rng.bit_generator.state = data["prompt_rng"]
        self.state = TrainState(**data["state"])
        LOG.info("resumed %s at step %d", path, self.state.step)

    def save(self) -> Path:
        """Write the resumable state atomically (a kill mid-write keeps the previous one)."""
        path = self.out / self.STATE
        tmp = path.with_suffix(".tmp")
        torch.save({
            "settings": _settings_dict(self.settings),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "prompt_rng": self.model.rng.bit_generator.state,
            "state": asdict(self.state),
        }, tmp)
        os.replace(tmp, path)
        (self.out / "losses.json").write_text(json.dumps(self.state.losses))
        (self.out / "val_losses.json").write_text(json.dumps(self.state.val_losses))
        (self.out / "iou_head_losses.json").write_text(json.dumps(self.state.iou_head_losses))
        return path

    def export(self, path: Path | None = None) -> Path:
        """The weights as an official-format ``{"model": state_dict}`` checkpoint in fp16."""
        path = path or self.out / self.EXPORT
        state = {k: (v.half() if v.is_floating_point() else v)
                 for k, v in self.model.state_dict().items()}
        tmp = path.with_suffix(".tmp")
        torch.save({"model": state}, tmp)
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------ training
    def step(self) -> float:
        """One optimisation step on clip number ``state.step``; returns its loss."""
        from training.trainer import CORE_LOSS_KEY

        s = self.settings
        stage, stage_step, stage_length = stage_at(self.state.step, s)
        head_phase = stage == "iou_head"
        for name, p in self.model.named_parameters():
            p.requires_grad = not head_phase or any(h in name for h in self.head_params)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.state.step, s)
        difficulty = stage_step / max(1.0, s.curriculum * stage_length) if not head_phase else 1.0
        index = self.state.step % s.clips if s.clips else self.state.step
        single = stage == "image" or (
            stage == "video" and s.image_share > 0
            and np.random.default_rng([0x1A6E, s.seed, index]).random() < s.image_share)
        clip = replace(s.clip, num_frames=1) if single else s.clip
        batch = sample_clip(clip, seed=s.seed * 1_000_003 + index, difficulty=difficulty)
        loss_fn = self.head_loss_fn if head_phase else self.loss_fn
        with torch.autocast("cpu", dtype=self.autocast or torch.bfloat16,
                            enabled=self.autocast is not None):
            outputs = self.model(batch)
            losses = loss_fn(outputs, batch.masks)
        loss = losses[CORE_LOSS_KEY]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        self.optimizer.step()
        value = float(loss.detach())
        (self.state.iou_head_losses if head_phase else self.state.losses).append(value)
        self.state.step += 1
        return value

    def validation_loss(self) -> float:
        """Mean loss on fixed held-out clips, in eval mode (the first frame's mask as the
        prompt, as SAM 2 evaluates); the random states training uses are left untouched."""
        from training.trainer import CORE_LOSS_KEY

        torch_state = torch.get_rng_state()
        prompt_state = self.model.rng.bit_generator.state
        self.model.eval()
        values = []
        try:
            with torch.no_grad():
                # judged as shipped: the held-out distribution, whatever the run trains on
                heldout = replace(self.settings.clip, p_occlusion=None, crossing_share=0.0,
                                  variety=0.0)
                for k in range(self.settings.val_clips):
                    batch = sample_clip(heldout, seed=k, split="heldout")
                    losses = self.loss_fn(self.model(batch), batch.masks)
                    values.append(float(losses[CORE_LOSS_KEY]))
        finally:
            self.model.train()
            torch.set_rng_state(torch_state)
            self.model.rng.bit_generator.state = prompt_state
        return sum(values) / max(1, len(values))

    def _validate(self) -> None:
        if self.settings.val_clips > 0:
            self.state.val_losses.append((self.state.step, self.validation_loss()))

    def run(self, progress: bool = True, stop_at: int = 0) -> TrainState:
        """Train up to ``settings.steps`` and the IoU-head phase after it (or to ``stop_at``,
        a step of that schedule), saving every ``checkpoint_every`` steps and at the last."""
        from tqdm import tqdm

        s = self.settings
        total = s.image_steps + s.steps + s.iou_head_steps
        last = min(total, stop_at) if stop_at > 0 else total
        if not self.state.val_losses:
            self._validate()
        bar = tqdm(total=last, initial=min(self.state.step, last), desc="train", unit="step",
                   disable=not progress, dynamic_ncols=True)
        started = time.perf_counter() - self.state.seconds
        pace = _Pace(self.state.step, self.state.seconds)
        try:
            while self.state.step < last:
                self.step()
                self.state.seconds = time.perf_counter() - started
                recent = (self.state.iou_head_losses
                          if self.state.step > s.image_steps + s.steps
                          else self.state.losses)[-50:]
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}",
                                lr=f"{lr_at(self.state.step, s):.1e}")
                bar.update(1)
                if self.state.step % s.checkpoint_every == 0 or self.state.step == last:
                    self._validate()
                    self.save()
                    exported = self.export()
                    if s.keep_every and self.state.step % s.keep_every == 0:
                        kept = self.out / "checkpoints" / f"step_{self.state.step:05d}.pt"
                        kept.parent.mkdir(exist_ok=True)
                        shutil.copyfile(exported, kept)
                    if not progress:
                        pace.log(self.state, last, sum(recent) / len(recent),
                                 lr_at(self.state.step, s))
        finally:
            bar.close()
        return self.state


class _Pace:
    """Progress for a log file (nohup, CI) where tqdm's bar is off: a line at a checkpoint
    at most once a minute, with the pace since the previous line and the time left at it."""

    def __init__(self, step: int, seconds: float, every_s: float = 60.0) -> None:
        self.step, self.seconds, self.every_s = step, seconds, every_s

    def log(self, state: TrainState, last: int, loss: float, lr: float) -> None:
        elapsed = state.seconds - self.seconds
        if elapsed < self.every_s and state.step < last:
            return
        per_step = elapsed / max(1, state.step - self.step)
        val = f", held-out clips {state.val_losses[-1][1]:.3f}" if state.val_losses else ""
        print(f"[train] step {state.step}/{last} ({state.step / last:.0%}): loss {loss:.3f} "
              f"(last 50){val}, lr {lr:.1e}, {per_step:.2f} s/step, about "
              f"{per_step * (last - state.step) / 60:.0f} min left at this pace", flush=True)
        self.step, self.seconds = state.step, state.seconds


def _with_defaults(saved: dict) -> dict:
    """A saved settings dict with the fields added since it was written at their defaults,
    so runs from before a new option still resume."""
    defaults = _settings_dict(TrainSettings())
    merged = {**defaults, **saved}
    merged["clip"] = {**defaults["clip"], **saved.get("clip", {})}
    return merged


def _settings_dict(settings: TrainSettings) -> dict:
    """Settings that change the result (not where it goes or how it is printed)."""
    data = asdict(settings)
    data.pop("out_dir")
    data.pop("checkpoint_every")
    data.pop("keep_every")
    data.pop("threads")
    data.pop("val_clips")
    data.pop("steps")  # a run may be extended (its schedule and curriculum follow --steps)
    data.pop("iou_head_steps")  # the IoU-head phase may be added to a finished run
    data.pop("iou_head_lr")
    data.pop("head_lr_schedule")
    data.pop("head_phase")
    data.pop("head_object_alpha")
    return data
