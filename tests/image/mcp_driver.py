"""Drive the built image the way MCP clients do, against the fake Tilt on the host network.

Run by ``tests/image/check_image.sh`` (which builds the image and owns the Docker daemon)::

    python tests/image/mcp_driver.py --image tilt-mcp-bridge:check [--docker /usr/bin/docker]

The containers, one after the other:

1. **stdio**: ``docker run -i --rm --network host`` with ``~/.tilt-dev`` mounted read-only
   (a 0600 token owned by the uid the container runs as, ``--user``). MCP handshake, then
   every tool, every resource (and template), every prompt, a completion and a subscription
   whose update must arrive. Every byte on stdout must be a JSON-RPC message. SIGTERM
   (``docker kill -s TERM``) must end the container, exit code 0, within 2 s.
2. **HTTP**: a detached container with ``BRIDGE_TRANSPORT=http``, ``TILT_TOKEN``,
   ``BRIDGE_READ_ONLY=1`` and Tilt reached as ``host.docker.internal`` (``--add-host``):
   the image's HEALTHCHECK must report healthy, ``/healthz`` must say Tilt is connected,
   MCP over Streamable HTTP must answer, write tools must be absent, and ``docker stop``
   must take under 2 s.
3. **entrypoint**: an unreadable token and a bad port are refused with exit 2, a clear
   message on stderr and nothing on stdout.
4. **contents**: inside the image, no pip, no tests, a non-root user; and no module that a
   start imports is compiled at start (each comes from bytecode: a ``.pyc`` beside or in
   place of its source, or a zip), unless ``--allow-compile`` (a ``BYTECODE=none`` build).
5. **demo** and **status**: ``--demo`` serves with ``--network none``; ``status`` prints the
   resource table (exit 0) and fails (non-zero, nothing on stdout) with no Tilt listening.

6. **start time** (``--starts N``, default 5): ``docker run -i --rm`` → ``initialize``
   answered, against the bridge's own start outside the container (this Python, ``-m
   bridge``), alternated so both see the same machine load; medians after one untimed start
   of each; and the engine's own floor (``docker run --rm`` of ``/bin/true`` in the image).
   Reported, never failed on: timings depend on the machine. ``--only-starts`` runs only this.

Prints one ``image-check:`` line per measurement and exits non-zero on the first failure.
With ``IMPORTTIME=1`` in the environment the stdio container runs with
``PYTHONPROFILEIMPORTTIME=1`` and ``--keep DIR`` saves its stderr: the list of every module
imported during a full session (how the Dockerfile's PRUNE list was checked).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from bridge.testing import FakeTilt

PROTOCOL = "2025-11-25"
STOP_BUDGET_S = 2.0
CONTAINER_UID = 4242  # the "host user" that owns the token file in the stdio run

# How to call each tool against the fake Tilt's demo project. A tool the bridge adds later
# without required arguments is called with {}; one with required arguments fails the check
# until it is listed here, so no tool goes unexercised.
TOOL_CALLS: dict[str, dict[str, Any]] = {
    "get_status": {},
    "list_resources": {},
    "describe_resource": {"name": "ok"},
    "get_logs": {"resource": "ok", "tail": 20},
    "wait_for": {"resources": ["ok"], "condition": "ready", "timeout_s": 30},
    "get_changes": {},
    "list_buttons": {},
    "trigger": {"resource": "manual", "wait": True, "timeout_s": 60},
    "disable": {"resources": ["dep-c"]},
    "enable": {"resources": ["dep-c"]},
    "click_button": {"name": "ok-hello"},
    "set_trigger_mode": {"resource": "manual", "mode": "manual"},
    "set_tiltfile_args": {"args": []},
}
PROMPT_ARGS = {"resource": "ok", "lines": "20"}
TEMPLATE_NAME = "ok"


class CheckFailed(Exception):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def report(key: str, value: object) -> None:
    print(f"image-check: {key}: {value}", flush=True)


# ------------------------------------------------------------------------------ fake Tilt


@contextmanager
def fake_tilt() -> Iterator[FakeTilt]:
    """A FakeTilt on 127.0.0.1 served from its own event loop in a background thread."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        async with FakeTilt() as tilt:
            box["tilt"] = tilt
            box["stop"] = anyio.Event()
            box["token"] = anyio.lowlevel.current_token()
            ready.set()
            await box["stop"].wait()

    def run() -> None:
        try:
            anyio.run(main, backend="asyncio")
        except BaseException as exc:  # surfaced by the waiting thread
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="fake-tilt", daemon=True)
    thread.start()
    check(ready.wait(30), "the fake Tilt did not start within 30 s")
    if "error" in box:
        raise CheckFailed(f"the fake Tilt failed to start: {box['error']!r}")
    try:
        yield box["tilt"]
    finally:
        anyio.from_thread.run_sync(box["stop"].set, token=box["token"])
        thread.join(15)


# ------------------------------------------------------------------------ docker helpers


class Docker:
    def __init__(self, binary: str, image: str, workdir: Path) -> None:
        self.binary = binary
        self.image = image
        self.workdir = workdir

    def __call__(
        self, *args: str, check_rc: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check_rc and proc.returncode != 0:
            raise CheckFailed(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def remove(self, name: str) -> None:
        self("rm", "-f", name, check_rc=False)


def wait_until(what: str, probe: Callable[[], bool], timeout: float, every: float = 0.2) -> float:
    """Poll ``probe`` until it is true; returns the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if probe():
            return time.monotonic() - t0
        time.sleep(every)
    raise CheckFailed(f"{what}: not within {timeout} s")


# ------------------------------------------------------------------------- stdio session


class StdioSession:
    """JSON-RPC over a ``docker run -i`` process; every stdout line must be a message."""

    def __init__(
        self, argv: list[str], stderr_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.stderr_file = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file, env=env
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        self.stdout_lines = 0
        self.stdout_bytes = 0
        self.violations: list[bytes] = []
        self.next_id = 1
        self.reader = threading.Thread(target=self._read, name="stdout-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.stdout_lines += 1
            self.stdout_bytes += len(raw)
            try:
                msg = json.loads(raw)
                ok = isinstance(msg, dict) and msg.get("jsonrpc") == "2.0"
            except ValueError:
                ok = False
            if not ok:
                self.violations.append(raw[:200])
                continue
            self.messages.put(msg)

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", **msg}).encode() + b"\n")
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self.send({"method": method, **({"params": params} if params is not None else {})})

    def request(self, method: str, params: dict[str, Any], timeout: float = 90) -> Any:
        rid = self.next_id
        self.next_id += 1
        self.send({"id": rid, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(f"{method}: no answer within {timeout} s")
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if "id" not in msg:
                self.notifications.append(msg)
                continue
            if msg["id"] != rid:
                continue  # a server-to-client request; none are expected
            if "error" in msg:
                raise CheckFailed(f"{method} {json.dumps(params)}: error {msg['error']}")
            return msg["result"]

    def wait_notification(self, method: str, uri: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for n in self.notifications:
                if n.get("method") == method and n.get("params", {}).get("uri") == uri:
                    return
            left = deadline - time.monotonic()
            check(left > 0, f"no {method} for {uri} within {timeout} s")
            try:
                msg = self.messages.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if "id" not in msg:
                self.notifications.append(msg)

    def close(self) -> None:
        self.stderr_file.close()


def call_tool(session: StdioSession, name: str, args: dict[str, Any]) -> dict[str, Any]:
    result = session.request("tools/call", {"name": name, "arguments": args})
    text = " ".join(c.get("text", "") for c in result.get("content", []))
    check(not result.get("isError"), f"tool {name} {json.dumps(args)} failed: {text[:300]}")
    return dict(result.get("structuredContent") or {})


def exercise_everything(session: StdioSession) -> dict[str, int]:
    """Handshake, then every tool, resource, template, prompt; a completion; a subscription."""
    init = session.request(
        "initialize",
        {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "image-check", "version": "1"},
        },
    )
    check(init["serverInfo"]["name"] == "tilt-mcp-bridge", f"serverInfo: {init['serverInfo']}")
    check(
        init["capabilities"].get("resources", {}).get("subscribe") is True,
        f"resources.subscribe not advertised: {init['capabilities']}",
    )
    session.notify("notifications/initialized")

    def connected() -> bool:
        status = call_tool(session, "get_status", {})
        return bool(status.get("connection", {}).get("state") == "connected")

    took = wait_until("the bridge connected to the fake Tilt", connected, timeout=60, every=0.5)
    report("stdio.tilt_connected_after_s", f"{took:.1f}")

    tools = [t["name"] for t in session.request("tools/list", {})["tools"]]
    schemas = {t["name"]: t for t in session.request("tools/list", {})["tools"]}
    for name in tools:
        if name in TOOL_CALLS:
            args = TOOL_CALLS[name]
        else:
            required = schemas[name].get("inputSchema", {}).get("required") or []
            check(
                not required,
                f"tool {name} needs {required}: add how to call it to TOOL_CALLS in {__file__}",
            )
            args = {}
        call_tool(session, name, args)
    read_only_tools = [
        n for n in tools if schemas[n].get("annotations", {}).get("readOnlyHint") is True
    ]

    resources = session.request("resources/list", {})["resources"]
    for res in resources:
        contents = session.request("resources/read", {"uri": res["uri"]})["contents"]
        check(contents and contents[0].get("text"), f"resource {res['uri']} is empty")
    templates = session.request("resources/templates/list", {})["resourceTemplates"]
    # a Tilt's port, for the instance-qualified templates (tilt://instances/{port}/...)
    ports = [m.group(1) for r in resources if (m := re.match(r"tilt://instances/(\d+)/", r["uri"]))]
    check(bool(ports), "resources/list names no tilt://instances/{port}/status")
    for tpl in templates:
        uri = tpl["uriTemplate"].replace("{name}", TEMPLATE_NAME).replace("{port}", ports[0])
        contents = session.request("resources/read", {"uri": uri})["contents"]
        check(contents and contents[0].get("text"), f"template {uri} is empty")

    prompts = session.request("prompts/list", {})["prompts"]
    for prompt in prompts:
        args = {a["name"]: PROMPT_ARGS[a["name"]] for a in prompt.get("arguments", [])}
        got = session.request("prompts/get", {"name": prompt["name"], "arguments": args})
        check(got.get("messages"), f"prompt {prompt['name']} has no messages")

    if templates:
        done = session.request(
            "completion/complete",
            {
                "ref": {"type": "ref/resource", "uri": "tilt://resources/{name}"},
                "argument": {"name": "name", "value": "dep"},
            },
        )
        values = done["completion"]["values"]
        check(values and all(v.startswith("dep") for v in values), f"completion: {values}")

    # A subscription's update must reach the client through the container's stdout.
    uri = "tilt://resources/manual"
    session.request("resources/subscribe", {"uri": uri})
    call_tool(session, "trigger", {"resource": "manual"})
    session.wait_notification("notifications/resources/updated", uri, timeout=30)
    session.request("resources/unsubscribe", {"uri": uri})

    return {
        "tools": len(tools),
        "read_only_tools": len(read_only_tools),
        "resources": len(resources),
        "templates": len(templates),
        "prompts": len(prompts),
    }


def stdio_run(docker: Docker, tilt: FakeTilt, scratch: Path) -> None:
    # ~/.tilt-dev as a user has it: a 0600 token owned by that user, mounted read-only.
    dev_dir = scratch / "tilt-dev"
    dev_dir.mkdir()
    token_file = dev_dir / "token"
    token_file.write_text(f"{tilt.token}\n")
    token_file.chmod(0o600)
    os.chown(token_file, CONTAINER_UID, CONTAINER_UID)
    dev_dir.chmod(0o755)

    name = f"bridge-check-stdio-{uuid.uuid4().hex[:8]}"
    argv = [
        docker.binary, "run", "-i", "--rm", "--name", name,
        "--network", "host",
        "--user", f"{CONTAINER_UID}:{CONTAINER_UID}",
        "-v", f"{dev_dir}:/home/bridge/.tilt-dev:ro",
        "-e", f"TILT_PORT={tilt.port}",
        "-e", "BRIDGE_LOG_FORMAT=json",
        *(["-e", "PYTHONPROFILEIMPORTTIME=1"] if os.environ.get("IMPORTTIME") else []),
        docker.image,
    ]  # fmt: skip
    t0 = time.monotonic()
    session = StdioSession(argv, scratch / "stdio.stderr")
    try:
        counts = exercise_everything(session)
        report("stdio.first_session_s", f"{time.monotonic() - t0:.1f}")
        for key, value in counts.items():
            report(f"stdio.{key}", value)

        # The daemon's own event stream timestamps the container's death ("die"); the
        # `docker run --rm` client returns later, after the daemon has removed the container.
        events = subprocess.Popen(
            [docker.binary, "events", "--filter", f"container={name}",
             "--format", "{{.Status}} {{.TimeNano}}"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(0.3)  # let the event subscription start before the signal
            t_term_ns = time.time_ns()
            t_term = time.monotonic()
            docker("kill", "--signal", "TERM", name)
            try:
                code = session.proc.wait(timeout=10)
            except subprocess.TimeoutExpired as exc:
                raise CheckFailed("the container did not stop within 10 s of SIGTERM") from exc
            client_s = time.monotonic() - t_term
            died_ns = None
            assert events.stdout is not None
            deadline = time.monotonic() + 10
            while died_ns is None and time.monotonic() < deadline:
                status, _, stamp = events.stdout.readline().strip().partition(" ")
                if status == "die":
                    died_ns = int(stamp)
        finally:
            events.kill()
            events.wait()
        check(died_ns is not None, "no 'die' event for the stdio container")
        assert died_ns is not None
        stop_s = (died_ns - t_term_ns) / 1e9
        session.reader.join(5)
        report("stdio.sigterm_to_exit_s", f"{stop_s:.2f}")
        report("stdio.sigterm_to_docker_run_return_s", f"{client_s:.2f} (includes --rm removal)")
        report("stdio.exit_code", code)
        check(code == 0, f"exit code after SIGTERM: {code}")
        check(stop_s < STOP_BUDGET_S, f"SIGTERM took {stop_s:.2f} s (budget {STOP_BUDGET_S} s)")
        report("stdio.stdout_lines", session.stdout_lines)
        check(not session.violations, f"non-protocol bytes on stdout: {session.violations[:3]}")
        report("stdio.stdout_only_jsonrpc", "yes")
    finally:
        if session.proc.poll() is None:
            docker.remove(name)
            session.proc.kill()
        session.close()
    stderr = (scratch / "stdio.stderr").read_text(errors="replace")
    check(tilt.token is None or tilt.token not in stderr, "Tilt's token appeared in the logs")
    events = [json.loads(x)["event"] for x in stderr.splitlines() if x.startswith("{")]
    check("bridge.starting" in events, f"no bridge.starting in the stderr log: {stderr[:500]}")


# -------------------------------------------------------------------------- HTTP session


def http_post(url: str, body: dict[str, Any], session_id: str | None) -> tuple[Any, str | None]:
    """One JSON-RPC request over Streamable HTTP; the reply may come as JSON or SSE."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": PROTOCOL,
    }
    if session_id:
        headers["Mcp-Session-Id"] = session_id
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as reply:
        sid = reply.headers.get("mcp-session-id") or session_id
        if reply.status == 202:
            return None, sid
        raw = reply.read().decode()
        if "text/event-stream" in reply.headers.get("content-type", ""):
            for line in raw.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    msg = json.loads(line[5:])
                    if msg.get("id") == body.get("id"):
                        return msg, sid
            raise CheckFailed(f"no reply to {body['method']} in the event stream: {raw[:300]}")
        return json.loads(raw), sid


def http_run(docker: Docker, tilt: FakeTilt, port: int) -> None:
    name = f"bridge-check-http-{uuid.uuid4().hex[:8]}"
    docker(
        "run", "-d", "--name", name,
        "--network", "host",
        "--health-interval", "1s", "--health-timeout", "5s",
        # Tilt by a name other than localhost, as with Docker Desktop's host.docker.internal:
        # the Host header differs and the bridge sends no Origin, so Tilt's check passes.
        "--add-host", "host.docker.internal:127.0.0.1",
        "-e", "TILT_HOST=host.docker.internal",
        "-e", f"TILT_PORT={tilt.port}",
        "-e", f"TILT_TOKEN={tilt.token}",
        "-e", "BRIDGE_TRANSPORT=http",
        "-e", f"BRIDGE_HTTP_PORT={port}",
        "-e", "BRIDGE_READ_ONLY=1",
        docker.image,
    )  # fmt: skip
    try:
        t0 = time.monotonic()

        def healthy() -> bool:
            state = docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()
            running = docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            if running != "true":
                logs = docker("logs", name, check_rc=False)
                raise CheckFailed(f"the HTTP container exited: {logs.stderr[-800:]}")
            return state == "healthy"

        wait_until("HEALTHCHECK healthy", healthy, timeout=90, every=0.5)
        report("http.healthy_after_s", f"{time.monotonic() - t0:.1f}")

        base = f"http://127.0.0.1:{port}"

        def tilt_connected() -> bool:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as reply:
                health = json.loads(reply.read())
            check(health.get("status") == "ok", f"/healthz: {health}")
            return bool(health.get("tilt") == "connected")

        wait_until("/healthz reports Tilt connected", tilt_connected, timeout=30)
        report("http.healthz", "ok, tilt connected")

        url = f"{base}/mcp"
        init, sid = http_post(
            url,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "image-check", "version": "1"},
                },
            },
            None,
        )
        check(init and init["result"]["serverInfo"]["name"] == "tilt-mcp-bridge", f"{init}")
        http_post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
        tools, _ = http_post(url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, sid)
        names = [t["name"] for t in tools["result"]["tools"]]
        check("trigger" not in names, f"BRIDGE_READ_ONLY=1 still lists write tools: {names}")
        status, _ = http_post(
            url,
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "get_status", "arguments": {}},
            },
            sid,
        )
        check(not status["result"].get("isError"), f"get_status over HTTP: {status}")
        report("http.mcp", f"ok, {len(names)} read-only tools")

        t_stop = time.monotonic()
        docker("stop", "--time", "10", name)
        stop_s = time.monotonic() - t_stop
        code = docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
        report("http.docker_stop_s", f"{stop_s:.2f}")
        logs = docker("logs", name, check_rc=False).stderr
        # Reported, not failed: the bridge's own shutdown output, not the image's concern.
        report("http.tracebacks_in_log_after_stop", logs.count("Traceback"))
        check(code == "0", f"HTTP container exit code after docker stop: {code}")
        check(stop_s < STOP_BUDGET_S, f"docker stop took {stop_s:.2f} s")
    finally:
        docker.remove(name)


# ------------------------------------------------------------------ demo and status


def demo_run(docker: Docker, scratch: Path) -> None:
    """``--demo`` needs no Tilt and no network: the embedded fake Tilt serves the session."""
    name = f"bridge-check-demo-{uuid.uuid4().hex[:8]}"
    argv = [docker.binary, "run", "-i", "--rm", "--name", name, "--network", "none",
            docker.image, "--demo"]  # fmt: skip
    session = StdioSession(argv, scratch / "demo.stderr")
    try:
        session.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "image-check", "version": "1"},
            },
        )
        session.notify("notifications/initialized")

        def connected() -> bool:
            status = call_tool(session, "get_status", {})
            return bool(status.get("connection", {}).get("state") == "connected")

        wait_until("--demo connected to its embedded Tilt", connected, timeout=60, every=0.5)
        rows = call_tool(session, "list_resources", {}).get("resources", [])
        check(rows, "--demo lists no resources")
        assert session.proc.stdin is not None
        session.proc.stdin.close()  # a client closing stdin ends the session
        code = session.proc.wait(timeout=20)
        session.reader.join(5)
        check(code == 0, f"--demo exit code after stdin closed: {code}")
        check(not session.violations, f"non-protocol bytes on stdout: {session.violations[:3]}")
        report("demo", f"--network none, {len(rows)} resources, exit 0 when stdin closes")
    finally:
        if session.proc.poll() is None:
            docker.remove(name)
            session.proc.kill()
        session.close()


def status_run(docker: Docker, tilt: FakeTilt) -> None:
    """``status`` prints the resource table and exits 0; non-zero when Tilt is not there."""
    ok = docker(
        "run", "--rm", "--network", "host",
        "-e", f"TILT_PORT={tilt.port}", "-e", f"TILT_TOKEN={tilt.token}",
        docker.image, "status",
        check_rc=False,
    )  # fmt: skip
    check(ok.returncode == 0, f"status: exit {ok.returncode}: {ok.stderr[-500:]}")
    check("RESOURCE" in ok.stdout and "\nok " in ok.stdout, f"status table: {ok.stdout[:500]}")
    down = docker(
        "run", "--rm", "--network", "host",
        "-e", f"TILT_PORT={free_port()}", "-e", "TILT_TOKEN=wrong",
        docker.image, "status",
        check_rc=False,
    )  # fmt: skip
    check(down.returncode != 0, "status exited 0 with no Tilt listening")
    check(down.stdout == "", f"status wrote to stdout on failure: {down.stdout!r}")
    report("status", f"table of {ok.stdout.count(chr(10))} lines; exit {down.returncode} "
           "with no Tilt")  # fmt: skip


# --------------------------------------------------------------------- entrypoint + files


def entrypoint_refusals(docker: Docker, scratch: Path) -> None:
    """A token the container user cannot read, and a bad port: exit 2, stderr, no stdout."""
    dev_dir = scratch / "root-only"
    dev_dir.mkdir()
    (dev_dir / "token").write_text("root-only-token\n")
    (dev_dir / "token").chmod(0o600)  # owned by root, the container runs as 10001
    proc = docker(
        "run", "--rm", "-v", f"{dev_dir}:/home/bridge/.tilt-dev:ro",
        "-e", "TILT_PORT=notaport",
        docker.image,
        check_rc=False,
    )  # fmt: skip
    check(proc.returncode == 2, f"bad TILT_PORT: exit {proc.returncode}, {proc.stderr}")
    check(proc.stdout == "", f"the entrypoint wrote to stdout: {proc.stdout!r}")
    check("TILT_PORT must be a whole number" in proc.stderr, f"stderr: {proc.stderr}")
    proc = docker(
        "run", "--rm", "-v", f"{dev_dir}:/home/bridge/.tilt-dev:ro", docker.image,
        check_rc=False,
    )  # fmt: skip
    check(proc.returncode == 2, f"unreadable token: exit {proc.returncode}, {proc.stderr}")
    check(proc.stdout == "", f"the entrypoint wrote to stdout: {proc.stdout!r}")
    check("cannot read Tilt's token" in proc.stderr, f"stderr: {proc.stderr}")
    check("--user" in proc.stderr, f"no hint about --user: {proc.stderr}")
    report("entrypoint.refusals", "bad TILT_PORT and unreadable token: exit 2, stderr only")


CONTENTS_PROBE = r"""
import importlib.util, json, os, sys
site = [p for p in sys.path if p.endswith("site-packages") and p.startswith("/opt/bridge")]
found = {"pycache": 0, "tests": [], "pyc": 0, "py": 0, "zips": [], "files": 0}
for root, dirs, files in os.walk("/opt/bridge"):
    for d in dirs:
        found["pycache"] += d == "__pycache__"
        if d in ("tests", "test"):
            found["tests"].append(os.path.join(root, d))
    found["pyc"] += sum(f.endswith(".pyc") for f in files)
    found["py"] += sum(f.endswith(".py") for f in files)
    found["files"] += len(files)
found["pip"] = importlib.util.find_spec("pip") is not None
found["setuptools"] = importlib.util.find_spec("setuptools") is not None
found["uid"] = os.getuid()
found["site"] = site
found["python"] = sys.version.split()[0]
import zipfile
found["zips"] = []
for path in sys.path:
    if path.endswith(".zip") and os.path.isfile(path):
        with zipfile.ZipFile(path) as archive:
            pyc = [i for i in archive.infolist() if i.filename.endswith(".pyc")]
            raw = sum(i.file_size for i in pyc) / 1e6
        found["zips"].append(f"{path} ({os.path.getsize(path) / 1e6:.1f} MB: "
                             f"{len(pyc)} .pyc, {raw:.1f} MB inflated)")
# What serve imports before the first request (bench/startup.py's SERVE_IMPORTS): a module
# whose spec names a .py source with no bytecode file beside it is compiled at every start.
import bridge.app, bridge.mcp.app, bridge.mcp.server
compiled = []
for name, module in sorted(sys.modules.items()):
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) or ""
    if origin.endswith(".py") and not (spec.cached and os.path.exists(spec.cached)):
        compiled.append(name)
found["modules"] = len(sys.modules)
found["compiled_at_start"] = compiled
print(json.dumps(found))
"""


def contents(docker: Docker, allow_compile: bool) -> None:
    proc = docker(
        "run", "--rm", "--entrypoint", "/opt/bridge/bin/python", docker.image,
        "-c", CONTENTS_PROBE,
    )  # fmt: skip
    found = json.loads(proc.stdout)
    check(not found["pip"], "pip is importable in the final image")
    check(not found["setuptools"], "setuptools is importable in the final image")
    check(not found["tests"], f"test folders in the image: {found['tests'][:5]}")
    check(found["uid"] != 0, "the image runs as root")
    compiled = found["compiled_at_start"]
    report("contents", f"uid {found['uid']}, python {found['python']}, {found['files']} files "
           f"({found['py']} .py, {found['pyc']} .pyc, {found['pycache']} __pycache__), "
           f"zips on sys.path: {found['zips'] or 'none'}; no pip/setuptools/tests")  # fmt: skip
    example = f" (e.g. {', '.join(compiled[:4])})" if compiled else ""
    report("bytecode", f"{len(compiled)} of the {found['modules']} modules serve imports "
           f"are compiled at each start{example}")  # fmt: skip
    check(allow_compile or not compiled, f"modules without bytecode in the image: {compiled[:10]}")
    inspect = json.loads(docker("image", "inspect", docker.image).stdout)[0]["Config"]
    check(inspect["Entrypoint"] == ["/usr/local/bin/entrypoint.sh"], f"{inspect['Entrypoint']}")
    labels = inspect.get("Labels") or {}
    for key in ("org.opencontainers.image.version", "org.opencontainers.image.source"):
        check(labels.get(key), f"label {key} missing: {labels}")
    report("labels", ", ".join(f"{k.rsplit('.', 1)[1]}={v}" for k, v in sorted(labels.items())))


# --------------------------------------------------------------------------- start time


def time_to_initialize(argv: list[str], stderr_path: Path, env: dict[str, str] | None) -> float:
    """Spawn → the ``initialize`` answer, in seconds; then stdin is closed and the process
    must end by itself (the container removed, for ``docker run --rm``)."""
    t0 = time.monotonic()
    session = StdioSession(argv, stderr_path, env)
    try:
        session.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "image-check", "version": "1"},
            },
            timeout=120,
        )
        took = time.monotonic() - t0
        assert session.proc.stdin is not None
        session.proc.stdin.close()
        session.proc.wait(timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"{argv[0]}: did not exit within 30 s of its stdin closing") from exc
    else:
        return took
    finally:
        if session.proc.poll() is None:
            session.proc.kill()
        session.close()


def start_times(docker: Docker, starts: int, scratch: Path) -> dict[str, float]:
    """Container start vs the bridge's own start here, alternated, medians (seconds)."""
    port = free_port()  # closed: the watcher's first attempt fails fast, start-up never waits
    name = f"bridge-check-start-{uuid.uuid4().hex[:8]}"
    inside = [
        docker.binary, "run", "-i", "--rm", "--name", name, "--network", "host",
        "-e", "TILT_HOST=127.0.0.1", "-e", f"TILT_PORT={port}", "-e", "TILT_TOKEN=unused",
        "-e", "BRIDGE_LOG_FORMAT=json", docker.image,
    ]  # fmt: skip
    outside = [sys.executable, "-m", "bridge", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "TILT_TOKEN": "unused", "BRIDGE_LOG_FORMAT": "json"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # outside runs as installed: with its bytecode
    floor = [docker.binary, "run", "--rm", "--network", "host", "--entrypoint", "/bin/true",
             docker.image]  # fmt: skip
    samples: dict[str, list[float]] = {"container": [], "outside": [], "engine_floor": []}
    for i in range(starts + 1):  # the first round is untimed (bytecode written outside)
        got = {
            "container": time_to_initialize(inside, scratch / "start-inside.stderr", None),
            "outside": time_to_initialize(outside, scratch / "start-outside.stderr", env),
        }
        t0 = time.monotonic()
        docker(*floor[1:])
        got["engine_floor"] = time.monotonic() - t0
        if i:
            for key, value in got.items():
                samples[key].append(value)
    medians = {key: statistics.median(values) for key, values in samples.items()}
    for key in ("container", "outside", "engine_floor"):
        values = sorted(samples[key])
        report(f"start.{key}_s", f"median {medians[key]:.2f} of {starts} "
               f"({', '.join(f'{v:.2f}' for v in values)})")  # fmt: skip
    above = medians["container"] - medians["outside"]
    report("start.container_above_outside_s", f"{above:+.2f} (target ≤ +0.50, not checked)")
    return medians


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--docker", default=shutil.which("docker") or "docker")
    parser.add_argument("--keep", help="copy the containers' stderr logs to this folder")
    parser.add_argument("--starts", type=int, default=5, help="timed starts of each kind")
    parser.add_argument("--only-starts", action="store_true", help="only the start times")
    parser.add_argument(
        "--allow-compile", action="store_true", help="an image built with BYTECODE=none"
    )
    opts = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bridge-image-check-"))
    scratch.chmod(0o755)
    docker = Docker(opts.docker, opts.image, scratch)
    try:
        if opts.only_starts:
            start_times(docker, opts.starts, scratch)
            return 0
        contents(docker, opts.allow_compile)
        entrypoint_refusals(docker, scratch)
        demo_run(docker, scratch)
        with fake_tilt() as tilt:
            report("fake_tilt", f"127.0.0.1:{tilt.port}")
            stdio_run(docker, tilt, scratch)
            http_run(docker, tilt, free_port())
            status_run(docker, tilt)
        start_times(docker, opts.starts, scratch)
    except CheckFailed as exc:
        print(f"image-check: FAILED: {exc}", file=sys.stderr)
        err = scratch / "stdio.stderr"
        if err.exists():
            print("--- the stdio container's stderr (last 40 lines):", file=sys.stderr)
            print("\n".join(err.read_text().splitlines()[-40:]), file=sys.stderr)
        return 1
    finally:
        if opts.keep:
            for f in scratch.glob("*.stderr"):
                shutil.copy(f, opts.keep)
        shutil.rmtree(scratch, ignore_errors=True)
    report("result", "all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
