"""Target 3: ``tools/list`` ≤ 8 KB for the default tool set; the part a model reads ≤ 5 KB.

``python -m bridge`` is spawned over stdio (Tilt at a closed port: the tool set does not
depend on Tilt being up) and asked for ``tools/list``; the figure is the bytes of the
response line as written on the wire. The default set has a Tilt HTTP client, so all 14
tools; ``--read-only`` leaves the 8 read tools (the set a bridge without a Tilt HTTP
client serves). "Model-read" is what a client puts in front of the model: each tool's
name, description and input schema, as compact JSON (UTF-8); the rest is output schemas,
annotations and framing. ``python -m bench.tooldefs`` also prints each tool's share.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio

from bench.common import PYTHON, REPO, Config, Row, Section, child_env

TARGET_TOTAL: Final = 8 * 1024
TARGET_MODEL: Final = 5 * 1024
MODEL_READ: Final = ("name", "description", "inputSchema")


def _bytes(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@dataclass(frozen=True, slots=True)
class ToolList:
    wire_bytes: int
    tools: tuple[dict[str, Any], ...]

    @property
    def model_bytes(self) -> int:
        return sum(self.part(t, MODEL_READ) for t in self.tools)

    @property
    def output_bytes(self) -> int:
        return sum(_bytes(t.get("outputSchema", {})) for t in self.tools)

    @staticmethod
    def part(tool: dict[str, Any], keys: tuple[str, ...]) -> int:
        return _bytes({k: tool[k] for k in keys if k in tool})


async def tools_list(extra: tuple[str, ...] = ()) -> ToolList:
    from bench.rpc import StdioPeer
    from bench.startup import closed_port

    argv = [PYTHON, "-m", "bridge", "--host", "127.0.0.1", "--port", str(closed_port()), *extra]
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env({"BRIDGE_LOG_FORMAT": "json"})
        async with StdioPeer.spawn(argv, env=env, cwd=REPO, stderr=Path(tmp) / "err") as peer:
            await peer.initialize()
            reply = await peer.request("tools/list", {})
    wire = len(json.dumps(reply.message, separators=(",", ":"), ensure_ascii=False).encode())
    return ToolList(wire, tuple(reply.message["result"]["tools"]))


def run(cfg: Config) -> Section:
    section = Section("tooldefs")
    for label, extra in (
        ("default, 14 tools", ()),
        ("--read-only, 8 read tools", ("--read-only",)),
    ):
        got = anyio.run(tools_list, extra, backend="asyncio")
        section.rows.append(
            Row(
                f"tools/list bytes ({label}, {len(got.tools)} listed)",
                f"{got.wire_bytes:,} B (output schemas {got.output_bytes:,} B)",
                f"≤ {TARGET_TOTAL:,} B" if not extra else "—",
                got.wire_bytes <= TARGET_TOTAL if not extra else None,
            )
        )
        section.rows.append(
            Row(
                "  … model-read part: names, descriptions, input schemas",
                f"{got.model_bytes:,} B",
                f"≤ {TARGET_MODEL:,} B" if not extra else "—",
                got.model_bytes <= TARGET_MODEL if not extra else None,
            )
        )
    return section


def main() -> None:
    got = anyio.run(tools_list, tuple(sys.argv[1:]), backend="asyncio")
    print(
        f"tools/list {got.wire_bytes:,} B, model-read {got.model_bytes:,} B, "
        f"output schemas {got.output_bytes:,} B, {len(got.tools)} tools"
    )
    print(f"{'tool':<20} {'desc':>6} {'input':>6} {'output':>7} {'total':>6}")
    for t in got.tools:
        print(
            f"{t['name']:<20} {_bytes(t.get('description', '')):>6} "
            f"{_bytes(t.get('inputSchema', {})):>6} {_bytes(t.get('outputSchema', {})):>7} "
            f"{_bytes(t):>6}"
        )


if __name__ == "__main__":
    main()
