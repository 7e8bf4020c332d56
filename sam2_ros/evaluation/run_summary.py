"""Numbers and a picture of a tracking run: visibility and scores over time, timing
percentiles, and J&F against ground truth where there is one.

Shared by the offline replay and the live demo so both report the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2_ros.engine.results import ObjectResult
from sam2_ros.evaluation.davis_metrics import contour_accuracy, region_similarity
from sam2_ros.evaluation.identity_metrics import IdentityTally


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else 0.0


@dataclass
class RunTimeline:
    """Per-object visibility and score on every reported frame, and per-frame timings."""

    stamps: list[int] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)
    visible: dict[int, dict[int, bool]] = field(default_factory=dict)  # id -> frame -> bool
    scores: dict[int, dict[int, float]] = field(default_factory=dict)
    frame_seconds: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    j_scores: dict[int, list[float]] = field(default_factory=dict)
    f_scores: dict[int, list[float]] = field(default_factory=dict)
    identity: IdentityTally = field(default_factory=IdentityTally)

    def add_frame(
        self, stamp: int, objects: Iterable[ObjectResult], seconds: float | None = None
    ) -> None:
        frame = len(self.stamps)
        self.stamps.append(stamp)
        for obj in objects:
            self.labels[obj.object_id] = obj.label
            self.visible.setdefault(obj.object_id, {})[frame] = bool(obj.visible)
            self.scores.setdefault(obj.object_id, {})[frame] = float(obj.score)
        if seconds is not None:
            self.frame_seconds.append(seconds)

    def add_ground_truth(
        self, objects: Iterable[ObjectResult], gt_labels: np.ndarray, gt_ids: dict[int, int]
    ) -> None:
        """J and F of each object's mask against its ground-truth label id on one frame,
        and whether each mask sits on its own object (``identity``)."""
        masks = {}
        for obj in objects:
            gt_mask = gt_labels == gt_ids.get(obj.object_id, obj.object_id)
            pred = obj.mask if obj.visible else np.zeros_like(gt_mask)
            masks[obj.object_id] = obj.mask if obj.visible else None
            self.j_scores.setdefault(obj.object_id, []).append(region_similarity(pred, gt_mask))
            self.f_scores.setdefault(obj.object_id, []).append(contour_accuracy(pred, gt_mask))
        self.identity.add_frame(masks, gt_labels, gt_ids)

    def summary(self) -> dict:
        objects = {}
        for object_id in sorted(self.visible):
            visible = self.visible[object_id]
            scores = [s for f, s in self.scores[object_id].items() if visible.get(f)]
            entry = {
                "label": self.labels.get(object_id, ""),
                "frames_reported": len(visible),
                "frames_visible": sum(visible.values()),
                "mean_score": float(np.mean(scores)) if scores else 0.0,
            }
            if object_id in self.j_scores:
                j = float(np.mean(self.j_scores[object_id]))
                f = float(np.mean(self.f_scores[object_id]))
                entry.update({"J": j, "F": f, "J&F": (j + f) / 2})
            ident = self.identity.objects.get(object_id)
            if ident is not None:
                entry.update({"identity_switches": ident.switches,
                              "identity_kept": ident.kept_share, "IDF1": ident.idf1})
            objects[object_id] = entry
        result: dict = {
            "frames": len(self.stamps),
            "objects": objects,
            "frame_time_s": {
                "p50": percentile(self.frame_seconds, 50),
                "p95": percentile(self.frame_seconds, 95),
                "total": float(sum(self.frame_seconds)),
            },
        }
        if self.latencies:
            result["latency_s"] = {
                "p50": percentile(self.latencies, 50),
                "p95": percentile(self.latencies, 95),
            }
        if self.j_scores:
            js = [o["J"] for o in objects.values() if "J" in o]
            fs = [o["F"] for o in objects.values() if "F" in o]
            result["J_mean"] = float(np.mean(js))
            result["F_mean"] = float(np.mean(fs))
            result["J&F_mean"] = (result["J_mean"] + result["F_mean"]) / 2
            result["identity"] = {
                "switches": self.identity.switches,
                "identity_kept": self.identity.kept_share,
                "IDF1": self.identity.idf1,
                "scored_frames": self.identity.scored_frames,
            }
        return result


def summary_table(summary: dict) -> str:
    """A small Markdown table of the per-object numbers."""
    has_gt = "J&F_mean" in summary
    head = "| id | label | frames visible | mean score |" + (
        " J | F | J&F | id switches | identity kept | IDF1 |" if has_gt else "")
    rule = "|---:|---|---:|---:|" + ("---:|---:|---:|---:|---:|---:|" if has_gt else "")
    rows = [head, rule]
    for object_id, o in summary["objects"].items():
        row = (
            f"| {object_id} | {o['label']} | {o['frames_visible']}/{o['frames_reported']} "
            f"| {o['mean_score']:.3f} |"
        )
        if has_gt:
            row += f" {o.get('J', 0):.3f} | {o.get('F', 0):.3f} | {o.get('J&F', 0):.3f} |"
            if "identity_kept" in o:
                row += (f" {o['identity_switches']} | {o['identity_kept']:.1%} "
                        f"| {o['IDF1']:.3f} |")
            else:
                row += " - | - | - |"
        rows.append(row)
    return "\n".join(rows)


def identity_line(summary: dict) -> str:
    """One line on whether ids stayed on their objects (summary with ground truth)."""
    ident = summary["identity"]
    return (f"Identity: {ident['switches']} switch(es), kept on {ident['identity_kept']:.1%} "
            f"of {ident['scored_frames']} object-frames, IDF1 {ident['IDF1']:.3f}")


def verdict_line(summary: dict) -> str:
    """One line a person reads first: frames processed (of those sent, when the run could
    drop some), J&F and identity switches when there was ground truth, the node's engine
    time when it reported one. Parts a run did not measure are left out, not shown as 0."""
    processed = summary.get("frames_processed", summary.get("frames", 0))
    parts = [
        f"{processed}/{summary['frames_in']} frames processed"
        if "frames_in" in summary
        else f"{processed} frames processed"
    ]
    if "J&F_mean" in summary:
        parts.append(f"J&F {summary['J&F_mean']:.3f}")
    else:
        parts.append("no ground truth, no J&F")
    if "identity" in summary:
        parts.append(f"{summary['identity']['switches']} identity switch(es)")
    if summary.get("engine_frame_ms_median") is not None:
        parts.append(f"engine {summary['engine_frame_ms_median']:.0f} ms/frame")
    return "verdict: " + ", ".join(parts)


def write_summary(summary: dict, folder: Path, name: str, title: str, notes: Sequence[str]) -> None:
    """name.json (all numbers) and name.md (what a person reads)."""
    (folder / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"# {title}", "", *notes, "", summary_table(summary), ""]
    timing = summary["frame_time_s"]
    if timing["p50"] > 0:
        lines.append(
            f"Per-frame tracking time: p50 {timing['p50']:.3f} s, p95 {timing['p95']:.3f} s"
        )
    if "latency_s" in summary:
        lat = summary["latency_s"]
        lines.append(f"End-to-end latency: p50 {lat['p50']:.3f} s, p95 {lat['p95']:.3f} s")
    if "J&F_mean" in summary:
        lines.append(
            f"Against ground truth: J {summary['J_mean']:.3f}, F {summary['F_mean']:.3f}, "
            f"J&F {summary['J&F_mean']:.3f}"
        )
        lines.append(identity_line(summary))
    (folder / f"{name}.md").write_text("\n".join(lines) + "\n")


def plot_visibility(timeline: RunTimeline, path: Path, title: str) -> None:
    """One lane per object: where it was visible, and its score over the frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sam2_ros.imaging.overlay import object_color

    ids = sorted(timeline.visible)
    fig, (ax_vis, ax_score) = plt.subplots(
        2,
        1,
        figsize=(9, 1.2 + 0.5 * max(1, len(ids)) + 2.2),
        sharex=True,
        gridspec_kw={"height_ratios": [max(1, len(ids)), 3]},
    )
    for lane, object_id in enumerate(ids):
        b, g, r = object_color(object_id)
        colour = (r / 255, g / 255, b / 255)
        frames = sorted(timeline.visible[object_id])
        shown = [f for f in frames if timeline.visible[object_id][f]]
        ax_vis.broken_barh([(f - 0.5, 1.0) for f in shown], (lane - 0.4, 0.8), color=colour)
        label = f"{object_id} {timeline.labels.get(object_id, '')}".strip()
        ax_score.plot(
            frames, [timeline.scores[object_id][f] for f in frames], color=colour, label=label
        )
    ax_vis.set_yticks(range(len(ids)), [str(i) for i in ids])
    ax_vis.set_ylabel("object id")
    ax_vis.set_title(title)
    ax_score.set_ylabel("predicted IoU")
    ax_score.set_xlabel("frame")
    if ids:
        ax_score.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
