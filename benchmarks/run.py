#!/usr/bin/env python3
"""Benchmarks: our StreamingTracker side by side with the reference implementations.

One run, one machine, one model config (SAM 2.1 tiny, seeded random weights unless
--checkpoint), one image_size, the same synthetic frames (written as JPEGs for Meta's
predictor, which loads a JPEG folder; our engine gets the same decoded JPEG pixels) and
the same prompts (one positive click per object on frame 0). It reports, never asserts:

1. per-frame time, ours vs Meta's SAM2VideoPredictor (plus its vos_optimized variant, in
   a time-limited process) vs transformers' Sam2VideoModel in streaming mode;
2. memory over a long stream (>= 1,000 frames at a small image_size), one process each;
3. per-frame time with 1, 2, 4, 8 objects;
4. the ROS node's end-to-end latency at 30 Hz (benchmarks/node_latency.py);
5. on CUDA: bf16 autocast and --compile on/off (skipped, and said so, on a CPU).

Writes DIR/results.json, DIR/results.md and PNG plots (default DIR: benchmarks/out).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from report import write_report

common.use_repo_package()

HERE = Path(__file__).resolve().parent
STEADY_FROM = 8  # from this frame on every engine attends a full memory bank (7 frames)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SAM 2 streaming benchmarks (ours vs references)")
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
    p.add_argument("--hf-site", default=os.environ.get("SAM2_BENCH_HF_SITE",
                                                       common.DEFAULT_HF_SITE),
                   help="folder with transformers installed outside the venv (appended to "
                        "sys.path); default $SAM2_BENCH_HF_SITE or /tmp/hf_site")
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
    p.add_argument("--quiet-wait", type=float, default=None,
                   help="most seconds, in all, to wait for other processes to leave the CPU "
                        "before timed steps (300; 0 = never wait)")
    p.add_argument("--node-threads", default="0,2",
                   help="torch threads of the node per run (its cpu_threads parameter); "
                        "0 = the node's default, every core (0,2)")
    p.add_argument("--node-width", type=int, default=320)
    p.add_argument("--node-height", type=int, default=240)
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "frames": (12, 40),
        "vos_timeout": (0, 420),
        "memory_frames": (200, 1000),
        "memory_every": (20, 25),
        "scaling_frames": (8, 16),
        "node_duration": (10.0, 30.0),
        "quiet_wait": (60.0, 300.0),
    }
    for name, (q, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, q if quick else full)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if quick:
        args.skip.add("vos")
    args.scaling_objects = [int(n) for n in args.scaling_objects.split(",") if n.strip()]
    args.node_threads = [int(n) for n in args.node_threads.split(",") if n.strip()]
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


def lockstep(engines: list, frames: int, desc: str,
             gate: common.QuietGate | None = None) -> dict[str, list[float]]:
    """Run frame i on every engine before frame i+1 on any (the order rotates per frame),
    each step only once no other process is using the CPU (see QuietGate)."""
    from tqdm import tqdm

    times: dict[str, list[float]] = {e.name: [] for e in engines}
    for i in tqdm(range(1, frames), desc=desc, unit="frame"):
        k = i % len(engines)
        for engine in engines[k:] + engines[:k]:
            if gate is not None:
                gate.wait()
            times[engine.name].append(engine.step(i))
    return times


def run_compare(args, ctx, results) -> None:
    import numpy as np
    import torch
    from tqdm import tqdm

    scene, loaded, official = ctx["scene"], ctx["loaded"], ctx["official"]
    device = loaded.device
    n = args.objects
    rows: dict[str, dict] = {}
    engines = []
    ours = common.OursEngine(loaded, scene, n)
    engines.append(ours)
    autocast = torch.bfloat16 if device.type == "cuda" else None
    off = common.OfficialEngine(official, scene, n, device, args.frames, autocast_dtype=autocast)
    engines.append(off)
    hf = None
    if "hf" in args.skip:
        rows["hf"] = {"skipped": "skipped with --skip hf"}
    else:
        hf_mod, problem = common.hf_import(args.hf_site)
        if problem:
            rows["hf"] = {"skipped": problem}
        else:
            try:
                model = common.build_hf(args.image_size, device, args.seed,
                                        torch.bfloat16 if device.type == "cuda" else None)
                hf = common.HFEngine(model, scene, n, str(device), args.image_size,
                                     dtype=torch.bfloat16 if device.type == "cuda" else None)
                rows["hf"] = {"transformers": hf_mod.__version__,
                              "processor_problem": hf.processor_problem}
                engines.append(hf)
            except Exception as exc:
                rows["hf"] = {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
    for engine in tqdm(engines, desc="frame 0 + prompts", unit="engine"):
        engine.start()
    times = lockstep(engines, args.frames, f"compare ({n} object, {args.frames} frames)",
                     ctx["gate"])
    for engine in engines:
        row = rows.setdefault(engine.name, {})
        row.update(common.warm_stats(times[engine.name], steady_from=STEADY_FROM))
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
    del engines, ours, off, hf
    gc.collect()


def run_subprocess(cmd: list[str], timeout: float, env: dict | None = None,
                   cwd: str | None = None, log: Path | None = None) -> tuple[int | None, str]:
    """Run a child; kill its whole process group at the time limit. Returns (rc, tail)."""
    with open(log or os.devnull, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = None
    tail = log.read_text(errors="replace")[-2000:] if log else ""
    return rc, tail


def run_vos(args, ctx, results) -> None:
    if "vos" in args.skip:
        why = "--quick" if args.quick else "--skip vos"
        results["vos"] = {"skipped": f"skipped with {why} (its torch.compile takes minutes)"}
        return
    work: Path = ctx["work"]
    json_path = work / "vos.json"
    cmd = [sys.executable, str(HERE / "workers.py"), "vos", "--json", str(json_path),
           "--jpeg-dir", str(ctx["scene"].jpeg_dir), "--image-size", str(args.image_size),
           "--device", ctx["device"], "--objects", str(args.objects),
           "--points", json.dumps(ctx["scene"].points), "--weights", str(ctx["weights"]),
           "--frames", str(args.frames)]
    print(f"[vos_optimized] Meta's predictor with torch.compile, time limit {args.vos_timeout} s",
          flush=True)
    env = dict(os.environ)
    if not args.vos_warm_cache:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor_cache")
    t0 = time.perf_counter()
    rc, tail = run_subprocess(cmd, args.vos_timeout, env=env, log=work / "vos.log")
    data = json.loads(json_path.read_text()) if json_path.exists() else {}
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


# --------------------------------------------------------------------------- section 2
def run_memory(args, ctx, results) -> None:
    from tqdm import tqdm

    if "memory" in args.skip:
        results["memory"] = {"skipped": "--skip memory"}
        return
    work: Path = ctx["work"]
    print(f"[memory] rendering {args.memory_frames} frames", flush=True)
    scene = common.write_scene(work / "long", args.memory_frames, args.node_width,
                               args.node_height, 1, args.seed, keep_pixels=False)
    out: dict = {"frames": args.memory_frames, "image_size": args.memory_image_size,
                 "every": args.memory_every, "frame_size": [args.node_width, args.node_height],
                 "engines": {}}
    for engine in tqdm(("ours", "official"), desc="memory (one process each)", unit="engine"):
        json_path = work / f"memory_{engine}.json"
        cmd = [sys.executable, str(HERE / "workers.py"), "memory", "--engine", engine,
               "--json", str(json_path), "--jpeg-dir", str(scene.jpeg_dir),
               "--image-size", str(args.memory_image_size), "--device", ctx["device"],
               "--objects", "1", "--points", json.dumps(scene.points),
               "--every", str(args.memory_every), "--weights", str(ctx["weights_small"]),
               "--seed", str(args.seed)]
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        rc, tail = run_subprocess(cmd, 900, log=work / f"memory_{engine}.log")
        data = json.loads(json_path.read_text()) if json_path.exists() else {}
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
            slope = common.linear_slope(xs, ys)
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


# --------------------------------------------------------------------------- section 3
def run_scaling(args, ctx, results) -> None:
    import torch

    if "scaling" in args.skip:
        results["scaling"] = {"skipped": "--skip scaling"}
        return
    scene, loaded, official = ctx["scene"], ctx["loaded"], ctx["official"]
    device = loaded.device
    autocast = torch.bfloat16 if device.type == "cuda" else None
    rows = []
    for n in args.scaling_objects:
        ours = common.OursEngine(loaded, scene, n)
        off = common.OfficialEngine(official, scene, n, device, args.scaling_frames,
                                    autocast_dtype=autocast)
        ours.start()
        off.start()
        times = lockstep([ours, off], args.scaling_frames, f"scaling: {n} object(s)",
                         ctx["gate"])
        off.close()
        row = {"objects": n}
        for name in ("ours", "official"):
            stats = common.warm_stats(times[name], steady_from=STEADY_FROM)
            row[name] = {k: stats.get(k) for k in ("median_s", "p95_s", "steady_median_s",
                                                    "frames")}
            row[name]["times"] = times[name]
        row["ratio"] = row["official"]["median_s"] / row["ours"]["median_s"]
        rows.append(row)
        del ours, off
        gc.collect()
    results["scaling"] = {"frames": args.scaling_frames, "image_size": args.image_size,
                          "rows": rows}


# --------------------------------------------------------------------------- section 4
def node_ready() -> str | None:
    node = common.REPO / "sam2_ros" / "ros" / "tracker_node.py"
    if not node.is_file() or "def main" not in node.read_text(errors="replace"):
        return f"{node.relative_to(common.REPO)} has no main() yet (node not written)"
    if not (common.REPO / "tools" / "env.sh").is_file():
        return "tools/env.sh missing"
    return None


def run_node(args, ctx, results) -> None:
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
        script = HERE / "node_latency.py"
        cmd = ["bash", "-c",
               f'. "{common.REPO}/tools/env.sh" && exec python "{script}" --json "{json_path}" '
               f"--image-size {args.image_size} --duration {args.node_duration} "
               f"--width {args.node_width} --height {args.node_height} "
               f"--device {ctx['device']} --torch-threads {threads}"]
        label = "default" if threads == 0 else str(threads)
        print(f"[node] torch threads {label}: {args.node_duration:.0f} s of 30 Hz camera",
              flush=True)
        ctx["gate"].wait()  # start on a quiet machine if others allow it
        rc, tail = run_subprocess(cmd, args.node_duration + 400, cwd=str(work),
                                  log=work / f"node_{threads}.log")
        data = json.loads(json_path.read_text()) if json_path.exists() else {}
        if rc != 0 or not data.get("ok"):
            data["skipped"] = data.get("error") or f"node_latency.py rc={rc}: {tail[-600:]}"
        runs.append(data)
    results["node"] = {"runs": runs}


# --------------------------------------------------------------------------- section 5
def run_gpu_compile(args, ctx, results) -> None:
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
        loaded = common.build_ours("cuda", args.image_size, args.checkpoint, args.seed,
                                   compile_image_encoder=compiled)
        engine = common.OursEngine(loaded, ctx["scene"], args.objects)
        t0 = time.perf_counter()
        engine.start()
        first = time.perf_counter() - t0
        times = lockstep([engine], args.frames, f"ours, compile={'on' if compiled else 'off'}",
                         ctx["gate"])
        stats = common.warm_stats(times["ours"], steady_from=STEADY_FROM)
        stats["first_frame_and_prompts_s"] = first
        out["rows"]["compile_on" if compiled else "compile_off"] = stats
        del engine, loaded
        gc.collect()
    results["gpu"] = out


# --------------------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if common.redraw_only(args.report, write_report):
        return 0
    import torch

    common.quiet_model_logs()
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict = {"machine": common.machine_info(device)}
    results["settings"] = {
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": common.MODEL,
        "weights": args.checkpoint or f"random, torch.manual_seed({args.seed})",
        "image_size": args.image_size,
        "width": args.width,
        "height": args.height,
        "frames": args.frames,
        "objects": args.objects,
        "quick": args.quick,
    }
    results["notes"] = [
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
    print(f"machine: {results['machine']['cpu']}, {results['machine']['cpu_cores']} cores, "
          f"torch {torch.__version__}, device {device}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="sam2_bench_"))
    gate = common.QuietGate(args.quiet_wait)
    try:
        nobj = max([args.objects, *args.scaling_objects])
        nframes = max(args.frames, args.scaling_frames)
        print(f"[scene] {nframes} frames {args.width}x{args.height}, {nobj} objects -> JPEG",
              flush=True)
        scene = common.write_scene(work / "main", nframes, args.width, args.height, nobj,
                                   args.seed)
        loaded = common.build_ours(device, args.image_size, args.checkpoint, args.seed)
        state_dict = loaded.model.state_dict()
        weights = work / "weights.pt"
        torch.save(state_dict, weights)
        if args.memory_image_size == args.image_size:
            weights_small = weights
        else:
            small = common.build_ours(device, args.memory_image_size, args.checkpoint,
                                      args.seed)
            weights_small = work / "weights_small.pt"
            torch.save(small.model.state_dict(), weights_small)
            del small
        official = common.build_official(device, args.image_size, state_dict)
        common.quiet_official_progress()
        ctx = {"scene": scene, "loaded": loaded, "official": official, "work": work,
               "device": device, "weights": weights, "weights_small": weights_small,
               "gate": gate}
        run_compare(args, ctx, results)
        run_scaling(args, ctx, results)
        del ctx["official"], official, state_dict
        gc.collect()
        run_memory(args, ctx, results)
        run_node(args, ctx, results)
        run_vos(args, ctx, results)
        run_gpu_compile(args, ctx, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_at_end"] = common.load_average()
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
