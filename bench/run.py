"""Run every benchmark and print one Markdown table: ``python -m bench.run``.

Options: ``--quick`` (fewer repeats, for a smoke run), ``--only NAME`` (repeatable),
``--no-write`` (do not update ``bench/README.md``). Benchmarks only print; nothing
here fails a build. The exit status is 0 unless a benchmark itself crashed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from bench import frame, grep_stall, ingest, memory, push, queries, startup, tooldefs
from bench.common import Config, Row, Section, calibrate, machine_line

BENCHMARKS: Final[dict[str, Callable[[Config], Section]]] = {
    "frame": frame.run,
    "ingest": ingest.run,
    "queries": queries.run,
    "push": push.run,
    "memory": memory.run,
    "startup": startup.run,
    "tooldefs": tooldefs.run,
    "grep_stall": grep_stall.run,
}
README: Final = Path(__file__).with_name("README.md")
BEGIN: Final = "<!-- bench:results:begin -->"
END: Final = "<!-- bench:results:end -->"


def table(sections: Sequence[Section]) -> str:
    lines = ["| benchmark | figure | target | pass |", "| --- | --- | --- | --- |"]
    for section in sections:
        for row in section.rows:
            cells = (row.benchmark, row.figure, row.target, row.mark)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def report(
    sections: Sequence[Section], *, machine: str, load: str, calibration: str, seconds: float
) -> str:
    rows = [r for s in sections for r in s.rows if r.passed is not None]
    failed = [r for r in rows if not r.passed]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"Machine: {machine}",
        f"Run: {when}, `python -m bench.run`, {seconds:.0f} s; load average (1/5 min, "
        f"{os.cpu_count()} CPUs) {load}",
        f"Calibration (a fixed pure-Python loop, lower = faster machine): {calibration}",
        "",
        table(sections),
        "",
        f"{len(rows) - len(failed)} of {len(rows)} targets met"
        + (": failing " + "; ".join(r.benchmark.strip() for r in failed) if failed else "."),
    ]
    notes = [n for s in sections for n in s.notes]
    if notes:
        parts += ["", *(f"- {n}" for n in notes)]
    return "\n".join(parts)


def write_readme(text: str) -> None:
    current = README.read_text(encoding="utf-8")
    head, found, rest = current.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"{README} lacks the {BEGIN} … {END} markers")
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only this")
    p.add_argument("--no-write", action="store_true", help="leave bench/README.md alone")
    args = p.parse_args(argv)
    cfg = Config(quick=args.quick)
    machine = machine_line()
    load_before = load_average()
    cal_before = calibrate()
    print(
        f"Machine: {machine}\nLoad average before: {load_before}\n"
        f"Calibration before: {cal_before:.0f} ms\n",
        flush=True,
    )
    sections: list[Section] = []
    crashed = False
    t0 = time.perf_counter()
    for name, bench in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"… {name}", end="", flush=True)
        started = time.perf_counter()
        try:
            section = bench(cfg)
        except Exception as exc:
            crashed = True
            traceback.print_exc()
            section = Section(name, [Row(name, f"crashed: {exc.__class__.__name__}: {exc}")])
        section.seconds = time.perf_counter() - started
        print(f" {section.seconds:.1f} s", flush=True)
        sections.append(section)
    seconds = time.perf_counter() - t0
    calibration = f"{cal_before:.0f} ms before, {calibrate():.0f} ms after"
    text = report(
        sections,
        machine=machine,
        load=f"{load_before} before, {load_average()} after",
        calibration=calibration,
        seconds=seconds,
    )
    print("\n" + text)
    if not args.no_write and not args.only and not args.quick:
        write_readme(text)
        print(f"\n(table written to {README})")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
