"""`sam2_ros`: make a synthetic camera bag, replay a bag, run the demo, train the demo model.

Each subcommand is a thin layer over the engine and its helpers; the demo alone needs
ROS 2 (it starts the real node), and imports it only when asked for. Model defaults come
from ``sam2_ros.settings`` (the node's parameter table), so CLI and node agree.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sam2_ros.errors import CheckpointError, ModelConfigError

DESCRIPTION = """\
Streaming SAM 2 object tracking for ROS 2, offline tools.

  make-bag  render a synthetic camera scene (moving, crossing, occluded shapes) to a rosbag2
  replay    track every frame of a bag with prompts from a YAML file; writes an output bag,
            an overlay video and metrics (J&F too when the bag has ground-truth labels)
  demo      the whole product end to end: make a bag, start the real tracker node, play
            the bag into it over ROS, prompt it through its AddPrompt service, record what
            it publishes, and write an overlay video and a summary
  evaluate  score a model on held-out random scenes: J&F, hidden objects reported
            invisible, objects in view reported visible, found again after hiding
  train     train the demo model (sam2_ros_demo) from scratch on random synthetic scenes
  params    print the node's parameters as config/tracker.yaml or README's table

The default model, sam2_ros_demo, is this project's small SAM 2 trained on synthetic
scenes (bundled weights): it tracks those scenes, not real-world images. For a robot pass
an official checkpoint and its model name (see README.md).
"""


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    from sam2_ros.settings import PARAMETERS

    group = parser.add_argument_group("model (defaults: the node's parameters)")
    for name in ("model", "checkpoint", "device", "precision", "image_size", "cpu_threads",
                 "compile", "tracking_mode", "motion_weight", "motion_admit_iou",
                 "motion_admit_object_score", "motion_admit_overlap", "motion_continuity",
                 "motion_admit_area", "motion_admit_appearance"):
        p = PARAMETERS[name]
        kind = {"action": argparse.BooleanOptionalAction} if p.kind is bool else {"type": p.kind}
        if p.choices:
            kind["choices"] = p.choices
        group.add_argument(f"--{name.replace('_', '-')}", default=p.default, **kind,
                           help=f"{p.text} (default: {p.default!r})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sam2_ros", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    make_bag = sub.add_parser(
        "make-bag",
        help="write a synthetic camera scene as a rosbag2",
        description="Render a synthetic scene: textured background, shapes that move, cross, "
        "leave the frame, return and get occluded. Topics: /camera/image_raw (or "
        "/camera/image_raw/compressed), /camera/camera_info, /camera/depth/image_raw (16UC1 "
        "mm), /ground_truth/labels (16UC1, pixel = object id).",
    )
    make_bag.add_argument("out", type=Path, help="output bag folder (must not exist)")
    make_bag.add_argument("--width", type=int, default=320)
    make_bag.add_argument("--height", type=int, default=240)
    make_bag.add_argument("--fps", type=float, default=10.0)
    make_bag.add_argument("--duration", type=float, default=6.0, help="seconds")
    make_bag.add_argument("--objects", type=int, default=3, help="number of shapes")
    make_bag.add_argument("--seed", type=int, default=0)
    make_bag.add_argument("--encoding", choices=("rgb8", "bgr8"), default="rgb8")
    make_bag.add_argument("--compressed", action="store_true", help="JPEG CompressedImage")
    make_bag.add_argument("--no-depth", action="store_true", help="leave out the depth topic")
    make_bag.add_argument("--no-gt", action="store_true", help="leave out ground-truth labels")
    make_bag.add_argument(
        "--detector", action="store_true",
        help="add /detections: a synthetic detector's vision_msgs/Detection2DArray (jittered "
        "boxes with class labels, misses, weak false alarms, every 3rd frame, 2 frames late)",
    )
    make_bag.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")

    replay = sub.add_parser(
        "replay",
        help="track a bag offline (every frame, deterministic)",
        description="Track every frame of the bag's image topic (no drops, no ROS graph) with "
        "prompts from a YAML file (format: see sam2_ros/bags/prompt_file.py or README.md) "
        "and/or a detections topic of the bag (as the node's use_detections does). "
        "Writes DIR/output_bag (the node's topics), DIR/overlay.mp4, DIR/metrics.json|md "
        "and DIR/visibility.png.",
    )
    replay.add_argument("bag", type=Path)
    replay.add_argument("--prompts", type=Path,
                        help="prompts YAML file (optional with a detections topic in the bag)")
    replay.add_argument(
        "--detections-topic", default="",
        help="vision_msgs/Detection2DArray topic to create and re-prompt objects from "
        "(default: the bag's one, if any; 'none' to ignore it)",
    )
    replay.add_argument("--out", type=Path, required=True, help="output folder")
    replay.add_argument("--image-topic", default="", help="default: the camera image topic")
    replay.add_argument("--gt-topic", default="/ground_truth/labels")
    replay.add_argument(
        "--gt-dir", type=Path, help="ground-truth label PNGs (00000.png ...) instead of a topic"
    )
    replay.add_argument("--overlay-topic", action="store_true", help="also record ~/overlay")
    replay.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    _add_model_options(replay)

    demo = sub.add_parser(
        "demo",
        help="the node end to end over ROS 2 (needs rclpy)",
        description="Make (or take) a bag, start the real sam2_tracker node, play the bag into "
        "it at the recorded rate, prompt it through ~/add_prompt as a planner would, record "
        "its outputs into a bag, and write overlay.mp4, summary.md|json and visibility.png.",
    )
    demo.add_argument(
        "--bag",
        type=Path,
        help="use this bag (needs /ground_truth/labels for "
        "automatic prompts) instead of a synthetic one",
    )
    demo.add_argument("--out", type=Path, help="output folder (default out/demo-<time>)")
    demo.add_argument("--duration", type=float, default=6.0, help="synthetic scene, seconds")
    demo.add_argument("--fps", type=float, default=10.0, help="synthetic scene frame rate")
    demo.add_argument("--width", type=int, default=320)
    demo.add_argument("--height", type=int, default=240)
    demo.add_argument(
        "--detector", action="store_true",
        help="no clicks at all: a synthetic detector (jittered boxes with class labels, "
        "misses, weak false alarms, every 3rd frame, 2 frames late) publishes on the node's "
        "detections topic (use_detections) and every object comes from it",
    )
    _add_model_options(demo)

    from sam2_ros.evaluation.random_scenes import HELDOUT_FRAMES, HELDOUT_SCENES

    evaluate = sub.add_parser(
        "evaluate",
        help="score a model on held-out random scenes (J&F, visibility, found again)",
        description="Track held-out random scenes (a split training never draws from) with "
        "the streaming engine: every object visible on the first frame is clicked once at "
        "its most interior point, every frame is tracked and scored. Prints J&F, how often "
        "a fully hidden object is reported invisible, how often one in view is reported "
        "visible, and how often a returning object is found again within 5 frames. "
        "README's demo-model numbers come from it (with --precision fp32).",
    )
    evaluate.add_argument("--scenes", type=scene_selection, default=("standard", HELDOUT_SCENES),
                          metavar="[FAMILY][:N]",
                          help="held-out scenes: N (seeds 0..N-1 of the standard held-out "
                               "split), a family (standard, crossing: look-alikes that "
                               "cross, swap places, hide and come back; "
                               f"{HELDOUT_SCENES} scenes) or FAMILY:N "
                               f"(default: standard:{HELDOUT_SCENES})")
    evaluate.add_argument("--frames", type=int, default=HELDOUT_FRAMES,
                          help="frames per scene")
    evaluate.add_argument("--compare-modes", action="store_true",
                          help="score every tracking_mode (sam2, motion) on the same scenes "
                               "and print them side by side (the JSON then holds each mode)")
    evaluate.add_argument("--json", type=Path, default=None, metavar="PATH",
                          help="also write the totals and per-scene scores as JSON")
    _add_model_options(evaluate)

    train = sub.add_parser(
        "train",
        help="train the demo model from scratch (needs requirements/train.txt: make train)",
        description="Train sam2_ros_demo with Meta's SAM2Train and loss on random synthetic "
        "clips drawn on the fly (deterministic for a seed). Resumes from OUT/state.pt; "
        "writes OUT/sam2_ros_demo.pt (official checkpoint format, fp16), OUT/loss.png and "
        "OUT/report.md with held-out J&F.",
    )
    from sam2_ros.train.trainer import TrainSettings

    defaults = TrainSettings()
    train.add_argument("--out", type=Path, default=Path(defaults.out_dir))
    train.add_argument("--steps", type=int, default=defaults.steps,
                       help="video steps: the second stage's schedule (warm-up, cosine "
                            "decay, curriculum); a run may be extended by giving a larger "
                            "value on the same --out")
    train.add_argument("--image-steps", type=int, default=defaults.image_steps,
                       help="single-frame steps (SAM 2's promptable segmentation on images) "
                            "before the --steps video steps; each stage has its own schedule")
    train.add_argument("--image-share", type=float, default=defaults.image_share,
                       help="share of the video stage's steps that are single-frame clips "
                            "(images and video trained together, as SAM 2 does)")
    train.add_argument("--stop-at", type=int, default=0,
                       help="stop (and export, evaluate) at this step (counted from the first "
                            "image step); 0: at the end")
    train.add_argument("--iou-head-steps", type=int, default=defaults.iou_head_steps,
                       help="steps after the schedule that train only the heads "
                            "--head-phase names (IoU loss: MSE)")
    train.add_argument("--head-phase", choices=("iou", "iou+object"),
                       default=defaults.head_phase,
                       help="heads that phase trains: the IoU head, or it and the object-"
                            "score (occlusion) head")
    train.add_argument("--head-object-alpha", type=float, default=defaults.head_object_alpha,
                       help="that phase's object-score loss weighs in-view frames by this and "
                            "hidden ones by 1 minus it (-1: plain BCE, Meta's)")
    train.add_argument("--head-lr-schedule", choices=("constant", "cosine"),
                       default=defaults.head_lr_schedule,
                       help="that phase's learning rate: constant, or cosine decay over it")
    train.add_argument("--init-from", type=Path, default=None, metavar="CHECKPOINT",
                       help="start from these weights (Meta's checkpoint format); with "
                            "--steps 0 only the IoU-head phase runs on them")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--lr", type=float, default=defaults.lr)
    train.add_argument("--dice-weight", type=float, default=defaults.loss_weights["loss_dice"],
                       help="weight of the dice loss (Meta's 1; 20 was tried, see "
                            "docs/demo_model.md)")
    train.add_argument("--class-weight", type=float,
                       default=defaults.loss_weights["loss_class"],
                       help="weight of the object-score (occlusion head) loss (Meta's 1)")
    train.add_argument("--iou-weight", type=float, default=defaults.loss_weights["loss_iou"],
                       help="weight of the IoU-prediction loss (Meta's 1)")
    train.add_argument("--iou-loss", choices=("l1", "mse"), default=defaults.iou_loss,
                       help="IoU-prediction loss: Meta's L1 or MSE")
    train.add_argument("--curriculum", type=float, default=defaults.curriculum,
                       help="share of each stage over which clip difficulty rises to the "
                            "held-out distribution (0: full difficulty from the start, for "
                            "a fine-tune with --init-from)")
    train.add_argument("--occlusion", type=float, default=None, metavar="P",
                       help="chance of an occluder in a training scene (default: the "
                            "held-out scenes' 0.5); held-out scenes never change")
    train.add_argument("--crossing-share", type=float, default=defaults.clip.crossing_share,
                       metavar="FRACTION",
                       help="share of video clips drawn from the crossing family (look-alikes "
                            "that cross, swap, hide and return; train split only, at least "
                            "12 frames); 0: none, as before")
    train.add_argument("--threads", type=int, default=defaults.threads, help="0: every core")
    train.add_argument("--clip-frames", type=int, default=defaults.clip.num_frames)
    train.add_argument("--min-objects", type=int, default=defaults.clip.min_objects,
                       help="fewest objects in a training scene, curriculum included")
    train.add_argument("--image-size", type=int, default=defaults.clip.image_size)
    train.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    train.add_argument("--keep-every", type=int, default=defaults.keep_every, metavar="N",
                       help="also keep the weights every N steps as OUT/checkpoints/"
                            "step_N.pt (a multiple of --checkpoint-every; 0: newest only)")
    train.add_argument("--clips", type=int, default=defaults.clips,
                       help="0: a new random clip every step; n: cycle through n clips "
                       "(a smoke test that the model can learn)")
    train.add_argument("--eval-scenes", type=int, default=HELDOUT_SCENES,
                       help="held-out scenes for the final report (0: none)")
    train.add_argument("--eval-frames", type=int, default=HELDOUT_FRAMES)
    from sam2_ros.train.presets import PRESETS

    train.add_argument("--preset", choices=list(PRESETS), default=None,
                       help="start from a named recipe (sam2_ros/train/presets.py: "
                            + "; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values())
                            + "); options given beside it win")
    train.add_argument("--install", action="store_true",
                       help="copy the result over the bundled sam2_ros/models/sam2_ros_demo.pt")

    parser.set_defaults(train_parser=train)  # parse_args applies a preset's values to it
    params = sub.add_parser("params", help="print the node's parameters (generated docs)")
    params.add_argument("--format", choices=("yaml", "markdown"), default="yaml")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; for `train --preset NAME`, parsed again with the preset's values as
    the defaults, so that options given beside it win."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "preset", None):
        from sam2_ros.train.presets import preset_defaults

        args.train_parser.set_defaults(**preset_defaults(args.preset))
        args = parser.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from sam2_ros.bags.bag_io import BagError
    from sam2_ros.bags.prompt_file import PromptFileError
    from sam2_ros.bags.replay import ReplayError

    try:
        if args.command == "make-bag":
            return _make_bag(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "train":
            from sam2_ros.train.command import run_training

            return run_training(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "params":
            from sam2_ros.settings import parameters_markdown, parameters_yaml

            print(parameters_yaml() if args.format == "yaml" else parameters_markdown(), end="")
            return 0
        return _demo(args)
    except (
        BagError,
        ReplayError,
        PromptFileError,
        ModelConfigError,
        CheckpointError,
        FileExistsError,
        ValueError,
    ) as exc:
        print(f"sam2_ros {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _settings(args: argparse.Namespace):
    from sam2_ros.settings import TrackerSettings

    return TrackerSettings.from_values(args)


def _from_args(cls, args: argparse.Namespace, **renamed):
    """A dataclass from the command-line arguments of the same names (plus ``renamed``)."""
    from dataclasses import fields

    same = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return cls(**{**same, **renamed})


def _make_bag(args: argparse.Namespace) -> int:
    from sam2_ros.bags.bag_io import inspect_bag, write_scene_bag
    from sam2_ros.evaluation.synthetic_detector import DetectorConfig
    from sam2_ros.evaluation.synthetic_scene import SceneConfig

    cfg = _from_args(SceneConfig, args, duration_s=args.duration, num_objects=args.objects,
                     with_depth=not args.no_depth)
    write_scene_bag(
        args.out,
        cfg,
        storage=args.storage,
        image_encoding=args.encoding,
        compressed=args.compressed,
        with_gt=not args.no_gt,
        detector=DetectorConfig() if args.detector else None,
    )
    info = inspect_bag(args.out)
    print(f"wrote {args.out} ({info.storage}, {info.duration_s:.1f} s):")
    for topic in info.topics.values():
        print(f"  {topic.name}  {topic.msgtype}  x{topic.count}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from sam2_ros.bags.replay import ReplayOptions, replay_bag
    from sam2_ros.evaluation.run_summary import identity_line, summary_table

    options = _from_args(ReplayOptions, args, write_overlay_topic=args.overlay_topic)
    report = replay_bag(args.bag, args.prompts, args.out, _settings(args), options)
    summary = report.summary
    if summary.get("random_weights"):
        print("NOTE: RANDOM weights (no --checkpoint): the masks mean nothing.")
    print(summary_table(summary))
    if "detections" in summary:
        d = summary["detections"]
        print(f"detections ({d['topic']}): {d['messages']} messages, {d['bad']} unusable; "
              f"{d['objects_created']} objects created, {d['re_prompts']} re-prompts, "
              f"{d['removed']} removed, {d['refused']} refused")
    timing = summary["frame_time_s"]
    print(f"{report.frames} frames, per frame p50 {timing['p50']:.3f} s p95 {timing['p95']:.3f} s")
    if "J&F_mean" in summary:
        print(
            f"J&F {summary['J&F_mean']:.3f} (J {summary['J_mean']:.3f}, F {summary['F_mean']:.3f})"
        )
        print(identity_line(summary))
    print(
        f"outputs in {report.out_dir}: output_bag/ overlay.mp4 metrics.md metrics.json "
        "visibility.png"
    )
    if report.interrupted:
        print("interrupted: the output bag holds the frames processed so far", file=sys.stderr)
        return 130
    return 0


def scene_selection(text: str) -> tuple[str, int]:
    """``--scenes``: "N", "FAMILY" or "FAMILY:N" -> (family, number of scenes)."""
    from sam2_ros.evaluation.random_scenes import FAMILIES, HELDOUT_SCENES

    family, _, count = text.partition(":")
    if family.isdigit() and not count:
        family, count = "standard", family
    if family not in FAMILIES:
        raise argparse.ArgumentTypeError(
            f"unknown scene family {family!r}: one of {', '.join(FAMILIES)} (or a number)")
    try:
        number = int(count) if count else HELDOUT_SCENES
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of scenes: {count!r}") from None
    return family, number


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from sam2_ros.evaluation.scene_eval import evaluate_model

    family, count = args.scenes
    if count < 1 or args.frames < 2:
        raise ValueError(f"--scenes must be >= 1 and --frames >= 2 (got {count}, "
                         f"{args.frames})")
    if family == "crossing" and args.frames < 12:
        raise ValueError(f"crossing scenes need --frames >= 12, got {args.frames}")
    settings = _settings(args)
    loaded = settings.load()
    if loaded.random_weights:
        print("NOTE: RANDOM weights (no --checkpoint): expect scores near 0.")
    from dataclasses import replace

    from sam2_ros.settings import PARAMETERS

    modes = PARAMETERS["tracking_mode"].choices if args.compare_modes else (
        settings.tracking_mode,)
    reports = {
        mode: evaluate_model(replace(settings, tracking_mode=mode), list(range(count)),
                             args.frames, progress=sys.stderr.isatty(), loaded=loaded,
                             family=family)
        for mode in modes
    }
    weights = settings.checkpoint or ("random" if loaded.random_weights else "bundled")
    print(f"{settings.model} (weights: {weights}; precision {settings.precision}): "
          f"{count} held-out scenes, {args.frames} frames each ({family} family)")
    for mode, report in reports.items():
        print(f"\ntracking_mode {mode}:")
        print("\n".join(report.markdown()))
    if len(reports) > 1:
        print("\n" + "\n".join(modes_table(reports)))
    if args.json:
        data = (next(iter(reports.values())).as_dict() if len(reports) == 1
                else {mode: r.as_dict() for mode, r in reports.items()})
        args.json.write_text(json.dumps(data, indent=2))
        print(f"scores: {args.json}")
    return 0


def modes_table(reports: dict) -> list[str]:
    """Tracking modes side by side: J&F, identity and visibility on the same scenes."""
    rows = ["| tracking_mode | J&F | identity switches | scenes with a switch | identity kept "
            "| IDF1 | in view reported visible | hidden reported invisible |",
            "|---|---|---|---|---|---|---|---|"]
    for mode, r in reports.items():
        rows.append(f"| {mode} | {r.jf:.3f} | {r.id_switches} | {r.scenes_with_switch} of "
                    f"{len(r.scenes)} | {r.identity_kept:.1%} | {r.idf1:.3f} "
                    f"| {r.shown_visible_rate:.1%} | {r.hidden_invisible_rate:.1%} |")
    return rows


def _demo(args: argparse.Namespace) -> int:
    try:
        from sam2_ros.cli.demo_runner import run_demo
    except ImportError as exc:
        print(
            f"sam2_ros demo needs ROS 2 (rclpy and the built sam2_ros interfaces): {exc}. "
            "Run it through `make demo`, or source your ROS 2 install and this package's "
            "install/setup.bash.",
            file=sys.stderr,
        )
        return 2
    return run_demo(args, _settings(args))


if __name__ == "__main__":
    sys.exit(main())
