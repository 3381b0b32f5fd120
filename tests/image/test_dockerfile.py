"""The Dockerfile and .dockerignore, read without Docker (tests/image/check_image.sh builds and
runs the image): what the issue asks of them, and that they agree with the package."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import bridge

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = re.findall(r"^([A-Z]+)\s+((?:[^\n]*\\\n)*[^\n]*)", DOCKERFILE, re.MULTILINE)


def instructions(name: str) -> list[str]:
    return [args for instr, args in INSTRUCTIONS if instr == name]


def test_no_syntax_line_so_the_build_pulls_no_frontend() -> None:
    assert not re.search(r"^#\s*syntax\s*=", DOCKERFILE, re.MULTILINE)


def test_base_image_is_a_build_arg_defaulting_to_python_alpine() -> None:
    assert "ARG BASE_IMAGE=python:3.13-alpine" in DOCKERFILE
    assert instructions("FROM") == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]


def test_version_label_default_matches_the_package() -> None:
    """Bump ARG VERSION in the Dockerfile with bridge.__version__ (the build script passes it)."""
    assert f"ARG VERSION={bridge.__version__}\n" in DOCKERFILE
    labels = " ".join(instructions("LABEL"))
    for key in ("version", "source", "revision", "licenses", "title"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_exec_form_entrypoint_healthcheck_and_non_root_user() -> None:
    (entrypoint,) = instructions("ENTRYPOINT")
    assert json.loads(entrypoint) == ["/usr/local/bin/entrypoint.sh"]
    (user,) = instructions("USER")
    uid, gid = user.split(":")
    assert int(uid) > 0
    assert int(gid) > 0
    (health,) = instructions("HEALTHCHECK")
    assert json.loads(health.split("CMD", 1)[1]) == ["/usr/local/bin/entrypoint.sh", "healthcheck"]


def test_final_stage_copies_only_the_venv_and_the_entrypoint() -> None:
    final = DOCKERFILE.split("-- final stage")[1]
    copies = re.findall(r"^COPY\s+(.*)$", final, re.MULTILINE)
    assert copies == [
        "--from=build /opt/bridge /opt/bridge",
        "entrypoint.sh /usr/local/bin/entrypoint.sh",
    ]
    assert "apk add" not in final
    assert "apt-get" not in final


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"

    def sent(path: str) -> bool:
        keep = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            nested = pattern.startswith("**/") and fnmatch.fnmatch(path, "*" + pattern[2:])
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/") or nested:
                keep = negate
        return keep

    needed = [
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "entrypoint.sh",
        "bridge/cli.py",
        "bridge/data/recordings/01-startup.jsonl.gz",
    ]
    private = [
        ".git/config",
        ".venv/bin/python",
        "tests/test_stdio.py",
        "bench/run.py",
        "bridge/__pycache__/cli.cpython-313.pyc",
        "examples/compose/compose.yaml",
    ]
    assert [p for p in needed if not sent(p)] == []
    assert [p for p in private if sent(p)] == []


def test_every_pip_install_takes_the_lock() -> None:
    """The image installs the versions CI tested: each `pip install` is constrained by
    constraints.txt, copied before the first one, and the build uses the pinned setuptools."""
    build = DOCKERFILE.split("-- final stage")[0]
    runs = " ".join(instructions("RUN"))
    installs = re.findall(r"pip install [^&;]*", runs)
    assert len(installs) >= 2
    assert [i for i in installs if "-c constraints.txt" not in i] == []
    assert build.index("COPY constraints.txt") < build.index("pip install")
    assert re.search(r"pip wheel [^&;]*--no-build-isolation", runs)


def test_entrypoint_is_executable_posix_sh() -> None:
    script = ROOT / "entrypoint.sh"
    assert script.stat().st_mode & 0o111
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "\nset -eu\n" in text
    assert 'exec "$bridge" "$@"' in text


def test_bytecode_modes_default_to_zip_and_the_stages_share_the_choice() -> None:
    """BYTECODE is declared once before the first FROM (so both stages see the same value) and
    each stage redeclares it; the build stage handles every mode docs/docker.md names."""
    assert "\nARG BYTECODE=zip\n" in DOCKERFILE.split("FROM ", 1)[0]
    build, final = DOCKERFILE.split("-- final stage")
    assert "\nARG BYTECODE\n" in build
    assert "\nARG BYTECODE\n" in final
    for mode in ("none) exit 0", "pycache) $compile", "sourceless | zip) ;;"):
        assert mode in build
    docs = (ROOT / "docs" / "docker.md").read_text().split("### Bytecode")[1].split("###")[0]
    for mode in ("zip", "sourceless", "pycache", "none"):
        assert f"`{mode}`" in docs
