"""Speed tables: ours against Meta's predictor at 1, 4 and 8 objects, image_size 256 and 512.

For every (image_size, objects) the engines run in lockstep on the same frames and clicks:
ours in its default configuration (``precision: auto``: bf16 autocast on a CPU with native
bf16, fp32 elsewhere), ours in fp32, ours with the image encoder compiled (``compile:
true``, compiled once per image size), Meta's SAM2VideoPredictor in fp32 and under the same
bf16 autocast, and (where asked, in its own time-limited process because it compiles for
minutes) ``vos_optimized``. It reports per-frame medians over frames whose memory bank is
full, the cost of each extra object, GFLOP per frame (torch's FLOP counter on one frame),
achieved GFLOP/s and its share of the CPU's peak (``machine_peak``), and what our frame path
copies to the host per frame, and first what preparing a camera frame costs on each
preprocessing path (``preprocessing_cost``). It reports; it never asserts on time.

Writes DIR/speed.json, DIR/speed.md and DIR/speed.png (default DIR: benchmarks/out).
Run from the repository root: ``python -m benchmarks.speed`` (``make speed``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import engines, machine, runner
from benchmarks.common.scene import write_scene
from benchmarks.common.stats import STEADY_FROM, steady_median
from benchmarks.machine_peak import machine_peak

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="ours vs Meta's predictor: speed and FLOP tables")
    p.add_argument("--sizes", default="256,512", help="image sizes (256,512)")
    p.add_argument("--objects", default="1,4,8", help="object counts (1,4,8)")
    p.add_argument("--frames", type=int, default=12,
                   help="frames per configuration; frames >= 8 are the steady state (12)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--vos", default="all",
                   help="configurations (SIZExOBJECTS, comma list, 'all' or 'none') that also "
                        "run Meta's vos_optimized predictor, which compiles for minutes per "
                        "image size (later object counts reuse the compiled kernels) (all)")
    p.add_argument("--vos-timeout", type=int, default=420)
    p.add_argument("--no-ours-fp32", action="store_true",
                   help="leave out ours in fp32 when the default is bf16")
    p.add_argument("--no-ours-compiled", action="store_true",
                   help="leave out ours with the image encoder compiled (compile: true)")
    p.add_argument("--no-ours-sam2", action="store_true",
                   help="leave out ours in tracking_mode sam2 (Meta's behaviour; the default "
                        "is motion)")
    p.add_argument("--quiet-wait", type=float, default=120.0,
                   help="seconds in total to wait for other processes to leave the CPU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preprocessing-only", action="store_true",
                   help="only the preprocessing table (preprocessing_cost.py): each path's "
                        "ms per frame at 512 and 1024 from 640x480 and 1920x1080")
    p.add_argument("--out", default=str(HERE / "out"))
    p.add_argument("--report", metavar="SPEED_JSON", default=None,
                   help="only rewrite speed.md and speed.png from an earlier speed.json")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.objects = [int(n) for n in args.objects.split(",")]
    if args.vos == "all":
        args.vos = [(size, n) for size in args.sizes for n in args.objects]
    else:
        args.vos = [] if args.vos == "none" else [tuple(int(v) for v in c.split("x"))
                                                   for c in args.vos.split(",") if c]
    return args


def count_flops(step) -> float:
    """FLOP of one call of ``step`` (torch.utils.flop_counter: matmuls, convs, attention).

    The counter knows the CUDA attention kernels but not the CPU flash kernel that
    F.scaled_dot_product_attention runs here (torch 2.13), which it would count as zero:
    that kernel gets the counter's own attention formula.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_flash(query, key, value, *args, **kwargs) -> int:  # the counter passes shapes
        return sdpa_flop_count(query, key, value)

    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_flash}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        step()
    return float(counter.get_total_flops())


def _our_variants(args, ours, size: int, scene, n: int) -> tuple[list, dict[str, str]]:
    """Ours in the default configuration and the variants asked for, with their labels."""
    from sam2_ros.engine.model_loading import build_model
    from sam2_ros.settings import default

    variants = [engines.OursEngine(ours, scene, n)]
    names = {"ours": f"ours (default: {_precision(ours)}, "
                     f"tracking_mode {default('tracking_mode')})"}
    if ours.autocast_dtype is not None and not args.no_ours_fp32:
        fp32 = build_model(
            engines.MODEL, device="cpu", precision="fp32", image_size=size, seed=args.seed
        )
        fp32.model.load_state_dict(ours.model.state_dict())
        engine = engines.OursEngine(fp32, scene, n)
        engine.name = "ours_fp32"
        variants.append(engine)
        names["ours_fp32"] = "ours, fp32"
    if not args.no_ours_sam2:
        engine = engines.OursEngine(ours, scene, n, tracking_mode="sam2")
        engine.name = "ours_sam2"
        variants.append(engine)
        names["ours_sam2"] = f"ours, tracking_mode sam2 ({_precision(ours)})"
    if not args.no_ours_compiled:
        engine = engines.OursEngine(_compiled(size, ours), scene, n)
        engine.name = "ours_compiled"
        variants.append(engine)
        names["ours_compiled"] = f"ours, encoder compiled ({_precision(ours)})"
    return variants, names


def run_config(args, size: int, n: int, scene, gate, work: Path) -> dict:
    """All engines on one (image_size, objects) configuration."""
    import numpy as np
    import torch

    frames = args.frames
    ours = engines.build_ours("cpu", size, None, args.seed)
    running, names = _our_variants(args, ours, size, scene, n)
    state_dict = ours.model.state_dict()
    predictor = engines.build_official("cpu", size, state_dict)
    engines.quiet_official_progress()
    meta = engines.OfficialEngine(predictor, scene, n, torch.device("cpu"), frames + 1)
    meta_bf16 = engines.OfficialEngine(predictor, scene, n, torch.device("cpu"), frames + 1,
                                       autocast_dtype=torch.bfloat16)
    meta_bf16.name = "meta_bf16"
    running += [meta, meta_bf16]
    names["official"] = "Meta SAM2VideoPredictor, fp32"
    names["meta_bf16"] = "Meta SAM2VideoPredictor, bf16 autocast"
    for engine in running:
        engine.start()
    times = engines.lockstep(running, frames, f"{size} px, {n} object(s)", gate)
    # One more frame each for ours and Meta fp32, counted by torch's FLOP counter.
    flops_ours = count_flops(lambda: running[0].step(frames))
    flops_meta = count_flops(lambda: meta.step(frames))
    transfer = running[0].last_result.transfer
    for engine in running:
        if hasattr(engine, "close"):
            engine.close()
    rows = {}
    for engine in running:
        t = times[engine.name]
        rows[engine.name] = {"label": names[engine.name], "steady_median_s": steady_median(t),
                             "times": t}
    stages = [s for s in running[0].stages[STEADY_FROM - 1:frames - 1]]
    stage_medians = ({k: float(np.median([s[k] for s in stages])) for k in stages[0]}
                     if stages else {})
    result = {
        "image_size": size, "objects": n, "frames": frames, "rows": rows,
        "gflop_ours": flops_ours / 1e9, "gflop_meta": flops_meta / 1e9,
        "ours_precision": _precision(ours),
        "ours_stage_medians_s": stage_medians,
        "transfer": {"bytes": transfer.bytes, "syncs": transfer.syncs},
    }
    if (size, n) in args.vos:
        result["vos"] = run_vos(args, size, n, scene, state_dict, work)
    return result  # the engines go with this frame; main() collects between configs


_COMPILED: dict[int, object] = {}


def _compiled(size: int, ours):
    """Ours with ``compile: true`` at this image size, compiled once for every object count
    (about 30 s), with the weights of ``ours``."""
    if size not in _COMPILED:
        import torch

        from sam2_ros.engine.model_loading import build_model

        _COMPILED.clear()
        started = time.perf_counter()
        loaded = build_model(engines.MODEL, device="cpu", precision="auto", image_size=size,
                             compile_image_encoder=True)
        theirs = loaded.model.state_dict()
        for name, p in ours.model.state_dict().items():
            key = name.replace("image_encoder.", "image_encoder._orig_mod.", 1)
            assert torch.equal(p, theirs[key]), name
        print(f"compiled the image encoder at {size} px in {time.perf_counter() - started:.0f} s",
              flush=True)
        _COMPILED[size] = loaded
    return _COMPILED[size]


def _precision(loaded) -> str:
    return "bf16 autocast" if loaded.autocast_dtype is not None else "fp32"


def run_vos(args, size: int, n: int, scene, state_dict, work: Path) -> dict:
    """Meta's vos_optimized predictor (torch.compile) in its own time-limited process."""
    import torch

    weights = work / f"weights_{size}.pt"
    torch.save(state_dict, weights)
    json_path = work / f"vos_{size}_{n}.json"
    cmd = runner.vos_command(json_path, scene, size, "cpu", n, weights, args.frames)
    print(f"[vos_optimized] {size} px, {n} object(s), time limit {args.vos_timeout} s",
          flush=True)
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(work / "inductor")}
    rc, tail = runner.run_subprocess(cmd, args.vos_timeout, env=env, log=work / "vos.log")
    data = runner.read_json(json_path)
    if rc is None:
        return {"skipped": f"did not finish within {args.vos_timeout} s (torch.compile)"}
    if data.get("phase") != "done":
        return {"skipped": f"failed: {data.get('error') or tail[-300:]}"}
    return {"steady_median_s": steady_median(data["times"]), "times": data["times"],
            "init_state_s": data.get("init_state_s")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from benchmarks.speed_report import write_speed_report

    if runner.redraw_only(args.report, write_speed_report):
        return 0
    import torch

    from benchmarks.preprocessing_cost import measure, table

    engines.quiet_model_logs()
    print("preprocessing, ms per frame (median of 3; Meta's PIL path vs the device path):")
    print(table(measure("cpu", reps=3)), flush=True)
    if args.preprocessing_only:
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    peak = machine_peak(torch.get_num_threads())
    results: dict = {
        "machine": machine.machine_info("cpu"), "peak": peak.as_dict(),
        "command": "python -m benchmarks.speed " + " ".join(sys.argv[1:] if argv is None
                                                            else argv),
        "model": engines.MODEL, "camera": [args.width, args.height], "configs": [],
    }
    print(f"machine: {results['machine']['cpu']}, {peak.cores} threads, peak fp32 "
          f"{peak.fp32_gflops or 0:.0f} GFLOP/s, bf16 {peak.bf16_gflops or 0:.0f} GFLOP/s "
          f"({peak.unit_fp32}; {peak.unit_bf16})", flush=True)
    work = Path(tempfile.mkdtemp(prefix="sam2_speed_"))
    gate = machine.QuietGate(args.quiet_wait)
    try:
        scene = write_scene(work / "frames", args.frames + 1, args.width, args.height,
                                   max(args.objects), args.seed)
        for size in args.sizes:
            for n in args.objects:
                results["configs"].append(run_config(args, size, n, scene, gate, work))
                gc.collect()
                (out / "speed.json").write_text(json.dumps(results, indent=2, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["quiet_gate"] = gate.summary()
    results["total_s"] = time.perf_counter() - started
    (out / "speed.json").write_text(json.dumps(results, indent=2, default=str))
    print(write_speed_report(results, out))
    print(f"wrote {out / 'speed.json'}, {out / 'speed.md'}, {out / 'speed.png'} "
          f"in {results['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
