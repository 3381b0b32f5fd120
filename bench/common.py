"""What every benchmark shares: result rows, timing, RSS, the machine line, recordings."""

from __future__ import annotations

import atexit
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final

from bridge.testing import load_recording

REPO: Final = Path(__file__).resolve().parent.parent
PYTHON: Final = sys.executable
MIB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table. ``passed`` is None for an informational figure."""

    benchmark: str
    figure: str
    target: str = "—"
    passed: bool | None = None

    @property
    def mark(self) -> str:
        if self.passed is None:
            return "—"
        return "pass" if self.passed else "**FAIL**"


@dataclass(slots=True)
class Section:
    """What one benchmark module reports: table rows plus free-form notes."""

    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Config:
    """Knobs shared by every benchmark; ``quick`` trades precision for time."""

    quick: bool = False

    def repeat(self, full: int, quick: int | None = None) -> int:
        return (quick if quick is not None else max(1, full // 3)) if self.quick else full


# ---------------------------------------------------------------------------- timing


def sample_ns(fn: Callable[[], object], *, repeat: int, warmup: int = 1) -> list[int]:
    """Wall time of ``fn()`` in ns, ``repeat`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out: list[int] = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return out


def median(values: list[int] | list[float]) -> float:
    return float(statistics.median(values))


def percentile(values: list[int] | list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: a p99 is a latency that happened)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms" if ns < 10e6 else f"{ns / 1e6:.0f} ms"


def per_s(count: float, ns: float) -> float:
    return count / (ns / 1e9)


@contextmanager
def gc_collected() -> Iterator[None]:
    """Start from a collected heap so one run's garbage is not billed to the next."""
    gc.collect()
    yield


def _reference_work() -> int:
    total = 0
    counts: dict[int, int] = {}
    for i in range(300_000):
        key = i & 1023
        counts[key] = counts.get(key, 0) + 1
        total += len(str(i))
    return total + len(counts)


def calibrate() -> float:
    """Median ms of a fixed pure-Python workload: how fast this machine is right now.

    The machine is shared, so its speed varies between runs; comparing two runs' figures
    is only fair after comparing their calibrations.
    """
    return median(sample_ns(_reference_work, repeat=7, warmup=1)) / 1e6


# ---------------------------------------------------------------------------- processes


@cache
def bytecode_env() -> dict[str, str | None]:
    """Environment for spawned interpreters: bytecode cached like a pip install's.

    This machine sets ``PYTHONDONTWRITEBYTECODE``, so an editable checkout would be
    compiled from source on every start. Spawned processes instead write and read
    their ``.pyc`` files under one private ``PYTHONPYCACHEPREFIX`` for this run (never
    in the work tree); a benchmark's untimed warm-up start fills it.
    """
    prefix = tempfile.mkdtemp(prefix="bench-pycache-")
    atexit.register(shutil.rmtree, prefix, ignore_errors=True)
    return {"PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": prefix}


def child_env(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """``os.environ`` with :func:`bytecode_env` and ``extra`` applied (None unsets)."""
    env = dict(os.environ)
    for key, value in {**bytecode_env(), **(extra or {})}.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# ---------------------------------------------------------------------------- memory


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM, … from ``/proc/<pid>/status`` in bytes."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            parts = value.split()
            if key.startswith("Vm") and len(parts) == 2 and parts[1] == "kB":
                out[key] = int(parts[0]) * 1024
    return out


def rss(pid: int | str = "self") -> int:
    return proc_status(pid)["VmRSS"]


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def mb(n: float) -> str:
    return f"{n / MIB:.1f} MiB"


# ---------------------------------------------------------------------------- machine


def machine_line() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    mem = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            total_kb = int(fh.readline().split()[1])
        mem = f", {total_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{model}, {cores} cores{mem}; Python {platform.python_version()} "
        f"({platform.python_implementation()}) on {platform.system()} {platform.release()}"
    )


# ---------------------------------------------------------------------------- recordings


def recording(name: str) -> list[list[str]]:
    """A bundled recording as its connections, each a list of raw frame texts."""
    return [[f.raw for f in c.frames] for c in load_recording(name).connections]


def big_complete_frame() -> str:
    """The ~3.9 MB complete view of ``08-log-truncation``'s second connection."""
    for raw in recording("08-log-truncation")[1]:
        if json.loads(raw).get("isComplete") is True:
            return raw
    raise LookupError("08-log-truncation has no complete view on its second connection")
