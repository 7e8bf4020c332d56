"""What both GPU scripts do around their parts: the results' header, each part run with its
failure kept as text, and the JSON written after every part, so a run cut by the lent
machine's time limit still brings back what finished."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from benchmarks.common import machine


def results_header(device: str, config: dict) -> dict:
    """Machine, configuration, torch version and, on CUDA, the GPU's name and capability."""
    results = {"machine": machine.machine_info(device), "config": config,
               "torch": torch.__version__, "sections": {}}
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        results["gpu"] = {"name": torch.cuda.get_device_name(dev),
                          "capability": list(torch.cuda.get_device_capability(dev))}
    return results


def run_parts(parts: Iterable[tuple[str, str, Callable[[], object]]], results: dict,
              json_path: Path) -> None:
    """Run each ``(key, name, run)`` in turn into ``results["sections"]``; a part that raises
    is recorded with its traceback and the next one still runs."""
    for key, name, run in parts:
        t0 = time.perf_counter()
        try:
            data = run()
        except Exception:
            data = {"error": traceback.format_exc(limit=6)}
            print(f"({key}) FAILED\n{data['error']}", flush=True)
        results["sections"][key] = {"name": name, "seconds": time.perf_counter() - t0,
                                    "data": data}
        json_path.write_text(json.dumps(results, indent=2, default=str))


def finish(results: dict, started: float, json_path: Path,
           report: Callable[[dict], str]) -> int:
    """Write the JSON and the Markdown report beside it, print the report; 1 when a part
    failed."""
    results["total_s"] = time.perf_counter() - started
    json_path.write_text(json.dumps(results, indent=2, default=str))
    text = report(results)
    json_path.with_suffix(".md").write_text(text)
    print(text)
    failed = [k for k, s in results["sections"].items()
              if isinstance(s["data"], dict) and "error" in s["data"]]
    return 1 if failed else 0
