"""Fixtures for QEMU tests: skip cleanly without root/QEMU, a cached stage-one image, a lab per test.

Boot timings each test records with ``record_time`` are printed in the terminal summary.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perceus.lab import Lab, missing_tools
from perceus.lab.bus import LabBus, start_bus
from perceus.master.config import Paths
from perceus.stage1 import BuildResult, build, busybox
from perceus.stage1.layout import skeleton
from perceus.stage1.pack import pack

# (what, unit, value) rows for the end-of-run table, in the order recorded.
TIMINGS: list[tuple[str, str, float]] = []
# Tools the stage-one builder needs on the host, besides what the lab needs.
BUILD_TOOLS = ("busybox", "apt-get", "dpkg", "depmod", "ldconfig", "/usr/bin/python3.11")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "vm tests need root (network namespaces, taps)"
    missing = missing_tools() + [t for t in BUILD_TOOLS if shutil.which(t) is None]
    if missing:
        return f"vm tests need {', '.join(missing)}"
    return None


@pytest.fixture(scope="session")
def vm_host() -> None:
    """Skip (with the reason) when this host cannot run the lab."""
    if reason := _skip_reason():
        pytest.skip(reason)


@pytest.fixture(scope="session")
def stage1_image(vm_host: None, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The stage-one kernel + initramfs, built once per session (instant when cached)."""
    cache = os.environ.get("PERCEUS_CACHE")
    result = build(tmp_path_factory.mktemp("stage1"), level=19, cache_dir=Path(cache) if cache else None)
    TIMINGS.append(("stage1 build" + (" (cached)" if result.cached else ""), "s", result.seconds))
    TIMINGS.append(("stage1 initrd size", "MB", result.initrd_size / 1e6))
    return result


PAYLOAD_MARKER = "perceus-test-payload-ok"
_PAYLOAD_INIT = f"""#!/bin/sh
# A kexec target for tests: proves the new kernel and initramfs run, shows what they were given.
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
echo "{PAYLOAD_MARKER} cmdline: $(cat /proc/cmdline)"
poweroff -f
while :; do sleep 3600; done
"""


@pytest.fixture(scope="session")
def marker_rootfs(vm_host: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny busybox root whose /init prints PAYLOAD_MARKER and powers off (a capsule for kexec tests)."""
    root = tmp_path_factory.mktemp("marker-rootfs")
    skeleton(root)
    busybox.install(root)
    (root / "init").write_text(_PAYLOAD_INIT)
    (root / "init").chmod(0o755)
    return root


@pytest.fixture(scope="session")
def marker_initrd(marker_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``marker_rootfs`` packed as a zstd newc initramfs."""
    dest = tmp_path_factory.mktemp("marker-initrd") / "marker.cpio.zst"
    pack(marker_rootfs, dest, level=3)
    return dest


@pytest.fixture
def lab(vm_host: None, tmp_path: Path) -> Iterator[Lab]:
    """A fresh namespace + bridge; everything it started is gone after the test."""
    with Lab(workdir=tmp_path / "lab") as the_lab:
        yield the_lab


@pytest.fixture
def lab_paths(tmp_path: Path) -> Paths:
    """Config and state directories of the lab's master."""
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    paths.ensure()
    return paths


@pytest.fixture
def bus_config(lab_paths: Paths) -> None:
    """Hook: override in a test module to configure the master before perceus-bus starts."""


@pytest.fixture
def lab_bus(lab: Lab, lab_paths: Paths, bus_config: None) -> LabBus:
    """A real perceus-bus inside the lab namespace, bound to the bridge (stopped with the lab)."""
    return start_bus(lab, lab_paths)


@pytest.fixture
def record_time(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """``record_time(what, seconds)``: print a duration and list it in the end-of-run table."""
    test = request.node.name

    def record(what: str, seconds: float) -> None:
        TIMINGS.append((f"{test}: {what}", "s", seconds))
        print(f"{test}: {what} {seconds:.1f} s")

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("vm timings (TCG)")
    for what, unit, value in TIMINGS:
        terminalreporter.write_line(f"{what:<60} {value:8.2f} {unit}")
