"""Benchmarks: our StreamingTracker side by side with the reference implementations.

One run, one machine, one model config (SAM 2.1 tiny, seeded random weights unless
--checkpoint), one image_size, the same synthetic frames (written as JPEGs for Meta's
predictor, which loads a JPEG folder; our engine gets the same decoded JPEG pixels) and
the same prompts (one positive click per object on frame 0). It reports, never asserts:

1. per-frame time, ours vs Meta's SAM2VideoPredictor (plus its vos_optimized variant, in
   a time-limited process) vs transformers' Sam2VideoModel in streaming mode;
2. memory over a long stream (>= 1,000 frames at a small image_size), one process each;
3. per-frame time with 1, 2, 4, 8 objects;
4. the ROS node's end-to-end latency at 30 Hz (benchmarks.node_latency);
5. on CUDA: bf16 autocast and --compile on/off (skipped, and said so, on a CPU).
Writes DIR/results.json, DIR/results.md and PNG plots (default DIR: benchmarks/out).
Run from the repository root: ``python -m benchmarks.run [--quick]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import engines, hf, machine, runner, stats
from benchmarks.common.scene import write_scene
from benchmarks.report import write_report

HERE = Path(__file__).resolve().parent
#: Defaults of the sizes --quick shrinks: (quick, full).
SIZES = {
    "frames": (12, 40),
    "vos_timeout": (0, 420),
    "memory_frames": (200, 1000),
    "memory_every": (20, 25),
    "scaling_frames": (8, 16),
    "node_duration": (10.0, 30.0),
    "quiet_wait": (60.0, 300.0),
}
NOTES = [
    "Hole filling is off in both engines: Meta's predictor fills holes only with sam2's "
    "CUDA extension (here it warns and skips), so ours runs with fill_hole_area=0.",
    "Meta's predictor loads and resizes every frame in init_state before tracking "
    "(time reported separately); ours decodes nothing ahead and resizes inside track().",
    "Random weights do not change the compute: same shapes, same operations per frame.",
    "Engines are run in lockstep (frame i on each before frame i+1), so background load on "
    "a shared machine hits all alike; each still has the cores to itself while it runs.",
    "Per-frame medians skip frames 1-2; the memory bank fills until frame 7, hence the "
    "extra 'frames >= 8' column.",
    "Meta's predictor yields mask logits at the video's resolution as a tensor; ours "
    "returns numpy masks and logits plus box, centroid and area per object.",
    "transformers' streaming session also keeps every frame's pixels and every output "
    "(Sam2VideoInferenceSession.processed_frames, output_dict_per_obj; from its code, "
    "not measured here).",
]


def _add_comparison_args(p: argparse.ArgumentParser) -> None:
    """The scene, model and output of the run; what the comparison times."""
    p.add_argument("--quick", action="store_true",
                   help="smoke-test sizes (fewer frames, shorter node run, no vos_optimized)")
    p.add_argument("--image-size", type=int, default=256,
                   help="model input size for the comparison and object scaling (default 256)")
    p.add_argument("--frames", type=int, default=None, help="frames in the comparison (40)")
    p.add_argument("--objects", type=int, default=1, help="objects in the comparison (1)")
    p.add_argument("--width", type=int, default=640, help="camera frame width (640)")
    p.add_argument("--height", type=int, default=480, help="camera frame height (480)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--out", default=str(HERE / "out"), help="output folder (benchmarks/out)")
    p.add_argument("--checkpoint", default=None,
                   help="official SAM 2.1 tiny checkpoint (default: seeded random weights)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", metavar="RESULTS_JSON", default=None,
                   help="only rewrite results.md and the plots from an earlier results.json")
    p.add_argument("--compile", action="store_true",
                   help="CUDA only: also time our engine with the image encoder compiled")
    p.add_argument("--skip", default="",
                   help="comma list of sections to skip: hf,vos,memory,scaling,node")
    p.add_argument("--hf-site", default=os.environ.get("SAM2_BENCH_HF_SITE", hf.DEFAULT_HF_SITE),
                   help="folder with transformers installed outside the venv (appended to "
                        "sys.path); default $SAM2_BENCH_HF_SITE or /tmp/hf_site")
    p.add_argument("--quiet-wait", type=float, default=None,
                   help="most seconds, in all, to wait for other processes to leave the CPU "
                        "before timed steps (300; 0 = never wait)")


def _add_section_args(p: argparse.ArgumentParser) -> None:
    """Sizes of the sections after the comparison: vos_optimized, memory, scaling, node."""
    p.add_argument("--vos-timeout", type=int, default=None,
                   help="time limit (s) of the vos_optimized run, compilation included (420)")
    p.add_argument("--vos-warm-cache", action="store_true",
                   help="let the vos_optimized run reuse torch's inductor cache (default: a "
                        "fresh cache, so its compile time is a first run's)")
    p.add_argument("--memory-frames", type=int, default=None, help="long stream length (1000)")
    p.add_argument("--memory-image-size", type=int, default=128)
    p.add_argument("--memory-every", type=int, default=None, help="sample every N frames (25)")
    p.add_argument("--scaling-objects", default="1,2,4,8")
    p.add_argument("--scaling-frames", type=int, default=None, help="frames per count (16)")
    p.add_argument("--node-duration", type=float, default=None,
                   help="seconds of 30 Hz camera for the node (30)")
    p.add_argument("--node-threads", default="0,2",
                   help="torch threads of the node per run (its cpu_threads parameter); "
                        "0 = the node's default, every core (0,2)")
    p.add_argument("--node-width", type=int, default=320)
    p.add_argument("--node-height", type=int, default=240)


def _comma_ints(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The run's options, with --quick's smaller sizes filled in where none was given."""
    p = argparse.ArgumentParser(description="SAM 2 streaming benchmarks (ours vs references)")
    _add_comparison_args(p)
    _add_section_args(p)
    args = p.parse_args(argv)
    for name, (quick, full) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.quick:
        args.skip.add("vos")
    args.scaling_objects = _comma_ints(args.scaling_objects)
    args.node_threads = _comma_ints(args.node_threads)
    if args.frames < 4:
        p.error("--frames must be >= 4 (2 warm-up frames are skipped)")
    return args


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available on this machine")
    return name


def _hf_engine(args, scene, n: int, device) -> tuple[hf.HFEngine | None, dict]:
    """transformers' engine for the comparison, or None and the row that says why not."""
    import torch

    if "hf" in args.skip:
        return None, {"skipped": "skipped with --skip hf"}
    hf_mod, problem = hf.hf_import(args.hf_site)
    if problem:
        return None, {"skipped": problem}
    dtype = torch.bfloat16 if device.type == "cuda" else None
    try:
        model = hf.build_hf(args.image_size, device, args.seed, dtype)
        engine = hf.HFEngine(model, scene, n, str(device), args.image_size, dtype=dtype)
    except Exception as exc:
        return None, {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
    return engine, {"transformers": hf_mod.__version__,
                    "processor_problem": engine.processor_problem}


def run_compare(args, ctx, results) -> None:
    """Section 1: per-frame time of ours, Meta's predictor and transformers in lockstep."""
    import numpy as np
    import torch
    from tqdm import tqdm

    scene, loaded, official = ctx["scene"], ctx["loaded"], ctx["official"]
    device = loaded.device
    n = args.objects
    ours = engines.OursEngine(loaded, scene, n)
    autocast = torch.bfloat16 if device.type == "cuda" else None
    off = engines.OfficialEngine(official, scene, n, device, args.frames,
                                 autocast_dtype=autocast)
    hf_engine, hf_row = _hf_engine(args, scene, n, device)
    rows: dict[str, dict] = {"hf": hf_row}
    running = [ours, off] + ([hf_engine] if hf_engine else [])
    for engine in tqdm(running, desc="frame 0 + prompts", unit="engine"):
        engine.start()
    times = engines.lockstep(running, args.frames,
                             f"compare ({n} object, {args.frames} frames)", ctx["gate"])
    for engine in running:
        row = rows.setdefault(engine.name, {})
        row.update(stats.warm_stats(times[engine.name], steady_from=stats.STEADY_FROM))
        row["times"] = times[engine.name]
        row["prompt_s"] = engine.prompt_s
    rows["official"]["init_state_s"] = off.init_state_s
    rows["official"]["load_per_frame_s"] = off.load_per_frame()
    off.close()
    warm = [dict(t, rest=t["total"] - sum(v for k, v in t.items() if k != "total"))
            for t in ours.stages[2:]]
    stages = {k: float(np.median([t[k] for t in warm])) for k in warm[0]} if warm else {}
    results["compare"] = {"objects": n, "frames": args.frames, "rows": rows,
                          "ours_stage_medians_s": stages}
    del running, ours, off, hf_engine
    gc.collect()


def run_vos(args, ctx, results) -> None:
    """Meta's vos_optimized predictor in a child process with a time limit."""
    if "vos" in args.skip:
        why = "--quick" if args.quick else "--skip vos"
        results["vos"] = {"skipped": f"skipped with {why} (its torch.compile takes minutes)"}
        return
    work: Path = ctx["work"]
    json_path = work / "vos.json"
    cmd = runner.vos_command(json_path, ctx["scene"], args.image_size, ctx["device"],
                             args.objects, ctx["weights"], args.frames)
    print(f"[vos_optimized] Meta's predictor with torch.compile, time limit {args.vos_timeout} s",
          flush=True)
    env = dict(os.environ)
    if not args.vos_warm_cache:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor_cache")
    t0 = time.perf_counter()
    rc, tail = runner.run_subprocess(cmd, args.vos_timeout, env=env, log=work / "vos.log")
    data = runner.read_json(json_path)
    data["wall_s"] = time.perf_counter() - t0
    data["time_limit_s"] = args.vos_timeout
    data["inductor_cache"] = "reused (--vos-warm-cache)" if args.vos_warm_cache else "fresh"
    if rc is None:
        done = len(data.get("times", []))
        data["skipped"] = (f"did not finish within the {args.vos_timeout} s limit (killed while "
                           f"{data.get('phase', 'starting')}; {done} of {args.frames - 1} "
                           "frames done): torch.compile(mode='max-autotune') on this CPU")
    elif data.get("phase") != "done":
        data["skipped"] = f"failed: {data.get('error') or tail[-300:]}"
    if "skipped" not in data:
        data.pop("traceback", None)
    results["vos"] = data


def run_memory(args, ctx, results) -> None:
    """Section 2: memory over a long stream, each engine in a process of its own."""
    import json

    from tqdm import tqdm

    if "memory" in args.skip:
        results["memory"] = {"skipped": "--skip memory"}
        return
    work: Path = ctx["work"]
    print(f"[memory] rendering {args.memory_frames} frames", flush=True)
    scene = write_scene(work / "long", args.memory_frames, args.node_width,
                        args.node_height, 1, args.seed, keep_pixels=False)
    out: dict = {"frames": args.memory_frames, "image_size": args.memory_image_size,
                 "every": args.memory_every, "frame_size": [args.node_width, args.node_height],
                 "engines": {}}
    for engine in tqdm(("ours", "official"), desc="memory (one process each)", unit="engine"):
        json_path = work / f"memory_{engine}.json"
        cmd = runner.module_command(
            "workers", "memory", "--engine", engine, "--json", str(json_path),
            "--jpeg-dir", str(scene.jpeg_dir), "--image-size", str(args.memory_image_size),
            "--device", ctx["device"], "--objects", "1", "--points", json.dumps(scene.points),
            "--every", str(args.memory_every), "--weights", str(ctx["weights_small"]),
            "--seed", str(args.seed))
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        rc, tail = runner.run_subprocess(cmd, 900, log=work / f"memory_{engine}.log")
        data = runner.read_json(json_path)
        if rc != 0 or data.get("phase") != "done":
            data["skipped"] = f"worker rc={rc}: {tail[-400:]}"
        out["engines"][engine] = data
        summarize_memory(data)
    shutil.rmtree(scene.jpeg_dir, ignore_errors=True)
    results["memory"] = out


def summarize_memory(data: dict) -> None:
    """Growth per 100 frames: slope of a line fitted from frame 100 on (after warm-up)."""
    samples = data.get("samples") or []
    late = [s for s in samples if s["frame"] >= 100] or samples
    xs = [s["frame"] for s in late]
    for key in ("rss", "held_tensor_bytes", "cuda_allocated"):
        ys = [s[key] for s in late if s.get(key) is not None]
        if len(ys) == len(xs) and len(xs) >= 2:
            slope = stats.linear_slope(xs, ys)
            data[f"{key}_growth_per_100_frames"] = None if slope is None else slope * 100
    if samples:
        data["rss_first"] = samples[0]["rss"]
        data["rss_last"] = samples[-1]["rss"]
    frames = data.get("frames") or 0
    if data.get("images_bytes") and frames:
        # The images tensor is filled up front by init_state; a video 100 frames longer
        # holds 100 more frames of it.
        data["images_bytes_per_100_frames"] = data["images_bytes"] / frames * 100
        if data.get("rss_growth_per_100_frames") is not None:
            data["rss_growth_per_100_frames_incl_images"] = (
                data["rss_growth_per_100_frames"] + data["images_bytes_per_100_frames"]
            )


def run_scaling(args, ctx, results) -> None:
    """Section 3: per-frame time of ours and Meta's predictor at 1, 2, 4, 8 objects."""
    import torch

    if "scaling" in args.skip:
        results["scaling"] = {"skipped": "--skip scaling"}
        return
    scene, loaded, official = ctx["scene"], ctx["loaded"], ctx["official"]
    device = loaded.device
    autocast = torch.bfloat16 if device.type == "cuda" else None
    rows = []
    for n in args.scaling_objects:
        ours = engines.OursEngine(loaded, scene, n)
        off = engines.OfficialEngine(official, scene, n, device, args.scaling_frames,
                                     autocast_dtype=autocast)
        ours.start()
        off.start()
        times = engines.lockstep([ours, off], args.scaling_frames, f"scaling: {n} object(s)",
                                 ctx["gate"])
        off.close()
        row = {"objects": n}
        for name in ("ours", "official"):
            warm = stats.warm_stats(times[name], steady_from=stats.STEADY_FROM)
            row[name] = {k: warm.get(k) for k in ("median_s", "p95_s", "steady_median_s",
                                                   "frames")}
            row[name]["times"] = times[name]
        row["ratio"] = row["official"]["median_s"] / row["ours"]["median_s"]
        rows.append(row)
        del ours, off
        gc.collect()
    results["scaling"] = {"frames": args.scaling_frames, "image_size": args.image_size,
                          "rows": rows}


def node_ready() -> str | None:
    node = runner.REPO / "sam2_ros" / "ros" / "tracker_node.py"
    if not node.is_file() or "def main" not in node.read_text(errors="replace"):
        return f"{node.relative_to(runner.REPO)} has no main() yet (node not written)"
    if not (runner.REPO / "tools" / "env.sh").is_file():
        return "tools/env.sh missing"
    return None


def run_node(args, ctx, results) -> None:
    """Section 4: the ROS node's latency, benchmarks.node_latency once per thread count.

    It runs outside the repository root with the root appended to PYTHONPATH, so that
    ``sam2_ros`` comes from the colcon install, which holds the generated msg/srv.
    """
    if "node" in args.skip:
        results["node"] = {"skipped": "--skip node"}
        return
    problem = node_ready()
    if problem:
        results["node"] = {"skipped": problem}
        return
    work: Path = ctx["work"]
    runs = []
    for threads in args.node_threads:
        json_path = work / f"node_{threads}.json"
        cmd = ["bash", "-c",
               f'. "{runner.REPO}/tools/env.sh" && PYTHONPATH="$PYTHONPATH:{runner.REPO}" '
               f'exec python -m benchmarks.node_latency --json "{json_path}" '
               f"--image-size {args.image_size} --duration {args.node_duration} "
               f"--width {args.node_width} --height {args.node_height} "
               f"--device {ctx['device']} --torch-threads {threads}"]
        label = "default" if threads == 0 else str(threads)
        print(f"[node] torch threads {label}: {args.node_duration:.0f} s of 30 Hz camera",
              flush=True)
        ctx["gate"].wait()  # start on a quiet machine if others allow it
        rc, tail = runner.run_subprocess(cmd, args.node_duration + 400, cwd=str(work),
                                         log=work / f"node_{threads}.log")
        data = runner.read_json(json_path)
        if rc != 0 or not data.get("ok"):
            data["skipped"] = data.get("error") or f"node_latency rc={rc}: {tail[-600:]}"
        runs.append(data)
    results["node"] = {"runs": runs}


def run_gpu_compile(args, ctx, results) -> None:
    """Section 5 (CUDA only): ours with the image encoder compiled and not."""
    if ctx["device"] != "cuda":
        results["gpu"] = {"skipped": "CPU run: bf16 autocast and the --compile comparison "
                                     "need CUDA (this machine has no GPU)"}
        return
    if not args.compile:
        results["gpu"] = {"precision": "bf16 autocast (precision auto)",
                          "compile": "not asked (--compile)"}
        return
    out = {"precision": "bf16 autocast (precision auto)", "rows": {}}
    for compiled in (False, True):
        loaded = engines.build_ours("cuda", args.image_size, args.checkpoint, args.seed,
                                    compile_image_encoder=compiled)
        engine = engines.OursEngine(loaded, ctx["scene"], args.objects)
        t0 = time.perf_counter()
        engine.start()
        first = time.perf_counter() - t0
        times = engines.lockstep([engine], args.frames,
                                 f"ours, compile={'on' if compiled else 'off'}", ctx["gate"])
        row = stats.warm_stats(times["ours"], steady_from=stats.STEADY_FROM)
        row["first_frame_and_prompts_s"] = first
        out["rows"]["compile_on" if compiled else "compile_off"] = row
        del engine, loaded
        gc.collect()
    results["gpu"] = out


def _settings(args, argv: list[str] | None) -> dict:
    """The run's settings as the report shows them."""
    return {
        "command": "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None
                                                          else argv),
        "model": engines.MODEL,
        "weights": args.checkpoint or f"random, torch.manual_seed({args.seed})",
        "image_size": args.image_size,
        "width": args.width,
        "height": args.height,
        "frames": args.frames,
        "objects": args.objects,
        "quick": args.quick,
    }


def _prepare(args, device: str, work: Path, gate: machine.QuietGate) -> dict:
    """The scene as JPEGs, our model, the same weights saved and loaded into Meta's."""
    import torch

    nobj = max([args.objects, *args.scaling_objects])
    nframes = max(args.frames, args.scaling_frames)
    print(f"[scene] {nframes} frames {args.width}x{args.height}, {nobj} objects -> JPEG",
          flush=True)
    scene = write_scene(work / "main", nframes, args.width, args.height, nobj, args.seed)
    loaded = engines.build_ours(device, args.image_size, args.checkpoint, args.seed)
    state_dict = loaded.model.state_dict()
    weights = work / "weights.pt"
    torch.save(state_dict, weights)
    weights_small = weights
    if args.memory_image_size != args.image_size:
        small = engines.build_ours(device, args.memory_image_size, args.checkpoint, args.seed)
        weights_small = work / "weights_small.pt"
        torch.save(small.model.state_dict(), weights_small)
        del small
    official = engines.build_official(device, args.image_size, state_dict)
    engines.quiet_official_progress()
    return {"scene": scene, "loaded": loaded, "official": official, "work": work,
            "device": device, "weights": weights, "weights_small": weights_small,
            "gate": gate}


def _run_sections(args, ctx: dict, results: dict) -> None:
    """Every section in turn; Meta's predictor is let go before the child processes."""
    run_compare(args, ctx, results)
    run_scaling(args, ctx, results)
    del ctx["official"]
    gc.collect()
    run_memory(args, ctx, results)
    run_node(args, ctx, results)
    run_vos(args, ctx, results)
    run_gpu_compile(args, ctx, results)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if runner.redraw_only(args.report, write_report):
        return 0
    import torch

    engines.quiet_model_logs()
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict = {"machine": machine.machine_info(device),
                     "settings": _settings(args, argv), "notes": list(NOTES)}
    print(f"machine: {results['machine']['cpu']}, {results['machine']['cpu_cores']} cores, "
          f"torch {torch.__version__}, device {device}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="sam2_bench_"))
    gate = machine.QuietGate(args.quiet_wait)
    try:
        _run_sections(args, _prepare(args, device, work, gate), results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_at_end"] = machine.load_average()
    results["quiet_gate"] = gate.summary()
    results["total_s"] = time.perf_counter() - started
    md = write_report(results, out)
    print()
    print(md)
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}, "
          f"{', '.join(results['plots'])} in {results['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
