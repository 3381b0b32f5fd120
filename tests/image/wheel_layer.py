"""Check that every dependency installs from wheels for a platform, and estimate the size
the image's /opt/bridge layer would have there, with the Dockerfile's own pruning and strip.

Alpine images cannot be built on machines without an Alpine mirror, so the musl figure is
computed from the real musllinux wheels::

    python tests/image/wheel_layer.py --platform musllinux_1_2_x86_64 \\
        --platform musllinux_1_1_x86_64 --python-version 3.13

Steps: build our wheel; ``pip download --only-binary=:all:`` it with all its dependencies for
the platform, at the versions constraints.txt pins (fails if any has no wheel); install them
into a scratch folder; remove what the Dockerfile removes (the ``PRUNE`` list read from the
Dockerfile, tests, stubs, bytecode); ``strip --strip-unneeded`` the extension modules; add up
the file sizes.

Two figures: ``layer-estimate-bytes``, the layer as sources only (``BYTECODE=none``), and
``so-bytes``, the extension modules alone. Only the extension modules differ between glibc and
musl (the same versions have the same Python files), and the bytecode a build adds can only be
made by the image's own Python, so check_image.sh estimates the Alpine layers as the layers
measured on the glibc stand-in, less their extension modules, plus ``so-bytes`` for musl.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def prune_list(dockerfile: Path) -> list[str]:
    match = re.search(r'^ARG PRUNE="([^"]*)"', dockerfile.read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"no ARG PRUNE=... in {dockerfile}")
    return match.group(1).replace("\\\n", " ").split()


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def uninstall(site: Path, dist: str) -> None:
    """What ``pip uninstall`` does: delete every file in the distribution's RECORD."""
    infos = [p for p in site.glob("*.dist-info") if normalize(p.name.split("-")[0]) == dist]
    if not infos:
        raise SystemExit(f"{dist} from the Dockerfile's PRUNE list is not installed")
    for info in infos:
        for line in (info / "RECORD").read_text().splitlines():
            path = site / line.split(",")[0]
            if path.is_file():
                path.unlink()
        shutil.rmtree(info, ignore_errors=True)
    for folder in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def clean(site: Path) -> None:
    for folder in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and folder.name in ("__pycache__", "tests"):
            shutil.rmtree(folder)
    for path in site.rglob("*"):
        if path.is_file() and path.suffix in (".pyc", ".pyi"):
            path.unlink()
    for name in ("pip", "setuptools", "_distutils_hack", "pkg_resources"):
        shutil.rmtree(site / name, ignore_errors=True)


def strip(site: Path) -> bool:
    tool = shutil.which("strip")
    if tool is None:
        return False
    libs = [str(p) for p in site.rglob("*.so*") if p.is_file()]
    if libs:
        subprocess.run([tool, "--strip-unneeded", *libs], check=True)
    return True


def total_bytes(site: Path) -> int:
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())


def extension_bytes(site: Path) -> int:
    return sum(
        p.stat().st_size
        for p in site.rglob("*")
        if p.is_file() and not p.is_symlink() and ".so" in p.name
    )


def run_pip(argv: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:5])} ... failed:\n{proc.stdout}\n{proc.stderr}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", action="append", required=True)
    parser.add_argument("--python-version", default="3.13")
    parser.add_argument("--dockerfile", type=Path, default=REPO / "Dockerfile")
    opts = parser.parse_args()
    pip = [sys.executable, "-m", "pip"]
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}  # the index only
    target = [f"--platform={p}" for p in opts.platform] + [
        f"--python-version={opts.python_version}",
        "--implementation=cp",
        "--only-binary=:all:",
    ]
    with tempfile.TemporaryDirectory(prefix="bridge-wheels-") as tmp:
        ours, wheels, site = Path(tmp, "ours"), Path(tmp, "wheels"), Path(tmp, "site")
        run_pip([*pip, "wheel", "--no-deps", "-w", str(ours), str(REPO)], env)
        wheel = next(ours.glob("*.whl"))
        lock = ["-c", str(REPO / "constraints.txt")]  # the versions the Dockerfile installs
        run_pip([*pip, "download", *target, *lock, "-d", str(wheels), str(wheel)], env)
        found = sorted(p.name for p in wheels.glob("*.whl"))
        binary = [n for n in found if not n.endswith("-none-any.whl")]
        print(f"wheels: {len(found)} for {', '.join(opts.platform)} (cp{opts.python_version})")
        for name in binary:
            print(f"  binary: {name}")
        all_wheels = [str(p) for p in wheels.glob("*.whl")]
        run_pip(
            [*pip, "install", "--no-deps", "--no-compile", *target,
             "--target", str(site), *all_wheels],
            env,
        )  # fmt: skip
        raw = total_bytes(site)
        for dist in prune_list(opts.dockerfile):
            uninstall(site, normalize(dist))
        clean(site)
        stripped = strip(site)
        size = total_bytes(site)
        how = "pruning and strip" if stripped else "pruning (strip not found)"
        print(f"installed: {raw / 1e6:.1f} MB; after the Dockerfile's {how}: {size / 1e6:.1f} MB")
        print(f"layer-estimate-bytes: {size}")
        print(f"so-bytes: {extension_bytes(site)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
