"""The benchmark report: Markdown tables, the targets verdicts and the PNG plots.

Apart from the runner so that ``run.py --report results.json`` can redraw everything from
a saved run without measuring again.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.common.runner import save_json


def _row(*cells) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _decorate(ax, **legend) -> None:
    """Grid and legend, the same on every plot."""
    ax.grid(alpha=0.3)
    ax.legend(**legend)


def _save(fig, out, name: str, made: list) -> None:
    """Write a figure as out/name and note it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    made.append(name)


def fmt_ms(s: float | None) -> str:
    return "-" if s is None else f"{s * 1000:.0f} ms" if s >= 0.1 else f"{s * 1000:.1f} ms"


def fmt_mb(b: float | None) -> str:
    return "-" if b is None else f"{b / 2**20:.1f} MiB"


ENGINE_NAMES = {
    "ours": "ours: StreamingTracker.track()",
    "official": "Meta SAM2VideoPredictor.propagate_in_video",
    "vos": "Meta SAM2VideoPredictor, vos_optimized=True",
    "hf": "transformers Sam2VideoModel, streaming",
}
NODE_NOTE = (
    "Frames: the camera publishes 30 Hz best effort; 'processed' frames got an objects "
    "message back; the node keeps only the newest frame while busy, so most frames are "
    "dropped by design when the model is slower than the camera. Engine alone: "
    "StreamingTracker with the node's settings in the benchmark process, same frames and "
    "prompt, same thread count. Tracker inside the node: the node's own /diagnostics "
    "status (StageTiming total, mean per second, averaged)."
)


def _header(results: dict) -> list[str]:
    """Title, machine, software, load and settings of the run."""
    m = results["machine"]
    s = results["settings"]
    return [
        "# SAM 2 streaming benchmarks",
        "",
        f"- date: {m['date_utc']}",
        f"- machine: {m['cpu']}, {m['cpu_cores']} cores ({m['torch_threads']} torch threads), "
        f"{m['memory_gib']} GiB; GPU: {m['gpu'] or 'none'}; device: {m['device']}",
        f"- software: Python {m['python']}, torch {m['torch']}, sam2 {m['sam2']}",
        f"- load average at start / end: {m['load_average_at_start']} / "
        f"{m.get('load_average_at_end')}",
        f"- command: `{s['command']}`",
        f"- model: {s['model']} ({s['weights']}), image_size {s['image_size']}, "
        f"frames {s['width']}x{s['height']}, hole filling off (fill_hole_area=0)",
        "",
    ]


def _compare_note(key: str, row: dict, stats: dict, ours: dict) -> str:
    """The notes cell of one engine in the per-frame table."""
    if key == "ours":
        return ("gets the decoded pixels; resize + normalise inside track(); returns "
                "numpy masks + box/centroid")
    if key == "official":
        with_pre = stats["median_s"] + row["load_per_frame_s"]
        return (f"init_state ({row['init_state_s']:.2f} s) decodes + resizes every "
                f"frame first: {fmt_ms(row['load_per_frame_s'])}/frame, not in its "
                f"per-frame time; with it: median {fmt_ms(with_pre)}, ratio "
                f"{with_pre / ours['median_s']:.2f}")
    if key == "vos":
        first = sum(row.get("times", [])[:2])
        return (f"own process, not interleaved; {row.get('inductor_cache')} inductor "
                f"cache; compiling: init_state {row.get('init_state_s', 0):.0f} s, "
                f"prompts {row.get('prompt_s', 0):.0f} s, frames 1-2 {first:.0f} s")
    note = f"transformers {row.get('transformers')}"
    if row.get("processor_problem"):
        note += ("; its Sam2VideoProcessor cannot be built here ("
                 f"{row['processor_problem'][:120]}): pixels preprocessed "
                 "with the same ImageNet normalisation instead; random init "
                 "(not our weights)")
    return note


def _stage_line(st: dict) -> list[str]:
    """Ours by stage, one sentence."""
    return [
        "Ours by stage (medians, StageTiming): image encoder incl. resize + normalise "
        f"{fmt_ms(st['encoder'])}, memory attention {fmt_ms(st['memory_attention'])}, "
        f"mask decoder {fmt_ms(st['decoder'])}, memory encoder "
        f"{fmt_ms(st['memory_encoder'])}, the rest (full-resolution mask, box, "
        f"centroid, bookkeeping) {fmt_ms(st['rest'])}.",
        "",
    ]


def _compare_section(results: dict) -> list[str]:
    """Section 1: per-frame time of every engine against ours."""
    comp = results.get("compare")
    if not comp:
        return []
    ours = comp["rows"]["ours"]
    lines = [
        f"## Per-frame time, {comp['objects']} object(s), {comp['frames']} frames "
        "(warm: first 2 skipped)",
        "",
        "| engine | median | p95 | fps | median, frames >= 8 | reference/ours "
        "(median) | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    table = dict(comp["rows"])
    if "vos" in results:
        table["vos"] = results["vos"]
    for key in ("ours", "official", "vos", "hf"):
        row = table.get(key)
        if row is None:
            continue
        stats = row.get("per_frame", row) if key == "vos" else row
        if "median_s" not in stats:
            lines.append(f"| {ENGINE_NAMES[key]} | - | - | - | - | - | NOT RUN: "
                         f"{row.get('skipped', 'no data')} |")
            continue
        ratio = "1.00" if key == "ours" else f"{stats['median_s'] / ours['median_s']:.2f}"
        lines.append(
            f"| {ENGINE_NAMES[key]} | {fmt_ms(stats['median_s'])} | {fmt_ms(stats['p95_s'])} | "
            f"{stats['fps']:.2f} | {fmt_ms(stats.get('steady_median_s'))} | {ratio} | "
            f"{_compare_note(key, row, stats, ours)} |"
        )
    lines.append("")
    st = comp.get("ours_stage_medians_s")
    return lines + (_stage_line(st) if st else [])


def _memory_row(name: str, d: dict) -> str:
    """One engine's row of the memory table."""
    if "skipped" in d:
        return f"| {name} | - | - | - | - | NOT RUN: {d['skipped'][:200]} |"
    incl = "n/a (frames are not kept)"
    note = "frames decoded one at a time"
    if name == "official":
        incl = fmt_mb(d.get("rss_growth_per_100_frames_incl_images"))
        note = (f"images tensor {fmt_mb(d.get('images_bytes'))} filled by init_state "
                f"({fmt_mb(d.get('images_bytes_per_100_frames'))} per 100 frames of "
                "video)")
    if d.get("cuda_allocated_growth_per_100_frames") is not None:
        note += ("; CUDA allocated growth "
                 f"{fmt_mb(d['cuda_allocated_growth_per_100_frames'])} / 100 frames")
    return _row(
        name, f"{fmt_mb(d.get('rss_first'))} -> {fmt_mb(d.get('rss_last'))}",
        fmt_mb(d.get("rss_growth_per_100_frames")),
        fmt_mb(d.get("held_tensor_bytes_growth_per_100_frames")), incl, note,
    )


def _memory_section(results: dict) -> list[str]:
    """Section 2: memory over a long stream."""
    mem = results.get("memory")
    if not mem:
        return []
    if "engines" not in mem:
        return ["## Memory", "", f"NOT RUN: {mem.get('skipped')}", ""]
    lines = [
        f"## Memory over {mem['frames']} frames (image_size {mem['image_size']}, "
        f"1 object, sampled every {mem['every']} frames)",
        "",
        "| engine | RSS first -> last | RSS growth / 100 frames | kept tensors growth / "
        "100 frames | incl. its preloaded images / 100 frames | notes |",
        "|---|---|---|---|---|---|",
    ]
    lines += [_memory_row(name, d) for name, d in mem["engines"].items()]
    return [*lines, ""]


def _scaling_section(results: dict) -> list[str]:
    """Section 3: per-frame time against the number of objects."""
    sc = results.get("scaling")
    if not sc:
        return []
    if "rows" not in sc:
        return ["## Object scaling", "", f"NOT RUN: {sc.get('skipped')}", ""]
    lines = [
        f"## Object scaling (image_size {sc['image_size']}, {sc['frames']} frames, "
        "median per frame, warm)",
        "",
        "| objects | ours | official | official/ours | ours, frames >= 8 | "
        "official, frames >= 8 |",
        "|---|---|---|---|---|---|",
    ]
    for r in sc["rows"]:
        lines.append(_row(
            r["objects"], fmt_ms(r["ours"]["median_s"]), fmt_ms(r["official"]["median_s"]),
            f"{r['ratio']:.2f}", fmt_ms(r["ours"].get("steady_median_s")),
            fmt_ms(r["official"].get("steady_median_s")),
        ))
    return [*lines, ""]


def _node_row(r: dict) -> str:
    """One thread count's row of the node latency table."""
    threads = f"{r.get('torch_threads')}" + (" (default)" if r.get("torch_threads_default")
                                             else "")
    if "skipped" in r:
        return f"| {threads} | NOT RUN: {r['skipped'][:300]} |"
    inside = r.get("node_total_ms_mean")
    return (
        f"| {threads} | {r['published']} | {r['processed']} | {r['dropped']} | "
        f"{fmt_ms(r['latency_p50_s'])} | {fmt_ms(r['latency_p95_s'])} | "
        f"{fmt_ms(r['engine_median_s'])} | "
        f"{r['latency_p95_s'] / r['engine_median_s']:.2f} | "
        f"{fmt_ms(None if inside is None else inside / 1000)} | "
        f"{fmt_ms(r['first_20pct_p50_s'])} | {fmt_ms(r['last_20pct_p50_s'])} |"
    )


def _node_section(results: dict) -> list[str]:
    """Section 4: the ROS node's end-to-end latency."""
    node = results.get("node")
    if not node:
        return []
    lines = ["## ROS node end-to-end latency (camera at 30 Hz)", ""]
    if "skipped" in node:
        return [*lines, f"NOT RUN: {node['skipped']}", ""]
    lines += [
        "| torch threads | published | processed | dropped | latency p50 | "
        "latency p95 | engine alone (median) | p95 / engine | tracker inside the "
        "node (mean) | first 20% p50 | last 20% p50 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_node_row(r) for r in node.get("runs", [])]
    return [*lines, "", NODE_NOTE, ""]


def _gpu_section(results: dict) -> list[str]:
    """Section 5: bf16 and --compile on a GPU."""
    gpu = results.get("gpu")
    if not gpu:
        return []
    lines = ["## GPU (bf16 autocast, --compile)", ""]
    if "skipped" in gpu:
        return [*lines, f"SKIPPED: {gpu['skipped']}", ""]
    for k, v in gpu.get("rows", {}).items():
        lines.append(f"- ours, {k}: median {fmt_ms(v.get('median_s'))}, "
                     f"p95 {fmt_ms(v.get('p95_s'))}")
    return [*lines, ""]


def _gate_lines(results: dict) -> list[str]:
    """How long the timed steps waited for a quiet machine."""
    gate = results.get("quiet_gate")
    if not gate or not gate.get("enabled"):
        return []
    return [f"Timed steps waited {gate['waited_s']:.0f} s in all (limit "
            f"{gate['budget_s']:.0f} s) for other processes to leave the CPU; "
            f"{gate['steps_without_quiet_machine']} of {gate['steps']} steps ran without "
            "a quiet machine.", ""]


def markdown(results: dict) -> str:
    """results.md: the sections in order, then the targets' verdicts and the notes."""
    lines = _header(results)
    for section in (_compare_section, _memory_section, _scaling_section, _node_section,
                    _gpu_section, _gate_lines):
        lines += section(results)
    lines += ["## Targets", ""] + [f"- {t}" for t in results.get("targets", [])] + [""]
    lines += ["## Notes", ""] + [f"- {n}" for n in results.get("notes", [])] + [""]
    return "\n".join(lines)


def _speed_target(results: dict) -> list[str]:
    """Ours no slower than Meta's predictor per frame at one object."""
    comp = results.get("compare", {}).get("rows", {})
    scaling = results.get("scaling", {}).get("rows", [])
    one, pre = None, None
    if results.get("compare", {}).get("objects") == 1 and "median_s" in comp.get("official", {}):
        one = (comp["ours"]["median_s"], comp["official"]["median_s"], "comparison run")
        pre = comp["official"].get("load_per_frame_s")
    else:
        for r in scaling:
            if r["objects"] == 1:
                one = (r["ours"]["median_s"], r["official"]["median_s"], "object scaling run")
    if not one:
        return []
    met = "MET" if one[0] <= one[1] else "NOT MET"
    text = (f"ours <= official per frame at 1 object: {met} (median {fmt_ms(one[0])} vs "
            f"{fmt_ms(one[1])}, {one[2]}")
    if pre is not None:
        with_pre = one[1] + pre
        text += (f"; counting the decode + resize the official does up front in "
                 f"init_state, {fmt_ms(with_pre)}: "
                 f"{'met' if one[0] <= with_pre else 'not met'}")
    for r in scaling:
        if r["objects"] == 1 and one[2] != "object scaling run":
            text += (f"; object scaling run, 1 object: {fmt_ms(r['ours']['median_s'])} vs "
                     f"{fmt_ms(r['official']['median_s'])}")
    return [text + ")"]


def _memory_target(results: dict) -> list[str]:
    """Ours keeps no more memory per frame while Meta's predictor grows."""
    mem = results.get("memory", {}).get("engines", {})
    if "ours" not in mem or "official" not in mem or "skipped" in mem["ours"]:
        return []
    o_rss = mem["ours"].get("rss_growth_per_100_frames")
    o_kept = mem["ours"].get("held_tensor_bytes_growth_per_100_frames")
    r_rss = mem["official"].get("rss_growth_per_100_frames")
    r_kept = mem["official"].get("held_tensor_bytes_growth_per_100_frames")
    r_incl = mem["official"].get("rss_growth_per_100_frames_incl_images")
    ok = (o_rss is not None and o_kept is not None and r_kept is not None
          and abs(o_kept) < 1024 and abs(o_rss) < 2**20 and r_kept > 0)
    return [
        "memory growth of ours ~0 per 100 frames while the official grows: "
        f"{'MET' if ok else 'NOT MET'} (criterion: ours keeps < 1 KiB more tensors and "
        f"< 1 MiB more RSS per 100 frames, the official keeps more. Kept tensors per 100 "
        f"frames: ours {fmt_mb(o_kept)}, official {fmt_mb(r_kept)}; RSS: ours "
        f"{fmt_mb(o_rss)}, official {fmt_mb(r_rss)}, {fmt_mb(r_incl)} with its images)"]


def _node_target(r: dict, default_engine: float | None) -> str:
    """One node run against the engine alone: p95 within 2x, no queue growth."""
    threads = r.get("torch_threads")
    if "skipped" in r:
        return f"node latency ({threads} torch threads): not measured ({r['skipped']})"
    ratio = r["latency_p95_s"] / r["engine_median_s"]
    growth = r["last_20pct_p50_s"] <= r["first_20pct_p50_s"] * 1.1
    met = "MET" if ratio <= 2.0 and growth else "NOT MET"
    text = (f"node latency p95 <= 2x engine per-frame at 30 Hz, no queue growth "
            f"({threads} torch threads"
            f"{', the default' if r.get('torch_threads_default') else ''}): {met} "
            f"(p95 {fmt_ms(r['latency_p95_s'])} = {ratio:.2f}x the engine's "
            f"{fmt_ms(r['engine_median_s'])}; last-20% p50 "
            f"{fmt_ms(r['last_20pct_p50_s'])} vs first-20% "
            f"{fmt_ms(r['first_20pct_p50_s'])})")
    if default_engine and not r.get("torch_threads_default"):
        text = text[:-1] + (f"; against the engine alone with the default threads "
                            f"({fmt_ms(default_engine)}): "
                            f"{r['latency_p95_s'] / default_engine:.2f}x)")
    return text


def targets(results: dict) -> list[str]:
    """The verdict on each target the benchmarks were written for."""
    node = results.get("node", {})
    default_engine = next((r["engine_median_s"] for r in node.get("runs", [])
                           if r.get("torch_threads_default") and "engine_median_s" in r), None)
    out = _speed_target(results) + _memory_target(results)
    out += [_node_target(r, default_engine) for r in node.get("runs", [])]
    if node.get("skipped"):
        out.append(f"node latency: not measured ({node['skipped']})")
    return out


def _plot_per_frame(results: dict, out: Path, made: list) -> None:
    import matplotlib.pyplot as plt

    comp = results.get("compare")
    if not comp:
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = dict(comp["rows"])
    if "times" in results.get("vos", {}):
        series["official vos_optimized"] = results["vos"]
    for name, row in series.items():
        if row.get("times"):
            ax.plot(range(1, len(row["times"]) + 1), [t * 1000 for t in row["times"]],
                    marker=".", label=name)
    ax.set_xlabel("frame")
    ax.set_ylabel("time per frame (ms)")
    ax.set_title(f"Per-frame time, {comp['objects']} object(s), image_size "
                 f"{results['settings']['image_size']}")
    ax.set_yscale("log")
    _decorate(ax)
    _save(fig, out, "per_frame.png", made)


def _plot_memory(results: dict, out: Path, made: list) -> None:
    import matplotlib.pyplot as plt

    mem = results.get("memory", {}).get("engines")
    if not mem:
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, d in mem.items():
        samples = d.get("samples") or []
        if not samples:
            continue
        xs = [s["frame"] for s in samples]
        a1.plot(xs, [s["rss"] / 2**20 for s in samples], label=f"{name} RSS")
        a2.plot(xs, [s["held_tensor_bytes"] / 2**20 for s in samples],
                label=f"{name}: kept per-frame state")
        if name == "official" and d.get("images_bytes"):
            per = d["images_bytes"] / d["frames"]
            a2.plot(xs, [(s["held_tensor_bytes"] + per * s["frame"]) / 2**20
                         for s in samples], "--",
                    label="official: kept state + images of frames so far")
        if samples[0].get("cuda_allocated") is not None:
            a1.plot(xs, [s["cuda_allocated"] / 2**20 for s in samples], ":",
                    label=f"{name} cuda allocated")
    a1.set_title("Resident memory (RSS)")
    a2.set_title("Tensors kept by the engine")
    for a in (a1, a2):
        a.set_xlabel("frame")
        a.set_ylabel("MB")
        _decorate(a)
    _save(fig, out, "memory.png", made)


def _plot_scaling(results: dict, out: Path, made: list) -> None:
    import matplotlib.pyplot as plt

    sc = results.get("scaling", {}).get("rows")
    if not sc:
        return
    fig, ax = plt.subplots(figsize=(6, 4.5))
    xs = [r["objects"] for r in sc]
    for name in ("ours", "official"):
        ax.plot(xs, [r[name]["median_s"] * 1000 for r in sc], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("objects")
    ax.set_ylabel("median time per frame (ms)")
    ax.set_title(f"Object scaling, image_size {results['scaling']['image_size']}")
    _decorate(ax)
    _save(fig, out, "object_scaling.png", made)


def _plot_node(results: dict, out: Path, made: list) -> None:
    import matplotlib.pyplot as plt

    runs = [r for r in results.get("node", {}).get("runs", []) if r.get("latencies")]
    if not runs:
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k, r in enumerate(runs):
        color = f"C{k}"
        label = f"{r.get('torch_threads')} torch thread(s)"
        ax.plot([p[0] for p in r["latencies"]], [p[1] * 1000 for p in r["latencies"]], ".",
                color=color, label=f"latency, {label}")
        ax.axhline(r["engine_median_s"] * 1000, color=color, ls="--",
                   label=f"engine alone, {label}")
        ax.axhline(2 * r["engine_median_s"] * 1000, color=color, ls=":", label="2x that")
    ax.set_xlabel("publish time (s)")
    ax.set_ylabel("ms")
    ax.set_title("Node end-to-end latency, camera at 30 Hz")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out, "node_latency.png", made)


def plots(results: dict, out: Path) -> list[str]:
    """Every plot the results allow, written to ``out``; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    made: list[str] = []
    for plot in (_plot_per_frame, _plot_memory, _plot_scaling, _plot_node):
        plot(results, out, made)
    return made


def write_report(results: dict, out: Path) -> str:
    results["targets"] = targets(results)
    results["plots"] = plots(results, out)
    md = markdown(results)
    (out / "results.md").write_text(md)
    save_json(out / "results.json", results)
    return md


