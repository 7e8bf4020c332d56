"""What a `sam2_ros label` run reports: a table of bags (done, skipped, failed and why),
frames per second per worker, J&F and identity where a bag has ground truth; written as
OUT/summary.json and OUT/summary.md, and a contact sheet with one labelled frame per bag."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from sam2_ros.fleet.labeller import PREVIEW
from sam2_ros.fleet.ray_pool import FleetResult

TILE_W = 240


def counts(result: FleetResult) -> dict[str, int]:
    """How many bags ended in each status."""
    found: dict[str, int] = {}
    for record in result.records:
        found[record["status"]] = found.get(record["status"], 0) + 1
    return found


def worker_rates(result: FleetResult) -> list[dict]:
    """Per worker: bags, frames, seconds labelling, frames per second, model load time."""
    rows = {w["worker"]: {"worker": w["worker"], "load_s": w["load_s"], "bags": 0,
                          "frames": 0, "busy_s": 0.0} for w in result.workers}
    for r in result.records:
        if r["status"] == "done" and r.get("worker") in rows:
            row = rows[r["worker"]]
            row["bags"] += 1
            row["frames"] += r["frames"]
            row["busy_s"] += r["wall_s"]
    for row in rows.values():
        row["fps"] = row["frames"] / row["busy_s"] if row["busy_s"] else 0.0
    return list(rows.values())


def _score(record: dict) -> str:
    metrics = record.get("metrics", {})
    if "J&F_mean" not in metrics:
        return "-"
    ident = metrics.get("identity", {})
    return (f"J&F {metrics['J&F_mean']:.3f}, {ident.get('switches', 0)} id switch(es), "
            f"IDF1 {ident.get('IDF1', 0):.3f}")


def summary_markdown(result: FleetResult) -> str:
    """The table a person reads at the end of a run (also OUT/summary.md)."""
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts(result).items()))
    frames = sum(r.get("frames", 0) for r in result.records if r["status"] == "done")
    lines = [f"{len(result.records)} bags: {tally}; {frames} frames labelled in "
             f"{result.wall_s:.1f} s" + (" (interrupted)" if result.interrupted else ""), "",
             "| bag | status | frames | seconds | objects | ground truth | reason |",
             "|---|---|---:|---:|---:|---|---|"]
    for r in result.records:
        seconds = f"{r['wall_s']:.1f}" if "wall_s" in r else "-"
        lines.append(f"| {r['name']} | {r['status']} | {r.get('frames', '-')} | {seconds} "
                     f"| {r.get('metrics', {}).get('objects', '-')} | {_score(r)} "
                     f"| {r.get('reason', '')} |")
    if result.workers:
        lines += ["", "| worker | model load s | bags | frames | frames/s |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {w['worker']} | {w['load_s']:.1f} | {w['bags']} | {w['frames']} "
                  f"| {w['fps']:.2f} |" for w in worker_rates(result)]
    return "\n".join(lines)


def write_summary(result: FleetResult, out_root: Path) -> list[Path]:
    """OUT/summary.json, OUT/summary.md and OUT/contact_sheet.png (when a bag is labelled)."""
    data = {"counts": counts(result), "interrupted": result.interrupted,
            "wall_s": result.wall_s, "workers": worker_rates(result), "bags": result.records}
    written = [out_root / "summary.json", out_root / "summary.md"]
    written[0].write_text(json.dumps(data, indent=2) + "\n")
    written[1].write_text("# sam2_ros label\n\n" + summary_markdown(result) + "\n")
    sheet = contact_sheet(result, out_root)
    if sheet is not None:
        import cv2

        cv2.imwrite(str(out_root / "contact_sheet.png"), sheet)
        written.append(out_root / "contact_sheet.png")
    return written


def contact_sheet(result: FleetResult, out_root: Path, columns: int = 4) -> np.ndarray | None:
    """BGR grid: each labelled bag's preview frame with its name above it."""
    import cv2

    tiles = []
    for record in result.records:
        path = out_root / record["name"] / PREVIEW
        if record["status"] not in ("done", "skipped") or not path.is_file():
            continue
        image = cv2.imread(str(path))
        height = round(image.shape[0] * TILE_W / image.shape[1])
        tile = np.full((height + 22, TILE_W, 3), 255, np.uint8)
        tile[22:] = cv2.resize(image, (TILE_W, height), interpolation=cv2.INTER_AREA)
        caption = f"{record['name']} ({record.get('frames', '?')} frames)"
        cv2.putText(tile, caption[:34], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        tiles.append(tile)
    if not tiles:
        return None
    tile_h = max(t.shape[0] for t in tiles)
    rows = math.ceil(len(tiles) / columns)
    width = min(columns, len(tiles))
    sheet = np.full((rows * (tile_h + 4), width * (TILE_W + 4), 3), 255, np.uint8)
    for index, tile in enumerate(tiles):
        y, x = divmod(index, columns)
        top, left = y * (tile_h + 4), x * (TILE_W + 4)
        sheet[top:top + tile.shape[0], left:left + TILE_W] = tile
    return sheet
