"""One picture of a model's training history across runs: loss and held-out quality.

The bundled demo model is made by several `sam2_ros train` runs in a row (a schedule, a
fine-tune from its weights, a phase on the heads); each run's report plots its own loss
only. This draws them on one step axis, with the held-out scores `sam2_ros evaluate --json`
measured on checkpoints along the way, so docs/demo_model.md can show where the curve stands against
the targets instead of a table alone::

    python -m sam2_ros.train.history --run "part 1=out/train/sam2_ros_demo:8800" \\
        --run "part 2=out/train/sam2_ros_demo_finetune" --point 8800=part1.json \\
        --mark 6000="video steps" --out docs/demo_model_training.png

Each run's loss is drawn with that run's loss weights, so levels of different runs are not
comparable (a fine-tune that weighs a term up sits higher); their trends and the held-out
scores are.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Issue 9's targets for the demo model on held-out scenes.
TARGET_JF = 0.85
TARGET_HIDDEN_INVISIBLE = 0.8


def moving_median(values: list[float], window: int) -> np.ndarray:
    """Trailing median over ``window`` steps (shorter at the start). A median, not a mean:
    single clips with a loss of thousands (a prompt on a sliver of an object) would
    otherwise lift the curve for a whole window."""
    data = np.asarray(values, dtype=float)
    return np.array([np.median(data[max(0, i + 1 - window):i + 1]) for i in range(data.size)])


@dataclass
class RunLosses:
    """What one run directory recorded (``losses.json``, ``val_losses.json``, ...)."""

    name: str
    losses: list[float]
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    head_steps: int = 0

    @classmethod
    def read(cls, spec: str) -> RunLosses:
        """``[LABEL=]DIR[:N]``: N keeps only the first N schedule steps (a run resumed past
        the step its checkpoint was exported at); the label defaults to the folder's name."""
        label, _, rest = spec.rpartition("=")
        path, _, limit = rest.partition(":")
        run = Path(path)
        losses = json.loads((run / "losses.json").read_text())
        n = int(limit) if limit else len(losses)
        val_file = run / "val_losses.json"
        val = json.loads(val_file.read_text()) if val_file.is_file() else []
        head_file = run / "iou_head_losses.json"
        head = json.loads(head_file.read_text()) if head_file.is_file() and not limit else []
        return cls(label or run.name, losses[:n], [(int(s), float(v)) for s, v in val if s <= n],
                   len(head))


@dataclass
class HeldoutPoint:
    """Held-out scores of the checkpoint at a global step (`sam2_ros evaluate --json`)."""

    step: int
    jf: float
    hidden_invisible: float

    @classmethod
    def read(cls, spec: str) -> HeldoutPoint:
        step, _, path = spec.partition("=")
        data = json.loads(Path(path).read_text())
        return cls(int(step), float(data["jf"]), float(data["hidden_invisible_rate"]))


COLOURS = ("#c33", "#37a", "#393", "#a5c")


def _plot_losses(top, bottom, runs: list[RunLosses]) -> None:
    """Each run's loss, its moving median and validation losses, one after another; a
    heads-only phase shaded on both axes."""
    start = 0
    for k, run in enumerate(runs):
        colour = COLOURS[k % len(COLOURS)]
        steps = list(range(start + 1, start + len(run.losses) + 1))
        top.plot(steps, run.losses, color=colour, linewidth=0.4, alpha=0.18)
        window = max(10, len(run.losses) // 40)
        top.plot(steps, moving_median(run.losses, window), color=colour, linewidth=1.8,
                 label=f"{run.name}: training loss ({window}-step median, its loss weights)")
        if run.val_losses:
            top.plot([start + s for s, _ in run.val_losses], [v for _, v in run.val_losses],
                     color=colour, marker="o", markersize=2.5, linewidth=0.8, linestyle=":",
                     label=f"{run.name}: held-out validation clips")
        start += len(run.losses)
        if run.head_steps:
            for ax in (top, bottom):
                ax.axvspan(start, start + run.head_steps, color="#999", alpha=0.15)
            top.text(start + run.head_steps / 2, 0.97, "heads\nonly", ha="center", va="top",
                     fontsize=7, transform=top.get_xaxis_transform())
            start += run.head_steps


def _plot_heldout(bottom, points: list[HeldoutPoint]) -> None:
    """Held-out J&F and hidden-invisible rate at the measured checkpoints, targets dashed."""
    points = sorted(points, key=lambda p: p.step)
    bottom.axhline(TARGET_JF, color="#c33", linewidth=0.9, linestyle="--",
                   label=f"target J&F {TARGET_JF}")
    bottom.axhline(TARGET_HIDDEN_INVISIBLE, color="#37a", linewidth=0.9, linestyle="--",
                   label=f"target hidden reported invisible {TARGET_HIDDEN_INVISIBLE:.0%}")
    if points:
        xs = [p.step for p in points]
        bottom.plot(xs, [p.jf for p in points], color="#c33", marker="o",
                    label="held-out J&F")
        bottom.plot(xs, [p.hidden_invisible for p in points], color="#37a", marker="s",
                    markersize=4, label="hidden frames reported invisible")
        for p in points:
            bottom.annotate(f"{p.jf:.2f}", (p.step, p.jf), textcoords="offset points",
                            xytext=(0, 6), ha="center", fontsize=7, color="#c33")
    bottom.set_ylim(0, 1)
    bottom.set_xlabel("step (one clip each; runs one after another)")
    bottom.set_ylabel("held-out scenes")
    bottom.grid(True, alpha=0.25)
    bottom.legend(loc="upper left", fontsize=7)


def plot_history(runs: list[RunLosses], points: list[HeldoutPoint],
                 marks: list[tuple[int, str]], path: Path, title: str) -> Path:
    """Loss per run on one step axis (top) and held-out J&F and hidden-invisible rate at
    the measured checkpoints (bottom), with the targets dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.4), dpi=110, sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    _plot_losses(top, bottom, runs)
    for step, label in marks:
        for ax in (top, bottom):
            ax.axvline(step, color="#555", linewidth=0.8, linestyle="--")
        top.text(step, 0.97, f" {label}", ha="left", va="top", fontsize=8,
                 transform=top.get_xaxis_transform())
    top.set_yscale("log")
    top.set_ylabel("SAM 2 training loss")
    top.set_title(title)
    top.grid(True, which="both", alpha=0.25)
    top.legend(loc="lower left", fontsize=7)
    _plot_heldout(bottom, points)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sam2_ros.train.history",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, metavar="[LABEL=]DIR[:N]",
                        help="a `sam2_ros train --out` folder, in the order they ran (N: "
                             "its first N steps only)")
    parser.add_argument("--point", action="append", default=[], metavar="STEP=JSON",
                        help="`sam2_ros evaluate --json` of the checkpoint at this step")
    parser.add_argument("--mark", action="append", default=[], metavar="STEP=LABEL",
                        help="a labelled vertical line (a stage boundary)")
    parser.add_argument("--title", default="sam2_ros_demo: training history")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    marks = [(int(s), label) for s, _, label in (m.partition("=") for m in args.mark)]
    path = plot_history([RunLosses.read(r) for r in args.run],
                        [HeldoutPoint.read(p) for p in args.point], marks, args.out, args.title)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
