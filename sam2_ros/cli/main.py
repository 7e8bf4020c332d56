"""`sam2_ros`: make a synthetic camera bag, replay a bag, run the demo, train the demo model.

Each subcommand is a thin layer over the engine and its helpers; the demo alone needs
ROS 2 (it starts the real node), and imports it only when asked for. The options live in
``sam2_ros.cli.arguments`` (model defaults from the node's parameter table, so CLI and
node agree); ``build_parser``, ``parse_args`` and ``scene_selection`` are re-exported here.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sam2_ros.cli.arguments import build_parser, parse_args, scene_selection
from sam2_ros.errors import CheckpointError, ModelConfigError

__all__ = ["build_parser", "main", "missing_module", "modes_table", "parse_args",
           "scene_selection"]


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
        if args.command == "label":
            from sam2_ros.cli.label_command import run_label

            return run_label(args)
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
    except ModuleNotFoundError as exc:  # an optional dependency this command needs
        logging.getLogger(__name__).debug("import failed", exc_info=True)
        print(f"sam2_ros {args.command}: error: {missing_module(exc)}", file=sys.stderr)
        return 2


#: Where the modules the commands import on demand come from (top-level name -> how to
#: install it); pip extras are named in setup.py.
_INSTALL_HINTS = {
    "ray": "pip install 'sam2_ros[fleet]' (in a checkout: pip install '.[fleet]')",
    "tensordict": "pip install 'sam2_ros[train]' (in a checkout: pip install '.[train]')",
    "tensorboard": "pip install 'sam2_ros[train]' (in a checkout: pip install '.[train]')",
    "sam2": "install Meta's SAM 2 code: SAM2_BUILD_CUDA=0 pip install --no-build-isolation "
            "--no-deps sam2==1.1.0",
    "training": "install Meta's SAM 2 code (its sdist holds the training package): "
                "SAM2_BUILD_CUDA=0 pip install --no-build-isolation --no-deps sam2==1.1.0",
    "rclpy": "this needs ROS 2: source your ROS 2 install and this package's "
             "install/setup.bash",
}


def missing_module(exc: ModuleNotFoundError) -> str:
    """One line naming the missing module and how to install it.

    Args:
        exc: the import's error.

    Returns:
        The message, without the command's name.
    """
    name = exc.name or str(exc)
    top = name.split(".")[0]
    if name.startswith(("sam2_ros.msg", "sam2_ros.srv")) or top.endswith("_msgs"):
        top = "rclpy"  # generated interfaces: colcon's build and a ROS 2 install
    hint = _INSTALL_HINTS.get(top, f"pip install {top} (or install sam2_ros again: pip "
                                   "install .)")
    return f"the Python module '{name}' is not installed; {hint}"


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
        from sam2_ros.cli.demo_cameras import run_camera_demo
        from sam2_ros.cli.demo_runner import run_demo
    except ImportError as exc:
        print(
            f"sam2_ros demo needs ROS 2 (rclpy and the built sam2_ros interfaces): {exc}. "
            "Run it through `make demo`, or source your ROS 2 install and this package's "
            "install/setup.bash.",
            file=sys.stderr,
        )
        return 2
    if args.cameras > 1:
        if args.bag or args.detector:
            print("sam2_ros demo --cameras: synthetic scenes only (no --bag, no --detector)",
                  file=sys.stderr)
            return 2
        return run_camera_demo(args, _settings(args))
    return run_demo(args, _settings(args))


if __name__ == "__main__":
    sys.exit(main())
