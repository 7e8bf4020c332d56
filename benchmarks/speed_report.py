"""speed.md and speed.png from the results of benchmarks/speed.py."""

from __future__ import annotations

from pathlib import Path

ENGINES = (
    ("ours", "ours (default)"),
    ("ours_sam2", "ours, tracking_mode sam2"),
    ("ours_fp32", "ours fp32"),
    ("ours_compiled", "ours, encoder compiled"),
    ("official", "Meta fp32"),
    ("meta_bf16", "Meta bf16 autocast"),
)
#: Targets of issue 12: Meta fp32 / ours and Meta bf16 / ours at 1 and 4 objects.
TARGETS = {("official", 1): 1.5, ("official", 4): 2.0,
           ("meta_bf16", 1): 1.2, ("meta_bf16", 4): 1.5}


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _median(config: dict, name: str) -> float | None:
    if name == "vos":
        vos = config.get("vos") or {}
        return vos.get("steady_median_s")
    row = config["rows"].get(name)
    return row["steady_median_s"] if row else None


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _header(results: dict) -> list[str]:
    """Command, machine, its peak, model and what the times are."""
    m, peak, configs = results["machine"], results["peak"], results["configs"]
    ghz = f"{peak['ghz']:.2f}" if peak.get("ghz") else "?"
    return [
        "# Speed: ours vs Meta's SAM2VideoPredictor",
        "",
        f"- command: `{results['command']}`",
        f"- machine: {m['cpu']}, {peak['cores']} torch threads, {m.get('memory_gib') or '?'} "
        f"GiB; torch {m['torch']}, sam2 {m['sam2']}; {m['date_utc']}",
        f"- peak (from /proc/cpuinfo, {ghz} GHz): fp32 "
        f"{peak['fp32_gflops'] or 0:.0f} GFLOP/s ({peak['unit_fp32']}), bf16 "
        + (f"{peak['bf16_gflops']:.0f} GFLOP/s ({peak['unit_bf16']})"
           if peak.get("bf16_gflops") else "none (no native bf16)"),
        f"- model {results['model']} (random weights, same state_dict in every engine), "
        f"camera {results['camera'][0]}x{results['camera'][1]}, one click per object on "
        "frame 0; times are medians over frames >= 8 (memory bank full), engines in lockstep",
        f"- ours' default precision here: {configs[0]['ours_precision'] if configs else '?'}",
        "",
    ]


def _time_table(configs: list[dict], present: list[tuple[str, str]]) -> list[str]:
    """Per-frame time of every engine and configuration, with Meta's ratios to ours."""
    lines = [
        "## Per-frame time",
        "",
        _row("image_size", "objects", *[label for _, label in present], "vos_optimized",
             "Meta fp32 / ours", "Meta bf16 / ours", "ours (default) vs sam2 mode"),
        _row(*["---"] * (len(present) + 6)),
    ]
    for c in configs:
        ours = _median(c, "ours")
        ratio = {k: (_median(c, k) / ours if ours and _median(c, k) else None)
                 for k in ("official", "meta_bf16")}
        sam2_mode = _median(c, "ours_sam2")
        mode_cell = f"{ours / sam2_mode - 1:+.1%}" if ours and sam2_mode else "-"
        vos = c.get("vos")
        vos_cell = (_ms(vos.get("steady_median_s")) if vos and "skipped" not in vos
                    else (vos["skipped"] if vos else "not run"))
        lines.append(_row(c["image_size"], c["objects"],
                          *[_ms(_median(c, k)) for k, _ in present], vos_cell,
                          *[f"{ratio[k]:.2f}x" if ratio[k] else "-"
                            for k in ("official", "meta_bf16")], mode_cell))
    return lines


def _extra_object_table(configs: list[dict], present: list[tuple[str, str]]) -> list[str]:
    """What each object beyond the first costs, per image size."""
    lines = ["", "## Cost of each extra object", "",
             "(time at the most objects minus time at one object) / (extra objects)", "",
             _row("image_size", *[label for _, label in present], "vos_optimized"),
             _row(*["---"] * (len(present) + 2))]
    for size in sorted({c["image_size"] for c in configs}):
        row = sorted((c for c in configs if c["image_size"] == size), key=lambda c: c["objects"])
        if len(row) < 2:
            continue
        lo, hi = row[0], row[-1]
        extra = hi["objects"] - lo["objects"]
        cells = []
        for k in [k for k, _ in present] + ["vos"]:
            a, b = _median(lo, k), _median(hi, k)
            cells.append(_ms((b - a) / extra) if a and b else "-")
        lines.append(_row(size, *cells))
    return lines


def _rate_cell(c: dict, k: str, peak: dict) -> str:
    """Achieved GFLOP/s of engine ``k`` and its share of the matching peak."""
    t = _median(c, k)
    if not t:
        return "-"
    flop = c["gflop_ours"] if k.startswith("ours") else c["gflop_meta"]
    bf16 = (k == "meta_bf16") or (k in ("ours", "ours_sam2", "ours_compiled")
                                  and c["ours_precision"] != "fp32")
    pk = peak["bf16_gflops"] if bf16 and peak.get("bf16_gflops") else peak["fp32_gflops"]
    rate = flop / t
    return f"{rate:.0f} ({rate / pk:.0%})" if pk else f"{rate:.0f}"


def _flops_table(configs: list[dict], present: list[tuple[str, str]], peak: dict) -> list[str]:
    """GFLOP per frame and the GFLOP/s every engine achieves."""
    lines = ["", "## GFLOP per frame and achieved GFLOP/s", "",
             "GFLOP from torch.utils.flop_counter on one steady frame (ours and Meta run the "
             "same network; both counted). Share of peak against the fp32 peak for fp32 runs "
             "and the bf16 peak for bf16 runs.", "",
             _row("image_size", "objects", "GFLOP ours", "GFLOP Meta",
                  *[f"{label}: GFLOP/s (of peak)" for _, label in present],
                  "vos_optimized (fp32): GFLOP/s (of peak)"),
             _row(*["---"] * (len(present) + 5))]
    for c in configs:
        cells = [_rate_cell(c, k, peak) for k in [k for k, _ in present] + ["vos"]]
        lines.append(_row(c["image_size"], c["objects"], f"{c['gflop_ours']:.1f}",
                          f"{c['gflop_meta']:.1f}", *cells))
    return lines


def _transfer_table(configs: list[dict]) -> list[str]:
    """Host traffic and stage medians of our frame path."""
    lines = ["", "## Our frame path: host traffic and stages per frame", "",
             "Bytes and host waits of the postprocessing step (all objects upsampled, "
             "thresholded, labelled and measured on the model's device, then one uint8 copy); "
             "on a CPU the copy is free, the count is what a GPU would pay.", "",
             _row("image_size", "objects", "bytes to host", "host syncs", "encoder",
                  "memory attention", "decoder", "memory encoder", "postprocess"),
             _row(*["---"] * 9)]
    for c in configs:
        s = c.get("ours_stage_medians_s") or {}
        lines.append(_row(c["image_size"], c["objects"], f"{c['transfer']['bytes']:,}",
                          c["transfer"]["syncs"],
                          *[_ms(s.get(k)) for k in ("encoder", "memory_attention", "decoder",
                                                     "memory_encoder", "postprocess")]))
    return lines


def _target_lines(configs: list[dict]) -> list[str]:
    """Each target of issue 12 met or not, in the default configurations."""
    lines = ["", "## Targets (issue 12), default configurations", ""]
    for c in configs:
        for (k, n), want in TARGETS.items():
            if c["objects"] != n or not _median(c, k) or not _median(c, "ours"):
                continue
            got = _median(c, k) / _median(c, "ours")
            lines.append(f"- {c['image_size']} px, {n} object(s), vs {dict(ENGINES)[k]}: "
                         f"{got:.2f}x (target {want}x) - {'met' if got >= want else 'NOT met'}")
            if _median(c, "ours_compiled"):
                got = _median(c, k) / _median(c, "ours_compiled")
                lines.append(f"  - with the encoder compiled (`compile: true`, not the "
                             f"default): {got:.2f}x - {'met' if got >= want else 'NOT met'}")
    return lines


def markdown(results: dict) -> str:
    """speed.md: the tables in order, the targets and the quiet gate."""
    configs = results["configs"]
    present = [(k, label) for k, label in ENGINES if any(k in c["rows"] for c in configs)]
    lines = _header(results)
    lines += _time_table(configs, present) + _extra_object_table(configs, present)
    lines += _flops_table(configs, present, results["peak"]) + _transfer_table(configs)
    lines += _target_lines(configs)
    gate = results.get("quiet_gate")
    if gate:
        lines += ["", f"Quiet-machine gate: {gate}", ""]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = results["configs"]
    sizes = sorted({c["image_size"] for c in configs})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4.2), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        row = sorted((c for c in configs if c["image_size"] == size), key=lambda c: c["objects"])
        for k, label in (*ENGINES, ("vos", "Meta vos_optimized (fp32)")):
            pts = [(c["objects"], _median(c, k)) for c in row if _median(c, k)]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, [y * 1000 for y in ys], marker="o", label=label,
                        linestyle="--" if k == "vos" else "-")
        ax.set_title(f"image_size {size}")
        ax.set_xlabel("objects")
        ax.set_ylabel("ms per frame (steady state)")
        ax.set_xticks(sorted({c["objects"] for c in row}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{results['machine']['cpu']}, {results['peak']['cores']} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_speed_report(results: dict, out: Path) -> str:
    md = markdown(results)
    (out / "speed.md").write_text(md)
    if results["configs"]:
        plot(results, out / "speed.png")
    return md
