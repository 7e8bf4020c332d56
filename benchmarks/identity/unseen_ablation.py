#!/usr/bin/env python3
"""Which parts of ``tracking_mode: motion`` help on scenes nobody tuned on: an ablation.

Scores ``sam2``, the default ``motion`` and ``motion`` with one part off at a time on
held-out families (default: the unseen ones, ``evaluation/unseen``) with ``sam2_ros
evaluate``'s scoring (one click per object on the first frame, fp32): ``no-candidates``
(motion_weight 0), ``no-admission`` (every frame enters memory; guards still on),
``no-guards`` (area and look guards off), ``no-refind`` (no box prompt for a lost
object), ``no-continuity`` (no claim bonus). Prints a Markdown table per family, the mean
over families, the machine and its load; it reports, it asserts nothing.

    python -m benchmarks.identity.unseen_ablation [--families textured,clutter] [--scenes 8]
        [--frames 30] [--variants all] [--checkpoint PATH] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common.machine import cpu_model, load_average
from sam2_ros.engine.identity.policy import MotionSettings
from sam2_ros.evaluation.scene_eval import evaluate_heldout
from sam2_ros.settings import TrackerSettings

DEFAULT = MotionSettings()
#: Variant name -> (tracking_mode, motion settings or None for the parameters' defaults).
VARIANTS = {
    "sam2": ("sam2", None),
    "motion": ("motion", None),
    "no-candidates": ("motion", replace(DEFAULT, weight=0.0)),
    "no-admission": ("motion", replace(DEFAULT, admit_iou=0.0, admit_object_score=-32.0,
                                       admit_motion=0.0)),
    "no-guards": ("motion", replace(DEFAULT, admit_area=0.0, admit_appearance=0.0)),
    "no-refind": ("motion", replace(DEFAULT, reacquire_iou=2.0)),  # never accepted
    "no-continuity": ("motion", replace(DEFAULT, continuity=0.0)),
}
COLUMNS = ("J&F", "identity switches", "identity kept", "IDF1", "in view visible",
           "hidden invisible")


class _Totals:
    """An ``EvalReport.as_dict()`` read back with the report's attribute names."""

    def __init__(self, data: dict) -> None:
        self.__dict__.update(data)


def row(report) -> list[str]:
    return [f"{report.jf:.3f}", str(report.id_switches), f"{report.identity_kept:.1%}",
            f"{report.idf1:.3f}", f"{report.shown_visible_rate:.1%}",
            f"{report.hidden_invisible_rate:.1%}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="textured,clutter")
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--variants", default="all", help="comma list or 'all'")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    families = args.families.split(",")
    settings = TrackerSettings(precision="fp32", checkpoint=args.checkpoint)
    loaded = settings.load()
    # Results already in --json are kept and not run again: a long ablation may be stopped
    # and started again (variants run one after another, every family each).
    results: dict[str, dict[str, dict]] = (
        json.loads(args.json.read_text()) if args.json and args.json.exists() else {})
    start = time.time()
    print(f"machine: {cpu_model()}, load {load_average()}, "
          f"{args.threads} torch thread(s); weights: {args.checkpoint or 'bundled'}; "
          f"{args.scenes} scenes x {args.frames} frames per family", flush=True)
    for name in names:
        for family in families:
            if family in results.get(name, {}):
                continue
            mode, motion = VARIANTS[name]
            tracked = replace(settings, tracking_mode=mode)
            report = evaluate_heldout(lambda t=tracked, m=motion: t.build(loaded, m),
                                      list(range(args.scenes)), args.frames, family=family)
            results.setdefault(name, {})[family] = report.as_dict()
            print(f"{family} {name}: J&F {report.jf:.3f} ({time.time() - start:.0f} s, load "
                  f"{load_average()})", flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
    for family in families:
        print(f"\n{family}:\n\n| variant | " + " | ".join(COLUMNS) + " |")
        print("|---|" + "---|" * len(COLUMNS))
        for name in names:
            print(f"| {name} | " + " | ".join(row(_Totals(results[name][family]))) + " |")
    print(f"\nmean J&F over {', '.join(families)}:")
    for name in names:
        mean = sum(results[name][f]["jf"] for f in families) / len(families)
        print(f"  {name}: {mean:.3f}")
    print(f"\n{time.time() - start:.0f} s; load at the end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
