"""`sam2_ros train`: the training run, its report and (optionally) installing the result."""

from __future__ import annotations

import argparse
import shutil
import sys

from sam2_ros.engine.model_loading import BUNDLED_CHECKPOINTS, DEMO_MODEL
from sam2_ros.train.options import settings_from_args


def run_training(args: argparse.Namespace) -> int:
    """Train (or resume), export, evaluate on held-out scenes and write the report."""
    try:
        import training.loss_fns  # noqa: F401  (Meta's training package and its extra needs)

        from sam2_ros.train.trainer import Trainer
    except ImportError as exc:
        print(f"sam2_ros train needs the training dependencies ({exc}): pip install "
              "'.[train]', or `make train` in a checkout (requirements/train.txt into "
              ".train-site/)", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    if settings.keep_every % settings.checkpoint_every:
        raise ValueError(f"--keep-every {settings.keep_every} must be a multiple of "
                         f"--checkpoint-every {settings.checkpoint_every}")
    trainer = Trainer(settings)
    if trainer.state.step:
        print(f"[train] resuming {args.out} at step {trainer.state.step}")
    progress = sys.stderr.isatty()
    state = trainer.run(progress=progress, stop_at=args.stop_at)
    exported = trainer.export()
    print(f"[train] {state.step} steps in {state.seconds / 60:.1f} min -> {exported}")
    evaluation = None
    if args.eval_scenes > 0:
        from sam2_ros.train.report import evaluate_checkpoint

        evaluation = evaluate_checkpoint(
            exported, settings.clip.image_size, list(range(args.eval_scenes)),
            args.eval_frames, progress)
        print(f"[train] held-out J&F {evaluation.jf:.3f} over {len(evaluation.scenes)} scenes; "
              f"hidden frames reported invisible {evaluation.hidden_invisible_rate:.0%}, "
              f"found again within 5 frames {evaluation.refound_rate:.0%}")
    from sam2_ros.train.report import write_report

    command = "sam2_ros train " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "sam2_ros train"
    report = write_report(args.out, state.losses, state.seconds,
                          settings.image_steps + settings.steps, evaluation,
                          command, state.val_losses, state.iou_head_losses)
    print(f"[train] report: {report} (loss curve: {args.out / 'loss.png'})")
    if args.install:
        target = BUNDLED_CHECKPOINTS[DEMO_MODEL]
        shutil.copyfile(exported, target)
        print(f"[train] installed {exported} as {target}")
    return 0
