"""`sam2_ros`'s command line: one function per subcommand, ``build_parser`` assembles them.

Option names, defaults and help are a contract with users and scripts. Model options come
from the node's parameter table (``sam2_ros.settings``), train options from
``TrainSettings`` (``sam2_ros.train.options``), so neither repeats a default.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Streaming SAM 2 object tracking for ROS 2, offline tools.

  make-bag  render a synthetic camera scene (moving, crossing, occluded shapes) to a rosbag2
  replay    track every frame of a bag with prompts from a YAML file; writes an output bag,
            an overlay video and metrics (J&F too when the bag has ground-truth labels)
  label     replay many bags on Ray (local workers, or a cluster with --address)
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


def _add_model_options(parser: argparse.ArgumentParser, **defaults: object) -> None:
    """The node's model parameters as options; ``defaults`` overrides the table's for one
    command."""
    from sam2_ros.settings import PARAMETERS

    group = parser.add_argument_group("model (defaults: the node's parameters)")
    for name in ("model", "checkpoint", "device", "precision", "image_size", "cpu_threads",
                 "compile", "preprocessing", "tracking_mode", "motion_weight",
                 "motion_admit_iou", "motion_admit_object_score", "motion_admit_overlap",
                 "motion_continuity", "motion_admit_area", "motion_admit_appearance"):
        p = PARAMETERS[name]
        kind = {"action": argparse.BooleanOptionalAction} if p.kind is bool else {"type": p.kind}
        if p.choices:
            kind["choices"] = p.choices
        default = defaults.get(name, p.default)
        group.add_argument(f"--{name.replace('_', '-')}", default=default, **kind,
                           help=f"{p.text} (default: {default!r})")


def _add_make_bag(sub) -> None:
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


def _add_replay(sub) -> None:
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


def _add_demo(sub) -> None:
    demo = sub.add_parser(
        "demo",
        help="the node end to end over ROS 2 (needs rclpy)",
        description="Make (or take) a bag, start the real sam2_tracker node, play the bag into "
        "it at the recorded rate, prompt it through ~/add_prompt as a planner would, record "
        "its outputs into a bag, and write overlay.mp4, summary.md|json and visibility.png. "
        "Its scene is look-alike shapes crossing, so --tracking-mode defaults to motion here.",
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
    demo.add_argument(
        "--lockstep", action="store_true",
        help="publish each camera frame once the node answered the previous one, instead "
        "of at the recorded rate: what is judged is the tracker, not the machine's speed",
    )
    demo.add_argument(
        "--cameras", type=int, default=1,
        help="N > 1: N synthetic cameras (different scenes) into one node (its cameras "
        "parameter), each prompted through its own ~/<camera>/add_prompt; summary per camera, "
        "overlay side by side",
    )
    # The demo's scene is look-alike shapes crossing, where README advises motion.
    _add_model_options(demo, tracking_mode="motion")


def _add_evaluate(sub) -> None:
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
                               "cross, swap places, hide and come back; textured, clutter: "
                               "families nobody trained or tuned on; "
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


def _add_train(sub) -> argparse.ArgumentParser:
    """`train`: its options generated from ``sam2_ros.train.options`` (TrainSettings'
    defaults), then the preset and install switches."""
    from sam2_ros.train.options import TRAIN_OPTIONS
    from sam2_ros.train.presets import PRESETS
    from sam2_ros.train.trainer import TrainSettings

    train = sub.add_parser(
        "train",
        help="train the demo model from scratch (needs requirements/train.txt: make train)",
        description="Train sam2_ros_demo with Meta's SAM2Train and loss on random synthetic "
        "clips drawn on the fly (deterministic for a seed). Resumes from OUT/state.pt; "
        "writes OUT/sam2_ros_demo.pt (official checkpoint format, fp16), OUT/loss.png and "
        "OUT/report.md with held-out J&F.",
    )
    defaults = TrainSettings()
    for option in TRAIN_OPTIONS:
        train.add_argument(option.flag, **option.argument(defaults))
    train.add_argument("--preset", choices=list(PRESETS), default=None,
                       help="start from a named recipe (sam2_ros/train/presets.py: "
                            + "; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values())
                            + "); options given beside it win")
    train.add_argument("--install", action="store_true",
                       help="copy the result over the bundled sam2_ros/models/sam2_ros_demo.pt")
    return train


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand's options; the train parser rides along for ``parse_args``."""
    from sam2_ros.cli.label_command import add_label_parser

    parser = argparse.ArgumentParser(
        prog="sam2_ros", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_make_bag(sub)
    _add_replay(sub)
    add_label_parser(sub, _add_model_options)
    _add_demo(sub)
    _add_evaluate(sub)
    train = _add_train(sub)
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


def scene_selection(text: str) -> tuple[str, int]:
    """``--scenes``: "N", "FAMILY" or "FAMILY:N" -> (family, number of scenes)."""
    from sam2_ros.evaluation.random_scenes import FAMILIES, HELDOUT_SCENES
    from sam2_ros.evaluation.unseen.families import UNSEEN_FAMILIES

    family, _, count = text.partition(":")
    if family.isdigit() and not count:
        family, count = "standard", family
    known = [*FAMILIES, *UNSEEN_FAMILIES]
    if family not in known:
        raise argparse.ArgumentTypeError(
            f"unknown scene family {family!r}: one of {', '.join(known)} (or a number)")
    try:
        number = int(count) if count else HELDOUT_SCENES
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of scenes: {count!r}") from None
    return family, number

