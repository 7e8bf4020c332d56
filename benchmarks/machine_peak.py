"""The CPU's theoretical peak FLOP/s, from /proc/cpuinfo, to say how close an engine gets.

Peak = cores x clock x FLOP per cycle per core of the widest matrix unit the CPU has for a
precision. FLOP per cycle come from the vendors' published micro-architecture facts (FMA
units and their width), keyed by what /proc/cpuinfo shows; the clock is the one the kernel
measured at boot (a virtual machine shows no turbo). Every assumption is returned with the
number, so a reader can redo it; on a VM two "cores" may be one core's two hyper-threads,
in which case the real peak is half.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Peak:
    cores: int
    ghz: float | None
    fp32_flop_per_cycle: int
    bf16_flop_per_cycle: int | None  # None: no native bf16 arithmetic
    unit_fp32: str
    unit_bf16: str | None

    @property
    def fp32_gflops(self) -> float | None:
        return self.cores * self.ghz * self.fp32_flop_per_cycle if self.ghz else None

    @property
    def bf16_gflops(self) -> float | None:
        if not self.ghz or self.bf16_flop_per_cycle is None:
            return None
        return self.cores * self.ghz * self.bf16_flop_per_cycle

    def as_dict(self) -> dict:
        return {**asdict(self), "fp32_gflops": self.fp32_gflops,
                "bf16_gflops": self.bf16_gflops}


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def machine_peak(cores: int | None = None) -> Peak:
    """Peak of this machine (``cores`` defaults to the CPUs this process may use)."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    vendor = info.get("vendor_id", "")
    family = int(info.get("cpu family", "0") or 0)
    mhz = float(info.get("cpu MHz", "0") or 0)
    cores = cores or len(os.sched_getaffinity(0))
    ghz = mhz / 1000 if mhz else None
    if vendor == "AuthenticAMD" and family >= 26 and "avx512f" in flags:
        # Zen 5: two 512-bit FMA pipes.
        fp32, unit = 64, "Zen 5: 2 x 512-bit FMA"
        bf16 = 128 if "avx512_bf16" in flags else None
        unit_bf16 = "Zen 5: AVX512_BF16 dot products on 2 x 512-bit pipes" if bf16 else None
    elif vendor == "AuthenticAMD":
        # Zen 2-4: two 256-bit FMA pipes (Zen 4 runs AVX-512 on them in two halves).
        fp32, unit = 32, "Zen 2-4: 2 x 256-bit FMA"
        bf16 = 64 if "avx512_bf16" in flags else None
        unit_bf16 = "Zen 4: AVX512_BF16 dot products on 2 x 256-bit pipes" if bf16 else None
    elif "avx512f" in flags:
        # Xeon Scalable: two 512-bit FMA units per core.
        fp32, unit = 64, "Xeon: 2 x 512-bit FMA"
        if "amx_bf16" in flags:
            bf16, unit_bf16 = 1024, "AMX-BF16 tile unit (1024 FLOP/cycle/core)"
        elif "avx512_bf16" in flags:
            bf16, unit_bf16 = 128, "AVX512_BF16 dot products on 2 x 512-bit FMA"
        else:
            bf16, unit_bf16 = None, None
    elif "avx2" in flags and "fma" in flags:
        fp32, unit, bf16, unit_bf16 = 32, "2 x 256-bit FMA", None, None
    else:
        fp32, unit, bf16, unit_bf16 = 8, "SSE (guess)", None, None
    return Peak(cores, ghz, fp32, bf16, unit, unit_bf16)
