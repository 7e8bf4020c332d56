"""`sam2_ros label BAG... --out DIR`: label many bags on Ray (sam2_ros.fleet), with progress
bars of bags and frames and a summary at the end. Its options live here, not in main.py."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

DESCRIPTION = (
    "Label many bags, each tracked exactly as `sam2_ros replay` tracks it, by a pool of "
    "workers that each load the model once. Without --address an embedded Ray runs on this "
    "machine for the command; with --address auto or ray://HOST:PORT an existing cluster "
    "does (bags and --out on storage every node sees). A bag finished before (OUT/<bag>/"
    "label.json) is skipped; a failing bag is reported and the others go on. Writes "
    "OUT/<bag>/ (output_bag, metrics.*, preview.png, overlay.mp4 with --video), "
    "OUT/summary.json|md and OUT/contact_sheet.png. See docs/fleet_labelling.md."
)


def add_label_parser(sub, add_model_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The `label` subcommand's options (model options as the node's parameters)."""
    label = sub.add_parser("label", help="label many bags on Ray (local or a cluster)",
                           description=DESCRIPTION)
    label.add_argument("bags", nargs="+", metavar="BAG",
                       help="bag folders, folders of bags, MCAP files, globs, or text files "
                            "listing them (one per line)")
    label.add_argument("--out", type=Path, required=True, help="output folder")
    label.add_argument("--prompts", type=Path,
                       help="prompts YAML for every bag without a <bag>.prompts.yaml beside it")
    label.add_argument("--detections-topic", default="",
                       help="as replay's (default: each bag's one, if any; 'none': ignore)")
    label.add_argument("--image-topic", default="", help="default: the camera image topic")
    label.add_argument("--gt-topic", default="/ground_truth/labels")
    label.add_argument("--video", action="store_true", help="also write OUT/<bag>/overlay.mp4")
    label.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    fleet = label.add_argument_group("workers")
    fleet.add_argument("--workers", type=int, default=2, help="actors (default 2)")
    fleet.add_argument("--cpus-per-worker", type=float, default=1.0)
    fleet.add_argument("--gpus-per-worker", type=float, default=0.0)
    fleet.add_argument("--address", default=None,
                       help="an existing Ray cluster: auto or ray://HOST:PORT (default: an "
                            "embedded Ray started and stopped by this command)")
    fleet.add_argument("--retries", type=int, default=1,
                       help="further tries of a bag whose worker died (default 1)")
    add_model_options(label)


def run_label(args: argparse.Namespace) -> int:
    """Label the bags; 0 when all are done or skipped, 1 when any failed, 130 on Ctrl-C."""
    from sam2_ros.bags.replay import ReplayOptions
    from sam2_ros.fleet.bag_list import find_jobs
    from sam2_ros.fleet.ray_pool import FleetError, PoolConfig, label_bags
    from sam2_ros.fleet.results import summary_markdown, write_summary
    from sam2_ros.settings import TrackerSettings

    if args.workers < 1 or args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise ValueError("--workers must be >= 1, --cpus-per-worker > 0, --gpus-per-worker >= 0")
    jobs = find_jobs(args.bags, args.prompts)
    # 0 (every core) would let each worker spin on all of them: one thread per CPU it holds.
    threads = args.cpu_threads or max(1, round(args.cpus_per_worker))
    settings = TrackerSettings.from_values(args, cpu_threads=threads)
    options = ReplayOptions(image_topic=args.image_topic, gt_topic=args.gt_topic,
                            detections_topic=args.detections_topic, storage=args.storage,
                            video=args.video, progress=False)
    pool = PoolConfig(args.workers, args.cpus_per_worker, args.gpus_per_worker, args.address,
                      args.retries)
    try:
        with _Bars(len(jobs)) as bars:
            result = label_bags(jobs, args.out, settings, options, pool, bars.on_event)
    except FleetError as exc:
        print(f"sam2_ros label: error: {exc}", file=sys.stderr)
        return 2
    write_summary(result, args.out)
    print(summary_markdown(result))
    print(f"summary: {args.out / 'summary.md'}, {args.out / 'contact_sheet.png'}")
    failed = [r for r in result.records if r["status"] == "failed"]
    if result.interrupted:
        print("interrupted: unfinished bags are not marked done; run again to finish them",
              file=sys.stderr)
        return 130
    if failed:
        print(f"sam2_ros label: {len(failed)} bag(s) failed: "
              + "; ".join(f"{r['name']}: {r['reason']}" for r in failed), file=sys.stderr)
        return 1
    return 0


class _Bars:
    """Two tqdm bars, bags and frames, fed by the pool's events (off when not a terminal)."""

    def __init__(self, bags: int) -> None:
        from tqdm import tqdm

        self.bags = tqdm(total=bags, desc="bags", unit="bag", position=0, disable=None)
        self.frames = tqdm(total=0, desc="frames", unit="frame", position=1, disable=None)
        self.by_bag: dict[str, tuple[int, int]] = {}  # bag -> (frames done, frames in it)

    def __enter__(self) -> _Bars:
        return self

    def on_event(self, event: str, data) -> None:
        if event == "frames":
            self.by_bag.update({bag: (done, total) for bag, done, total in data.values()})
        elif event == "bag":
            self.bags.update(1)
            self.bags.set_postfix_str(f"last: {data['name']} {data['status']}")
            done = self.by_bag.get(data["name"], (0, 0))[0]
            if data["status"] in ("done", "failed"):
                frames = data.get("frames", done)
                self.by_bag[data["name"]] = (frames, frames)
        self.frames.total = sum(total for _, total in self.by_bag.values())
        self.frames.n = sum(done for done, _ in self.by_bag.values())
        self.frames.refresh()

    def __exit__(self, *exc_info: object) -> None:
        self.frames.close()
        self.bags.close()
