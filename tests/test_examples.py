"""Every file in examples/ parses, and every bridge invocation in it passes the real command
line (``bridge.cli.parse_settings``): options, environment variables, values. The Docker
configs' shell snippets are run with a stub ``docker`` to check what they really execute, and
the Python client is run against ``--demo``."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.cli import build_parser, parse_settings
from bridge.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
IMAGE = "tilt-mcp-bridge"
BRIDGE = str(Path(sys.executable).parent / "tilt-mcp-bridge")

MCP_CONFIGS = {
    "claude-code": (".mcp.json", "mcpServers"),
    "vscode": ("mcp.json", "servers"),
    "cursor": ("mcp.json", "mcpServers"),
    "claude-desktop": ("claude_desktop_config.json", "mcpServers"),
}


def known_env() -> set[str]:
    """Every environment variable the bridge documents in its --help."""
    helptext = build_parser({}).format_help()
    names = set(re.findall(r"env\s+([A-Z][A-Z_]+)", helptext))
    names |= set(re.findall(r"\b(TILT_TOKEN|TILT_DEV_DIR)\b", helptext))
    assert {"TILT_HOST", "TILT_PORT", "BRIDGE_TRANSPORT", "TILT_TOKEN", "TILT_DEV_DIR"} <= names
    return names


def dockerfile_value(pattern: str) -> str:
    match = re.search(pattern, (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, pattern
    return match.group(1)


TILT_DEV_DIR = dockerfile_value(r"^\s*TILT_DEV_DIR=(\S+)")
HEALTHCHECK = json.loads(dockerfile_value(r"^\s*CMD (\[.*\"healthcheck\"\])"))


def bridge_settings(args: list[str], env: dict[str, str]) -> Settings:
    unknown = set(env) - known_env()
    assert not unknown, f"not bridge environment variables: {unknown}"
    _, settings = parse_settings(args, env)  # argparse exits on an unknown option
    return settings


@dataclass
class DockerRun:
    flags: set[str] = field(default_factory=set)
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    image: str = ""
    args: list[str] = field(default_factory=list)


DOCKER_BOOL = {"-i", "--interactive", "--rm", "-t", "-d", "--init"}
DOCKER_VALUE = {"-e", "--env", "-v", "--volume", "--network", "--user", "-u", "--name", "-p",
                "--add-host", "--health-interval"}  # fmt: skip


def parse_docker_run(argv: list[str]) -> DockerRun:
    assert argv[:2] == ["docker", "run"], argv
    run = DockerRun()
    rest = argv[2:]
    while rest and rest[0].startswith("-"):
        opt = rest.pop(0)
        if opt in DOCKER_BOOL:
            run.flags.add(opt)
        elif opt in DOCKER_VALUE:
            value = rest.pop(0)
            if opt in ("-e", "--env"):
                key, _, val = value.partition("=")
                run.env[key] = val
            elif opt in ("-v", "--volume"):
                run.volumes.append(value)
            else:
                run.options[opt] = value
        else:
            raise AssertionError(f"docker run option {opt} is not one the examples should need")
    run.image, run.args = rest[0], rest[1:]
    return run


def servers() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for client, (filename, key) in MCP_CONFIGS.items():
        for flavour in ("command", "docker"):
            path = EXAMPLES / client / flavour / filename
            config = json.loads(path.read_text())
            assert set(config) == {key}, f"{path}: top-level key must be {key}"
            for name, server in config[key].items():
                found.append((f"{client}/{flavour}", name, server))
    return found


SERVERS = servers()


def test_every_client_has_both_flavours() -> None:
    assert {where for where, _, _ in SERVERS} == {
        f"{client}/{flavour}" for client in MCP_CONFIGS for flavour in ("command", "docker")
    }


@pytest.mark.parametrize(("where", "name", "server"), SERVERS, ids=[s[0] for s in SERVERS])
def test_mcp_config_runs_the_bridge_with_valid_options(
    where: str, name: str, server: dict[str, Any], tmp_path: Path
) -> None:
    assert name == "tilt"
    if where.startswith("vscode"):
        assert server["type"] == "stdio"
    if server["command"] == "tilt-mcp-bridge":
        settings = bridge_settings(server["args"], server.get("env", {}))
        assert settings.transport == "stdio"
        return
    # Docker, through `sh -c` for $(id -u) and $HOME: run it with a stub docker to see the argv.
    assert server["command"] == "sh"
    assert server["args"][0] == "-c"
    script = server["args"][1]
    assert script.startswith("exec docker run "), "exec: the client's signal must reach docker"
    argv = stub_docker(script, tmp_path)
    run = parse_docker_run(argv)
    assert {"-i", "--rm"} <= run.flags
    assert run.image == IMAGE
    assert run.volumes == [f"{tmp_path}/home/.tilt-dev:{TILT_DEV_DIR}:ro"]
    settings = bridge_settings(run.args, run.env)
    assert settings.transport == "stdio"
    if run.options.get("--network") == "host":
        assert run.options["--user"] == f"{os.getuid()}:{os.getgid()}"
        assert settings.host == "localhost"
    else:  # Docker Desktop
        assert settings.host == "host.docker.internal"


def stub_docker(script: str, tmp: Path) -> list[str]:
    """Run the config's shell line with a `docker` that records its arguments."""
    bindir, home, out = tmp / "bin", tmp / "home", tmp / "argv"
    bindir.mkdir()
    home.mkdir()
    stub = bindir / "docker"
    stub.write_text(f"#!/bin/sh\nprintf '%s\\0' docker \"$@\" > {shlex.quote(str(out))}\n")
    stub.chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(home)}
    subprocess.run(["sh", "-c", script], env=env, check=True, timeout=30)
    return out.read_bytes().decode().split("\0")[:-1]


# ---------------------------------------------------------------------------- compose


COMPOSE = yaml.safe_load((EXAMPLES / "compose" / "compose.yaml").read_text())


def substitute(value: str) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?message} with a test value."""
    return re.sub(r"\$\{(\w+)(?::[-?][^}]*)?\}", lambda m: f"<{m.group(1)}>", value)


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_compose_service_serves_http_with_the_images_healthcheck(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["image"] == IMAGE
    env = {k: substitute(str(v)) for k, v in service["environment"].items()}
    settings = bridge_settings(service.get("command", []), env)
    assert settings.transport == "http"
    assert service["healthcheck"]["test"] == ["CMD", *HEALTHCHECK]
    assert [substitute(v) for v in service["volumes"]] == [f"<HOME>/.tilt-dev:{TILT_DEV_DIR}:ro"]
    if service.get("network_mode") == "host":
        assert settings.http_host == "127.0.0.1"
        assert settings.host == "localhost"
        assert "user" in service
    else:
        assert service["ports"] == [f"127.0.0.1:{settings.http_port}:{settings.http_port}"]
        assert settings.http_token is not None  # required: it listens on 0.0.0.0
        assert settings.host == "host.docker.internal"
        assert service["extra_hosts"] == ["host.docker.internal:host-gateway"]


# --------------------------------------------------------------------------- Tiltfile


def test_tiltfile_local_resource_serves_http_and_probes_healthz() -> None:
    """The Tiltfile is Starlark, whose syntax Python's parser reads."""
    tree = ast.parse((EXAMPLES / "tiltfile" / "Tiltfile").read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "local_resource"
    ]
    assert len(calls) == 1
    kwargs = {kw.arg: kw.value for kw in calls[0].keywords}
    serve_cmd = ast.literal_eval(kwargs["serve_cmd"])
    argv = shlex.split(serve_cmd)
    assert argv[0] == "tilt-mcp-bridge"
    env_node = kwargs["serve_env"]
    assert isinstance(env_node, ast.Dict)
    env = {
        ast.literal_eval(k): "10350" if not isinstance(v, ast.Constant) else v.value
        for k, v in zip(env_node.keys, env_node.values, strict=True)
        if k is not None
    }
    settings = bridge_settings(argv[1:], env)
    assert settings.transport == "http"
    probe = ast.unparse(kwargs["readiness_probe"])
    assert f"port={settings.http_port}" in probe
    assert "path='/healthz'" in probe


# ----------------------------------------------------------------------- Python client


CLIENT = EXAMPLES / "python-client" / "subscribe.py"


def test_python_client_help() -> None:
    out = subprocess.run(
        [sys.executable, str(CLIENT), "--help"], capture_output=True, text=True, check=True
    )
    assert "--url" in out.stdout


@pytest.mark.slow
def test_python_client_prints_updates_from_the_demo() -> None:
    """It starts the bridge over stdio with --demo, subscribes to ticker's logs, and prints
    the new lines of two updates."""
    out = subprocess.run(
        [sys.executable, str(CLIENT), "ticker", "--logs", "--count", "2", "--command", BRIDGE,
         "--", "--demo", "--log-level", "warning"],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "subscribed to tilt://resources/ticker/logs" in out.stderr
    ticks = [line for line in out.stdout.splitlines() if " tick " in line]
    assert len(ticks) >= 2, out.stdout
