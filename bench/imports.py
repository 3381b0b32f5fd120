"""What the bridge imports before it answers ``initialize`` that a bare FastMCP server does not.

``python -m bench.imports`` spawns ``python -X importtime -m bridge`` and
``python -X importtime -m bench.bare_server`` over stdio (bytecode cached, after one
untimed warm-up start each), sends ``initialize``, and reads the child's stderr the moment
the answer arrives: every ``import time:`` line written by then is an import made before
the first request was answered. The modules only the bridge imports are grouped by
package with their summed *self* times (the cumulative column double-counts nesting), the
best of ``--repeat`` starts per module.

``--top N`` lists the N heaviest extra packages and modules; ``--json`` prints the raw
figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio

from bench.common import PYTHON, REPO, child_env
from bench.rpc import StdioPeer

BARE: Final = ("-m", "bench.bare_server")


def bridge_argv(port: int) -> tuple[str, ...]:
    return ("-m", "bridge", "--host", "127.0.0.1", "--port", str(port))


@dataclass(frozen=True, slots=True)
class Profile:
    """Self time (µs) per module imported before ``initialize`` was answered; the best
    (lowest) of several starts."""

    self_us: dict[str, int]

    @property
    def total_us(self) -> int:
        return sum(self.self_us.values())

    def without(self, other: Profile) -> Profile:
        return Profile({m: t for m, t in self.self_us.items() if m not in other.self_us})

    def packages(self) -> dict[str, tuple[int, int]]:
        """Top-level package → (summed self µs, modules), heaviest first."""
        out: dict[str, tuple[int, int]] = {}
        for module, us in self.self_us.items():
            root = module.partition(".")[0]
            total, count = out.get(root, (0, 0))
            out[root] = (total + us, count + 1)
        return dict(sorted(out.items(), key=lambda kv: -kv[1][0]))

    def heaviest(self, n: int) -> list[tuple[str, int]]:
        return sorted(self.self_us.items(), key=lambda kv: -kv[1])[:n]


def parse(lines: Iterable[str]) -> dict[str, int]:
    """``-X importtime`` lines → module → self µs (first import only)."""
    out: dict[str, int] = {}
    for line in lines:
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|", 2)
        out.setdefault(name.strip(), int(own))
    return out


async def _one(args: Sequence[str], env: dict[str, str]) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        err = Path(tmp) / "err"
        argv = [PYTHON, "-X", "importtime", *args]
        async with StdioPeer.spawn(argv, env=env, cwd=REPO, stderr=err) as peer:
            await peer.initialize(within_s=60, notify=False)
            # importtime writes to stderr unbuffered: what is in the file now was
            # imported before the answer was written (and before the client said
            # notifications/initialized, which lets the bridge connect to Tilt).
            text = err.read_text(encoding="utf-8", errors="replace")
            await peer.initialized()
    return parse(text.splitlines())


async def _profile(args: Sequence[str], repeat: int) -> Profile:
    env = child_env({"BRIDGE_LOG_FORMAT": "json"})
    await _one(args, env)  # warm-up: compiles and caches the bytecode
    best: dict[str, int] = {}
    for _ in range(repeat):
        for module, us in (await _one(args, env)).items():
            best[module] = min(us, best.get(module, us))
    return Profile(best)


def profiles(port: int, repeat: int = 3) -> tuple[Profile, Profile]:
    """(bridge, bare FastMCP server), measured in the same run."""

    async def both() -> tuple[Profile, Profile]:
        return await _profile(bridge_argv(port), repeat), await _profile(BARE, repeat)

    return anyio.run(both, backend="asyncio")


def extra_text(bridge: Profile, bare: Profile, n: int = 10) -> str:
    extra = bridge.without(bare)
    pkgs = ", ".join(
        f"`{p}` {us / 1000:.0f} ms ({count})"
        for p, (us, count) in list(extra.packages().items())[:n]
    )
    return (
        f"{len(extra.self_us)} modules, {extra.total_us / 1000:.0f} ms self time "
        f"(bridge {len(bridge.self_us)} modules / {bridge.total_us / 1000:.0f} ms; bare "
        f"{len(bare.self_us)} / {bare.total_us / 1000:.0f} ms); by package (modules): {pkgs}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from bench.startup import closed_port

    bridge, bare = profiles(closed_port(), args.repeat)
    extra = bridge.without(bare)
    if args.json:
        print(json.dumps({"bridge": bridge.self_us, "bare": bare.self_us}, indent=1))
        return 0
    print("Imported before initialize was answered, only by the bridge:")
    print(extra_text(bridge, bare, args.top))
    print(f"\n{'package':<28} {'self ms':>8} {'modules':>8}")
    for pkg, (us, count) in list(extra.packages().items())[: args.top]:
        print(f"{pkg:<28} {us / 1000:>8.1f} {count:>8}")
    print(f"\n{'module':<48} {'self ms':>8}")
    for module, us in extra.heaviest(args.top):
        print(f"{module:<48} {us / 1000:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
