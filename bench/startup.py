"""Start-up: spawn → ``initialize`` answered, against a bare FastMCP server in the same run.

``python -m bridge`` and ``python -m bench.bare_server`` are started in turn (so a load
spike hits both alike) with stdio pipes and an ``initialize`` request written at once
(it waits in the pipe); the figure is spawn → response line, the median of several
starts (bytecode cached, see :func:`bench.common.bytecode_env`), with the CPU time the
process had used by then, read before ``notifications/initialized`` (which lets the
bridge connect to Tilt: :class:`bridge.lifecycle.StartGate`). Tilt is pointed at a
closed loopback port. Then the first ``tools/list`` of each, 1.5 s after the handshake.

``python -X importtime`` is run on ``-m bridge --version`` (what the brief names) and
on the modules ``serve`` imports, and the heaviest top-level imports are listed.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from typing import Final

import anyio

from bench.common import PYTHON, REPO, Config, Row, Section, child_env, median, ms, percentile

TARGET_S: Final = 1.5
RELATIVE_TARGET: Final = 0.05
"""Issue 13: no more than 5% above the bare FastMCP server, measured in the same run."""
SERVE_IMPORTS: Final = "import bridge.app, bridge.mcp.app, bridge.mcp.server"


def run(cfg: Config) -> Section:
    section = Section("startup")
    repeat = cfg.repeat(7, 5)
    port = closed_port()
    from bench.lean import first_requests, starts

    got = anyio.run(starts, repeat, backend="asyncio")  # bridge and bare, alternating
    (samples, cpu), (floor, floor_cpu) = got["bridge"], got["bare"]
    section.rows.append(
        Row(
            f"start-up: spawn → initialize answered (median of {repeat})",
            f"{ms(median(samples))} (max {ms(max(samples))}); CPU {ms(median(cpu))}",
            f"≤ {TARGET_S:g} s",
            median(samples) <= TARGET_S * 1e9,
        )
    )
    section.rows.append(
        Row(
            "  … floor: a bare FastMCP server, one no-op tool (started in turn with the bridge)",
            f"{ms(median(floor))}; CPU {ms(median(floor_cpu))}",
        )
    )
    wall = median(samples) / median(floor) - 1
    section.rows.append(
        Row(
            "start-up, bridge over the bare server (medians, same run)",
            f"wall {wall:+.1%}, CPU {median(cpu) / median(floor_cpu) - 1:+.1%}",
            f"≤ +{RELATIVE_TARGET:.0%}",
            wall <= RELATIVE_TARGET,
        )
    )
    first = anyio.run(first_requests, backend="asyncio")
    section.rows.append(
        Row(
            "first tools/list after initialize (fastmcp's session store, see bench/lean.py)",
            f"bridge {ms(first['bridge'])}, bare {ms(first['bare'])}",
        )
    )
    version = importtime(["-m", "bridge", "--version"])
    serve = importtime(["-c", SERVE_IMPORTS])
    section.rows.append(
        Row("import time: python -m bridge --version", f"{version.total_us / 1000:.0f} ms")
    )
    section.rows.append(
        Row(
            f"import time: serve's modules ({SERVE_IMPORTS.removeprefix('import ')})",
            f"{serve.total_us / 1000:.0f} ms",
        )
    )
    section.notes.append(
        "Heaviest packages of `python -m bridge --version` (cumulative): " + version.top_text()
    )
    section.notes.append(
        "Heaviest packages imported by serve (cumulative, nested): " + serve.top_text()
    )
    section.notes.append("Heaviest single modules of serve (self time): " + serve.top_self_text())
    from bench import imports

    bridge_imports, bare_imports = imports.profiles(port, repeat=2 if cfg.quick else 3)
    section.notes.append(
        "Imported before `initialize` was answered by `python -m bridge` and not by the bare "
        "server (`python -m bench.imports` lists each module): "
        + imports.extra_text(bridge_imports, bare_imports)
    )
    section.notes.append(
        f"start-up samples: {', '.join(ms(s) for s in sorted(samples))}; "
        f"p90 {ms(percentile(samples, 90))}"
    )
    return section


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_ns(pid: int) -> int:
    """User + system CPU time a live process has used so far (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ImportTimes:
    rows: tuple[tuple[int, int, int, str], ...]  # self us, cumulative us, depth, module

    @property
    def total_us(self) -> int:
        return sum(cum for _, cum, depth, _ in self.rows if depth == 0)

    def top_text(self, n: int = 12) -> str:
        """Packages (their root module's first import, nested ones included)."""
        roots: dict[str, int] = {}
        for _, cum, _, module in self.rows:
            if "." not in module and module not in roots:
                roots[module] = cum
        tops = sorted(roots.items(), key=lambda kv: -kv[1])[:n]
        return ", ".join(f"`{m}` {cum / 1000:.0f} ms" for m, cum in tops)

    def top_self_text(self, n: int = 10) -> str:
        tops = sorted(self.rows, key=lambda r: -r[0])[:n]
        return ", ".join(f"`{m}` {own / 1000:.0f} ms" for own, _, _, m in tops)


def importtime(args: list[str]) -> ImportTimes:
    """``python -X importtime ARGS``, parsed; the best of 3 runs per module."""
    best: dict[tuple[int, str], tuple[int, int]] = {}
    order: list[tuple[int, str]] = []
    for _ in range(3):
        proc = subprocess.run(
            [PYTHON, "-X", "importtime", *args],
            cwd=REPO,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            own, cum, name = line.removeprefix("import time:").split("|", 2)
            depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
            key = (depth, name.strip())
            value = (int(own), int(cum))
            if key not in best:
                order.append(key)
                best[key] = value
            else:
                best[key] = min(best[key], value, key=lambda v: v[1])
    return ImportTimes(tuple((*best[k], k[0], k[1]) for k in order))


if __name__ == "__main__":
    section = run(Config())
    for row in section.rows:
        print(row)
    for note in section.notes:
        print(note)
