"""Run one real ``tilt up`` for tests: its own port, ``TILT_DEV_DIR`` and project folder.

Tilt's ``serve_cmd`` children each run in their own process group and outlive a
``kill -9`` of Tilt, so :meth:`RealTilt.kill9` ends them by pid (found through
``/proc``: every process whose parent chain leads to Tilt's pid, read before the kill).
Nothing here is matched by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

DEMO_PORTS: Final = (18081,)  # ports the demo's servers bind (web: 18081)
START_TIMEOUT_S: Final = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """Nothing listens on ``port`` (TIME_WAIT leftovers do not count, as for the servers
    the demo runs, which set SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until(what: str, predicate: Callable[[], bool], timeout_s: float) -> None:
    """Check ``predicate`` until it holds (a real process: there is nothing to await)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout_s}s")
        time.sleep(delay)  # a poll interval with a deadline, not a wait for a guess
        delay = min(delay * 2, 0.25)


def _children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …; comm may hold spaces and parentheses
        rest = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(rest[1])
    out: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        out.extend(kids)
        frontier.extend(kids)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class RealTilt:
    binary: str
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    args: Sequence[str] = ()

    @property
    def dev_dir(self) -> Path:
        return self.workdir / "tilt-dev"

    @property
    def project(self) -> Path:
        return self.workdir / "project"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TILT_")}
        env["TILT_DEV_DIR"] = str(self.dev_dir)
        env["TILT_PORT"] = str(self.port)
        env["TILT_HOST"] = "127.0.0.1"
        return env

    @property
    def token(self) -> str:
        return (self.dev_dir / "token").read_text().strip()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self, tiltfile: str, extra_files: dict[str, str] | None = None) -> None:
        self.project.mkdir(parents=True, exist_ok=True)
        self.dev_dir.mkdir(parents=True, exist_ok=True)
        (self.project / "Tiltfile").write_text(tiltfile)
        for name, text in (extra_files or {}).items():
            (self.project / name).write_text(text)

    def start(self) -> None:
        for port in DEMO_PORTS:
            wait_until(
                f"port {port} free (a previous Tilt's server?)",
                lambda port=port: port_free(port),  # type: ignore[misc]
                15,
            )
        self.log_path = self.workdir / f"tilt-{int(time.time() * 1000)}.log"
        out = self.log_path.open("wb")
        cmd = [
            self.binary,
            "up",
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--legacy=false",
            "--stream=false",
            "--web-mode=prod",
            *(["--", *self.args] if self.args else []),
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=self.project, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )
        out.close()
        wait_until("tilt answering /api/view", self._answers, START_TIMEOUT_S)

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"tilt exited with {self.proc.returncode}: {self.tail_log()}")
        try:
            self.api_view()
        except OSError:
            return False
        return True

    def tail_log(self, chars: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    # ------------------------------------------------------------------ Tilt's own answers

    def api_view(self) -> dict[str, object]:
        req = urllib.request.Request(
            self.base_url + "/api/view", headers={"X-Tilt-Token": self.token}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = json.loads(resp.read())
        assert isinstance(data, dict)
        return data

    def cli(self, *args: str, check: bool = True, timeout_s: float = 30, port: bool = True) -> str:
        done = subprocess.run(
            [self.binary, *args, *(["--port", str(self.port)] if port else [])],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"tilt {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def uiresources(self) -> dict[str, dict[str, object]]:
        items = json.loads(self.cli("get", "uiresources", "-o", "json"))["items"]
        return {i["metadata"]["name"]: i for i in items}

    def uiresource(self, name: str) -> dict[str, object]:
        return dict(json.loads(self.cli("get", "uiresource", name, "-o", "json")))

    def logs(self, *args: str) -> list[str]:
        """``tilt logs …`` lines without Tilt's ``<resource> │ `` prefix."""
        out = []
        for line in self.cli("logs", *args).splitlines():
            out.append(line.split("│ ", 1)[1] if "│ " in line else line)
        return out

    # ------------------------------------------------------------------ ending it

    def descendants(self) -> list[int]:
        return [] if self.proc is None else _children_of(self.proc.pid)

    def sigterm(self, timeout_s: float = 30) -> None:
        if self.proc is None:
            return
        kids = self.descendants()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._end_pids(kids)
        self.proc = None

    def kill9(self) -> list[int]:
        """``kill -9`` Tilt; returns the pids of its children that outlived it (then ends
        them, by pid)."""
        assert self.proc is not None
        kids = self.descendants()
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        survivors = [p for p in kids if _alive(p)]
        self._end_pids(survivors)
        return survivors

    def _end_pids(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        wait_until("tilt's children gone", lambda: not any(_alive(p) for p in pids), 10)

    def stop(self) -> None:
        if self.proc is not None:
            self.sigterm()


def find_tilt() -> str | None:
    """``TILT_BIN`` if it names an executable, else ``None`` (never a guess on PATH)."""
    path = os.environ.get("TILT_BIN", "").strip()
    if path and os.access(path, os.X_OK):
        return path
    return None


def demo_files(fixtures: Path) -> tuple[str, dict[str, str]]:
    return (fixtures / "Tiltfile.demo").read_text(), {"spam.py": (fixtures / "spam.py").read_text()}


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)
