"""pyproject.toml, constraints.txt and the code's imports agree.

- every third-party module that ``bridge/`` imports comes from a distribution that
  ``[project].dependencies`` declares (``tests/`` and ``bench/``: the runtime or ``[dev]`` set);
- constraints.txt pins every declared distribution, at a version its declared range admits;
- the SDK trio (fastmcp, mcp, mcp-types) admits only the minor release tested;
- with ``BRIDGE_LOCKED_VENV=1`` (set by .ci/run and .ci/upgrade-deps, which install from the
  lock), every distribution installed in this environment is the version the lock pins.

Modules map to distributions through ``importlib.metadata.packages_distributions()``, so a
dependency must be installed for its import to be checked (it is, in the dev environment).
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SDK = ("fastmcp", "mcp", "mcp-types")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*extras: str) -> dict[str, Requirement]:
    lines = list(PROJECT["dependencies"])
    for extra in extras:
        lines += PROJECT["optional-dependencies"][extra]
    return {canonical(r.name): r for r in map(Requirement, lines)}


def locked() -> dict[str, list[tuple[Version, Marker | None]]]:
    """Each pinned name with its versions (a universal lock may pin one per marker)."""
    pins: dict[str, list[tuple[Version, Marker | None]]] = {}
    for line in LOCK.read_text().splitlines():
        if not line or line[0] in "# -":  # comments, `# via` annotations, options
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
        pins.setdefault(canonical(req.name), []).append((Version(spec.version), req.marker))
    return pins


def imports(folder: Path) -> Iterator[tuple[str, Path]]:
    """Top-level module names of the absolute imports in every .py under folder."""
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name.partition(".")[0], path
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module.partition(".")[0], path


def is_local(module: str, importer: Path) -> bool:
    """The project's own code: a module beside the importer or at the repository's root."""
    return any(
        (where / f"{module}.py").is_file() or (where / module / "__init__.py").is_file()
        for where in (importer.parent, ROOT)
    )


def providers(names: set[str]) -> set[str]:
    """The declared distributions, plus what a declared metapackage (a distribution with no
    modules of its own, such as fastmcp = fastmcp-slim[client,server]) requires outright."""
    out = set(names)
    for name in names:
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        files = dist.files
        if files is None:  # no RECORD: cannot tell
            continue
        if not [f for f in files if f.parts[0] != ".." and ".dist-info" not in f.parts[0]]:
            out |= {canonical(Requirement(r).name) for r in dist.requires or [] if ";" not in r}
    return out


def undeclared(folders: list[str], names: set[str]) -> list[str]:
    known = providers(names)
    distributions = md.packages_distributions()
    problems = []
    for module, path in imports_of(folders):
        if module in sys.stdlib_module_names or module == "__future__" or is_local(module, path):
            continue
        dists = {canonical(d) for d in distributions.get(module, [])}
        if not dists:
            problems.append(f"{path.relative_to(ROOT)}: imports {module}, which is not installed")
        elif not dists & known:
            problems.append(
                f"{path.relative_to(ROOT)}: imports {module} from {', '.join(sorted(dists))},"
                " which pyproject.toml does not declare; add it with a range"
            )
    return sorted(set(problems))


def imports_of(folders: list[str]) -> Iterator[tuple[str, Path]]:
    for folder in folders:
        if (ROOT / folder).is_dir():
            yield from imports(ROOT / folder)


def test_every_distribution_bridge_imports_is_declared() -> None:
    """bridge/ (bridge/testing/ included, module or package) imports only what
    [project].dependencies declares: what fastmcp happens to pull in today may go tomorrow."""
    assert undeclared(["bridge"], set(declared())) == []


def test_tests_and_bench_import_only_the_runtime_and_dev_sets() -> None:
    assert undeclared(["tests", "bench"], set(declared("dev"))) == []


def test_the_scan_sees_an_undeclared_import() -> None:
    """The check itself: uvicorn, imported by bridge/mcp/http.py, fails when not declared."""
    names = set(declared()) - {"uvicorn"}
    assert any("imports uvicorn from uvicorn" in p for p in undeclared(["bridge"], names))


@pytest.mark.parametrize("extras", [(), ("dev",)], ids=["runtime", "dev"])
def test_the_lock_pins_every_declared_dependency_in_its_range(extras: tuple[str, ...]) -> None:
    pins = locked()
    wanted = declared(*extras)
    missing = sorted(n for n in wanted if n not in pins)
    assert missing == [], f"constraints.txt pins none of {missing}: run bash .ci/upgrade-deps"
    outside = sorted(
        f"{name}=={version} (pyproject: {req.specifier})"
        for name, req in wanted.items()
        for version, _ in pins[name]
        if not req.specifier.contains(version, prereleases=True)
    )
    assert outside == [], f"constraints.txt is stale: {outside}; run bash .ci/upgrade-deps"


def test_the_lock_pins_what_builds_and_installs_the_project() -> None:
    """setuptools (the build backend) and pip are pinned, so no step floats to newest."""
    build = {canonical(Requirement(r).name) for r in PYPROJECT["build-system"]["requires"]}
    assert build | {"pip"} <= set(locked())


@pytest.mark.parametrize("name", SDK)
def test_sdk_pins_stop_above_the_locked_minor(name: str) -> None:
    """fastmcp/mcp change provisional API in minor releases: the range ends just above the
    minor the lock pins and CI tests (widen it with bash .ci/upgrade-deps NAME=X.Y)."""
    spec = declared()[name].specifier
    upper = [s for s in spec if s.operator == "<"]
    assert len(upper) == 1, f"{name}: {spec} needs one upper bound '<X.Y'"
    ceiling = Version(upper[0].version)
    assert len(ceiling.release) == 2, f"{name}: {spec}: the upper bound is a minor, X.Y"
    ((version, _),) = locked()[name]
    assert (version.major, version.minor + 1) == ceiling.release, (
        f"{name}: the lock has {version}, the range {spec} admits more than that minor"
    )


@pytest.mark.skipif(
    os.environ.get("BRIDGE_LOCKED_VENV") != "1",
    reason="the venv was not installed from the lock (.ci/run sets BRIDGE_LOCKED_VENV=1)",
)
def test_the_environment_is_exactly_what_the_lock_pins() -> None:
    """Every installed distribution has a pin whose marker holds here, at the installed
    version: a dependency the lock forgot would have floated to the newest release."""
    pins = locked()
    wrong = []
    for dist in md.distributions():
        name = canonical(dist.metadata["Name"])
        if name == canonical(PROJECT["name"]):
            continue
        here = [v for v, marker in pins.get(name, []) if marker is None or marker.evaluate()]
        if here != [Version(dist.version)]:
            wrong.append(f"{name} {dist.version} (lock: {', '.join(map(str, here)) or 'none'})")
    assert sorted(wrong) == []
