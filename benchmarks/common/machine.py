"""The machine a benchmark runs on: what it is, how loaded, and a gate that waits for quiet.

Every report names its machine and load, since a number without them says little.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(device: str) -> dict:
    import torch

    info = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sam2": package_version("sam2"),
        "device": device,
        "gpu": None,
        "load_average_at_start": load_average(),
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak, not current


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def _own_jiffies() -> int:
    """utime + stime of this process and its waited-for children (all threads)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15])


@dataclass
class QuietGate:
    """Wait, before each timed step, until no other process uses the CPU.

    A shared machine (other people's test runs) can make a small CPU many times slower
    while both compete for the cores; timings taken then say nothing about the engines.
    Before a step the gate samples /proc/stat for ``window`` seconds and waits while
    processes other than this one used more than ``threshold`` of a core, up to
    ``budget_s`` of waiting in total for the whole run; steps run without a quiet machine
    are counted, not hidden.
    """

    budget_s: float
    window: float = 0.1
    threshold: float = 0.3

    def __post_init__(self) -> None:
        self.waited_s, self.steps, self.contended_steps = 0.0, 0, 0
        self.enabled = self.budget_s > 0 and _cpu_jiffies() is not None

    def others_busy(self) -> float:
        """Cores used by other processes over one window."""
        a, own_a = _cpu_jiffies(), _own_jiffies()
        time.sleep(self.window)
        b, own_b = _cpu_jiffies(), _own_jiffies()
        total = max(1, b[1] - a[1])
        cores = os.cpu_count() or 1
        return max(0.0, (b[0] - a[0]) - (own_b - own_a)) / total * cores

    def wait(self) -> None:
        if not self.enabled:
            return
        self.steps += 1
        started = time.perf_counter()
        while self.others_busy() > self.threshold:
            if self.waited_s + (time.perf_counter() - started) > self.budget_s:
                self.contended_steps += 1
                break
        self.waited_s += time.perf_counter() - started

    def summary(self) -> dict:
        return {"enabled": self.enabled, "budget_s": self.budget_s,
                "waited_s": round(self.waited_s, 1), "steps": self.steps,
                "steps_without_quiet_machine": self.contended_steps}

