"""The agent inside a capsule: `install_provisiond(root)` puts the runtime agent, its wheels and
`perceus-provisiond.service` into a capsule root.

Called by capsule builders (genchroot, `vnfs import` of a root without the agent).  The unit starts the
agent in runtime mode; the master address comes from the kernel command line stage one passed at kexec
(`perceus.master=`), else /etc/perceus/provisiond.conf (a commented template is written if missing).
systemd-networkd is enabled because the ipaddr module writes `.network` files (it manages only the links
those files name, so an ifupdown-configured capsule is not disturbed).  SIGTERM at shutdown makes the agent
send its last state (halt / reboot / single-user / unmonitored), so the unit stops it before the network.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from perceus.errors import CapsuleError
from perceus.master.fsutil import atomic_write

AGENT_DIR = "usr/local/lib/perceus"  # where the agent's `perceus` namespace and its wheels live in a capsule
UNIT_NAME = "perceus-provisiond.service"
UNIT = """\
[Unit]
Description=Perceus provisiond (runtime agent: check-ins, modules)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
Environment=PYTHONPATH=/{agent_dir}
ExecStart=/usr/bin/python3 -m perceus.agent --mode runtime
# SIGTERM → the agent sends its last state once, then exits 0.
KillSignal=SIGTERM
TimeoutStopSec=10
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""
CONF = """\
# perceus provisiond: used only when the kernel command line has no perceus.master= (stage one passes it).
# Same syntax as the kernel command line, e.g.:
# perceus.master=10.0.0.1:9987 perceus.events=10.0.0.1:9988
"""
NETWORKD = ("lib/systemd/system/systemd-networkd.service", "usr/lib/systemd/system/systemd-networkd.service")


def run_step(argv: list[str], step: str) -> None:
    """Run a build step's command; a missing tool or a failure is one CapsuleError line."""
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
    run_step(["python3", "-m", "pip", "install", "--quiet", "--only-binary=:all:", "--no-compile",
              "--disable-pip-version-check", "--python-version", _python_version(target),
              "--platform", f"manylinux2014_{arch}", "--platform", f"manylinux_2_28_{arch}",
              "--target", str(dest), *pins], "pip install (agent wheels)")  # fmt: skip


def default_agent_src() -> Path:
    import perceus.agent as agent_pkg

    return Path(agent_pkg.__file__).resolve().parents[2]


def _enable(root: Path, unit_path: str, name: str) -> None:
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / name
    if not link.is_symlink():
        os.symlink(unit_path, link)


def install_provisiond(
    root: Path, *, agent_src: Path | None = None, pins: Sequence[str] | None = None, wheels: bool = True
) -> None:
    """Install into `root`.  `wheels=False` copies only the pure-Python agent (the capsule provides pyzmq,
    msgpack and structlog itself, e.g. Debian's python3-zmq python3-msgpack python3-structlog)."""
    src = agent_src or default_agent_src()
    if wheels:
        if pins is None:
            from perceus.stage1.wheels import PINS

            pins = PINS
        install_agent(root, src, pins)  # the agent tree + pinned wheels for the capsule's own Python
    else:
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", "master", "stage1", "importers")
        shutil.copytree(src / "perceus", root / AGENT_DIR / "perceus", dirs_exist_ok=True, ignore=skip)
    unit = root / "etc/systemd/system" / UNIT_NAME
    atomic_write(unit, UNIT.format(agent_dir=AGENT_DIR).encode(), mode=0o644)
    _enable(root, f"/etc/systemd/system/{UNIT_NAME}", UNIT_NAME)
    conf = root / "etc/perceus/provisiond.conf"
    if not conf.exists():
        atomic_write(conf, CONF.encode(), mode=0o644)
    for rel in NETWORKD:
        if (root / rel).exists():
            _enable(root, f"/{rel}", "systemd-networkd.service")
            break
