"""Mutation check: put one plausible bug at a time into a copy of the tree; the tests must fail.

    python tests/mutate.py                  # every mutant, then a table; exit 1 if one survived
    python tests/mutate.py --list           # the mutants, their files and tests
    python tests/mutate.py NAME...          # only these mutants
    python tests/mutate.py --every-test NAME  # no -x: list every test that kills NAME

The tracked tree (``git ls-files``, as in the work tree) is copied into a temp dir once. A
baseline run of every selected mutant's tests on the unmutated copy must pass; then for
each mutant its ``old`` text (which must occur exactly once in its file, else "mutation no
longer applies") is replaced by ``new``, its tests run with the project's venv python
(``-x -q -p no:cacheprovider``, ``SKIP_IMAGE_CHECK=1``, no bytecode written), and the file
is restored. A mutant that SURVIVED means a missing test; one that no longer applies
means the table below needs re-pointing at the code's new home. Both exit 1.

Not collected by pytest (its name does not start with ``test_``). Run from anywhere.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple


class Mutant(NamedTuple):
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest args; -x stops at the first failure (files in this order)


# One row per deliberate bug. To re-point a mutant after a refactor, change its file (and
# old/new if the code moved); keep ``tests`` the few files (or tests) that should notice.
MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "reducer-ignores-deltas",
        "bridge/core/state.py",
        "    replace_all = view.is_complete or restarted\n",
        "    if not (view.is_complete or restarted):\n"
        "        return replace(state, version=version), Change(version)\n"
        "    replace_all = view.is_complete or restarted\n",
        ("tests/test_reducer.py",),
    ),
    Mutant(
        "reducer-ignores-tombstones",
        "bridge/core/state.py",
        "        if res.deleted:\n            base_resources.pop(res.name, None)\n",
        "        if res.deleted:\n            pass\n",
        ("tests/test_reducer.py",),
    ),
    Mutant(
        "logbuffer-keeps-overlap",
        "bridge/core/logbuffer.py",
        '                mode = "overlap"\n'
        "                segments = segments[self._last_to - frm :]\n",
        '                mode = "overlap"\n',
        ("tests/test_logbuffer.py", "tests/test_reducer.py"),
    ),
    Mutant(
        "logbuffer-duplicates-a-truncation-resend",
        "bridge/core/logbuffer.py",
        '                mode = "resend"\n'
        "                segments = self._after_last_held(segments)\n",
        '                mode = "resend"\n',
        ("tests/test_logbuffer.py", "tests/test_reducer.py"),
    ),
    Mutant(
        "logbuffer-duplicates-a-reconnect-resend",
        "bridge/core/logbuffer.py",
        '"append"\n            segments = self._after_last_held(segments)\n',
        '"append"\n',
        ("tests/test_logbuffer.py", "tests/test_reducer.py"),
    ),
    Mutant(
        "pump-sends-no-updates",
        "bridge/mcp/notify.py",
        "self.stats.updated += await self.hub.notify_updated(to_send)",
        "self.stats.updated += len(to_send)",
        ("tests/test_pump_delivery.py", "tests/test_push.py"),
    ),
    Mutant(
        "pump-sends-no-list-changed",
        "bridge/mcp/notify.py",
        "or moved) and self.sync_concrete_resources():\n"
        "            self.stats.list_changed += await self.hub.notify_list_changed()",
        "or moved) and self.sync_concrete_resources():\n            self.stats.list_changed += 1",
        ("tests/test_pump_delivery.py", "tests/test_push.py"),
    ),
    Mutant(
        "token-header-left-out",
        "bridge/tilt/client.py",
        '            headers["X-Tilt-Token"] = self._token.reveal()\n',
        "            pass\n",
        ("tests/test_tilt_http.py", "tests/test_stream.py"),
    ),
    Mutant(
        "trigger-posts-another-resource",
        "bridge/control.py",
        "body = await self.http.trigger(name)",
        "body = await self.http.trigger(self.store.state.ordered()[0].name)",
        ("tests/test_trigger_target.py", "tests/test_control.py"),
    ),
    Mutant(
        "conflict-retried-blindly",
        "bridge/control.py",
        "            fresh = await self._await(\n"
        "                lambda s: (b := s.buttons.get(name)) is not None"
        " and b.resource_version != stale,\n"
        "                CONFLICT_WAIT_S,\n"
        "            )\n",
        "            fresh = True\n",
        ("tests/test_control.py::test_a_409_that_persists_is_reported_clearly",),
    ),
    Mutant(
        "conflict-retried-with-the-stale-object",
        "bridge/control.py",
        "            btn = self.button(name)\n            try:\n",
        "            try:\n",
        ("tests/test_control.py::test_a_409_is_retried_with_the_newest_object_from_the_stream",),
    ),
)

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTEST_ARGS = ("-m", "pytest", "-q", "-p", "no:cacheprovider")
TIMEOUT_S = 120.0
_COUNT_RE = re.compile(r"(\d+) (passed|failed|errors?|xfailed|xpassed)")


@dataclass
class Outcome:
    name: str
    tests_run: int
    result: str  # killed | SURVIVED | passed | FAILED | no longer applies | ...
    seconds: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.result in ("killed", "passed")


def copy_tree(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout
    for rel in listed.decode().split("\0"):
        src = REPO / rel
        if rel and src.is_file():  # a tracked file deleted in the work tree is skipped
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ, SKIP_IMAGE_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONPATH"] = str(tree)  # the copy's bridge, not the editable install's
    return env


def imports_the_copy(tree: Path) -> bool:
    found = subprocess.run(
        [str(VENV_PYTHON), "-c", "import bridge; print(bridge.__file__)"],
        cwd=tree,
        env=environment(tree),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(found).resolve().is_relative_to(tree.resolve())


def run_pytest(tree: Path, args: list[str], *, stop_first: bool) -> tuple[int, str, float]:
    cmd = [str(VENV_PYTHON), *PYTEST_ARGS, *(["-x"] if stop_first else []), *args]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=tree,
        env=environment(tree),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this script started
        out, _ = proc.communicate()
        return -1, out, time.monotonic() - started
    return proc.returncode, out, time.monotonic() - started


def tests_run(output: str) -> int:
    lines = [ln for ln in output.splitlines() if " in " in ln and _COUNT_RE.search(ln)]
    return sum(int(n) for n, _ in _COUNT_RE.findall(lines[-1])) if lines else 0


def failed_tests(output: str) -> list[str]:
    return [ln.split()[1] for ln in output.splitlines() if ln.startswith(("FAILED ", "ERROR "))]


def check_mutant(tree: Path, m: Mutant, *, every_test: bool) -> Outcome:
    path = tree / m.file
    if not path.is_file():
        return Outcome(m.name, 0, "no longer applies", 0.0, f"{m.file} is gone")
    original = path.read_text()
    count = original.count(m.old)
    if count != 1:
        return Outcome(
            m.name, 0, "no longer applies", 0.0, f"old text occurs {count} times in {m.file}"
        )
    path.write_text(original.replace(m.old, m.new))
    try:
        code, out, seconds = run_pytest(tree, list(m.tests), stop_first=not every_test)
    finally:
        path.write_text(original)
    ran = tests_run(out)
    if code == 0:
        return Outcome(m.name, ran, "SURVIVED", seconds, "no test noticed: write one")
    if code == 1:
        killers = failed_tests(out)
        shown = " ".join(killers) if every_test else (killers[0] if killers else "")
        return Outcome(m.name, ran, "killed", seconds, shown)
    if code == -1:
        return Outcome(m.name, ran, "TIMEOUT", seconds, f"over {TIMEOUT_S:.0f}s: make it fail fast")
    tail = " | ".join(out.strip().splitlines()[-3:])
    return Outcome(m.name, ran, f"pytest exit {code}", seconds, f"broken mutant? {tail}")


def print_table(rows: list[Outcome]) -> None:
    width = max(len("mutant"), *(len(r.name) for r in rows))
    print(f"{'mutant':<{width}}  {'tests run':>9}  {'result':<8}  {'seconds':>7}  detail")
    for r in rows:
        print(f"{r.name:<{width}}  {r.tests_run:>9}  {r.result:<8}  {r.seconds:>7.1f}  {r.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="mutants to run (default all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--every-test", action="store_true", help="run without -x and show every killing test"
    )
    opts = parser.parse_args(argv)
    by_name = {m.name: m for m in MUTANTS}
    if opts.list:
        for m in MUTANTS:
            print(f"{m.name}\n    {m.file}\n    tests: {' '.join(m.tests)}")
        return 0
    unknown = [n for n in opts.names if n not in by_name]
    if unknown:
        parser.error(f"unknown mutant(s) {', '.join(unknown)}; --list shows them")
    chosen = [by_name[n] for n in opts.names] if opts.names else list(MUTANTS)
    if not VENV_PYTHON.exists():
        print(
            f"no venv at {VENV_PYTHON}; create it: python3 -m venv .venv && "
            ".venv/bin/pip install -e '.[dev]'",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    rows: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        if not imports_the_copy(tree):
            print(
                f"the venv imports bridge from outside {tree}: mutants would not be seen",
                file=sys.stderr,
            )
            return 2
        tests = list(dict.fromkeys(t for m in chosen for t in m.tests))
        code, out, seconds = run_pytest(tree, tests, stop_first=True)
        baseline = Outcome("(baseline, no mutant)", tests_run(out), "passed", seconds)
        rows.append(baseline)
        if code != 0:
            baseline.result = "FAILED"
            baseline.detail = " ".join(failed_tests(out)) or out.strip().splitlines()[-1]
        else:
            for m in chosen:
                rows.append(check_mutant(tree, m, every_test=opts.every_test))
                done = rows[-1]
                print(f"... {done.name}: {done.result} ({done.seconds:.1f}s)", flush=True)
    print_table(rows)
    bad = [r for r in rows if not r.ok]
    print(
        f"\n{len(rows) - 1} mutants, {sum(r.result == 'killed' for r in rows)} killed, "
        f"{len(bad)} not: {time.monotonic() - started:.0f}s in all"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
