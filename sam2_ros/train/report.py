"""The end of a training run: loss curve picture and held-out tracking quality."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

from sam2_ros.evaluation.scene_eval import EvalReport, evaluate_model
from sam2_ros.settings import TrackerSettings


def moving_average(values: list[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` steps (shorter at the start)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return data
    sums = np.cumsum(np.insert(data, 0, 0.0))
    idx = np.arange(1, data.size + 1)
    lo = np.maximum(0, idx - window)
    return (sums[idx] - sums[lo]) / (idx - lo)


def plot_losses(losses: list[float], path: Path, title: str,
                val_losses: list | None = None) -> None:
    """Loss per step (faint), its moving average and the held-out validation loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="#9ab", linewidth=0.5, alpha=0.6, label="loss per step")
    window = max(10, len(losses) // 60)
    ax.plot(steps, moving_average(losses, window), color="#c33", linewidth=1.8,
            label=f"moving average ({window} steps)")
    if val_losses:
        ax.plot([v[0] for v in val_losses], [v[1] for v in val_losses], color="#236",
                marker="o", markersize=3, linewidth=1.4, label="held-out validation clips")
    ax.set_yscale("log")
    ax.set_xlabel("step (one clip)")
    ax.set_ylabel("SAM 2 training loss (Meta's loss, dice weight 20)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def evaluate_checkpoint(
    checkpoint: Path, image_size: int, seeds: list[int], num_frames: int, progress: bool
) -> EvalReport:
    """Held-out scores of an exported checkpoint, tracked by the streaming engine in fp32
    (what `sam2_ros evaluate --checkpoint ... --precision fp32` prints)."""
    from sam2_ros.engine.model_loading import DEMO_MODEL

    settings = TrackerSettings(model=DEMO_MODEL, checkpoint=str(checkpoint), device="cpu",
                               precision="fp32", image_size=image_size)
    return evaluate_model(settings, seeds, num_frames, progress)


def write_report(out: Path, losses: list[float], seconds: float, steps: int,
                 evaluation: EvalReport | None, command: str,
                 val_losses: list | None = None, iou_head_losses: list | None = None) -> Path:
    """report.md + report.json + loss.png in ``out``."""
    head = iou_head_losses or []
    plot_losses(losses, out / "loss.png", f"sam2_ros_demo training ({len(losses)} steps)",
                val_losses)
    tail = losses[-200:]
    data = {
        "steps": len(losses), "planned_steps": steps, "seconds": seconds,
        "final_loss_mean_200": float(np.mean(tail)) if tail else None,
        "machine": f"{platform.processor() or platform.machine()}",
        "command": command,
        "val_losses": val_losses or [],
        "iou_head_steps": len(head),
        "iou_head_loss_first_last_50": [float(np.mean(head[:50])), float(np.mean(head[-50:]))]
        if head else None,
        "heldout": evaluation.as_dict() if evaluation else None,
    }
    (out / "report.json").write_text(json.dumps(data, indent=2))
    lines = [
        "# sam2_ros_demo training report", "",
        f"- command: `{command}`",
        f"- steps: {len(losses)} of {steps}, {seconds / 60:.1f} min",
        f"- loss (mean of the last 200 steps): {data['final_loss_mean_200']:.3f}"
        if tail else "- no steps yet",
        f"- IoU-head phase: {len(head)} steps, loss {data['iou_head_loss_first_last_50'][0]:.4f}"
        f" (first 50) -> {data['iou_head_loss_first_last_50'][1]:.4f} (last 50)"
        if head else "- IoU-head phase: not run",
        "", "![loss](loss.png)", "",
    ]
    if evaluation:
        lines += [f"## Held-out scenes ({len(evaluation.scenes)}, never trained on)", "",
                  *evaluation.markdown()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "report.md"
