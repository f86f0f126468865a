"""`perceus vnfs genchroot debian SUITE DIR`: a minimal Debian root for a capsule (spec §9.9's generators).

debootstrap (minbase) with a kernel, systemd and the tools a node needs; the runtime agent (`agent/`'s
`perceus` namespace) plus its pinned wheels under /usr/local/lib/perceus; and `perceus-provisiond.service`,
which starts the agent in runtime mode (it reads `perceus.master=` from the kernel command line that kexec
passes).  1.x's generators also set passwords, ssh_config `StrictHostKeyChecking no` and agettys: we leave
credentials out of images on purpose (modules deliver them) and let systemd's serial-getty follow console=.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from perceus.errors import CapsuleError

DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd-sysv",
    "udev",
    "kmod",
    "iproute2",
    "ifupdown",
    "isc-dhcp-client",
    "python3",
    "procps",
    "openssh-server",
    "ca-certificates",
)
AGENT_DIR = "usr/local/lib/perceus"
FSTAB = """\
# Root is the RAM filesystem the kernel unpacked from the capsule (stateless), rewritten by stateful installs.
none    /           tmpfs   defaults        0 0
proc    /proc       proc    defaults        0 0
sysfs   /sys        sysfs   defaults        0 0
devpts  /dev/pts    devpts  gid=5,mode=620  0 0
"""


def kernel_package(arch: str) -> str:
    return {"amd64": "linux-image-amd64", "arm64": "linux-image-arm64"}.get(arch, f"linux-image-{arch}")


def debootstrap_argv(suite: str, target: Path, *, arch: str, mirror: str, extra: Sequence[str] = ()) -> list[str]:
    include = ",".join((*PACKAGES, kernel_package(arch), *extra))
    return ["debootstrap", "--variant=minbase", f"--arch={arch}", f"--include={include}", suite, str(target), mirror]


def _run(argv: list[str], step: str) -> None:
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    except FileNotFoundError:
        raise CapsuleError(f"{step}: {argv[0]} is not installed (apt-get install {argv[0]})") from None
    if proc.returncode != 0:
        tail = proc.stdout.strip().splitlines()[-1:] or [""]
        raise CapsuleError(f"{step} failed (exit {proc.returncode}): {tail[0]}")


def _python_version(target: Path) -> str:
    versions = sorted(
        p.name.removeprefix("python")
        for p in (target / "usr/lib").glob("python3.*")
        if p.name.removeprefix("python3.").isdigit()
    )
    if not versions:
        raise CapsuleError(f"{target}: no python3 in the chroot")
    return versions[-1]


def install_agent(target: Path, agent_src: Path, pins: Sequence[str]) -> None:
    """Copy the agent's `perceus` namespace and pip-install its pinned wheels for the chroot's Python."""
    dest = target / AGENT_DIR
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        agent_src / "perceus",
        dest / "perceus",
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    arch = {"x86_64": "x86_64", "aarch64": "aarch64"}.get(platform.machine(), platform.machine())
    _run(["python3", "-m", "pip", "install", "--quiet", "--only-binary=:all:", "--no-compile",
          "--disable-pip-version-check", "--python-version", _python_version(target),
          "--platform", f"manylinux2014_{arch}", "--platform", f"manylinux_2_28_{arch}",
          "--target", str(dest), *pins], "pip install (agent wheels)")  # fmt: skip


def genchroot_debian(
    suite: str,
    target: Path,
    *,
    agent_src: Path,
    pins: Sequence[str],
    arch: str = "amd64",
    mirror: str = DEFAULT_MIRROR,
    extra: Sequence[str] = (),
) -> Path:
    if os.geteuid() != 0:
        raise CapsuleError("genchroot needs root (debootstrap creates device nodes and chroots)")
    if target.exists() and any(target.iterdir()):
        raise CapsuleError(f"{target} exists and is not empty")
    _run(debootstrap_argv(suite, target, arch=arch, mirror=mirror, extra=extra), "debootstrap")
    from perceus.master.modules.provisiond_install import install_provisiond

    install_provisiond(target, agent_src=agent_src, pins=pins)  # agent + wheels, unit, networkd, conf template
    (target / "etc/fstab").write_text(FSTAB)
    (target / "etc/hostname").write_text("localhost\n")
    (target / "fastboot").touch()
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (target / cache).glob("*"):
            if p.is_file():
                p.unlink()
    return target
