"""`perceus vnfs genchroot debian SUITE DIR`: a minimal Debian root for a capsule (1.x ref §9.9's generators).

debootstrap (minbase) with a kernel, systemd and the tools a node needs; the runtime agent (`agent/`'s
`perceus` namespace) plus its pinned wheels under /usr/local/lib/perceus; and `perceus-provisiond.service`,
which starts the agent in runtime mode (it reads `perceus.master=` from the kernel command line that kexec
passes).  1.x's generators also set passwords, ssh_config `StrictHostKeyChecking no` and agettys: we leave
credentials out of images on purpose (modules deliver them) and let systemd's serial-getty follow console=.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from perceus.errors import CapsuleError
from perceus.master.capsule.agent_install import install_provisiond, run_step

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
    run_step(debootstrap_argv(suite, target, arch=arch, mirror=mirror, extra=extra), "debootstrap")
    install_provisiond(target, agent_src=agent_src, pins=pins)  # agent + wheels, unit, networkd, conf template
    (target / "etc/fstab").write_text(FSTAB)
    (target / "etc/hostname").write_text("localhost\n")
    (target / "fastboot").touch()
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (target / cache).glob("*"):
            if p.is_file():
                p.unlink()
    return target
