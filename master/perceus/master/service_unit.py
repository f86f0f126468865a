"""The systemd unit of perceus-bus, written and enabled by `perceus init` where systemd runs (1.x's init
"starting (also configuring to start on boot) the Perceus services")."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from perceus.errors import ConfigError
from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write

UNIT = "perceus-bus.service"
SYSTEMD_RUNNING = Path("/run/systemd/system")


def unit_text(paths: Paths, bus: str) -> str:
    """The unit for this master's directories (contrib/systemd/perceus-bus.service, paths filled in)."""
    return f"""\
# Written by `perceus init`.  dnsmasq is started and stopped by perceus-bus itself (manage dnsmasq = yes).
[Unit]
Description=Perceus master daemon (perceus-bus)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
Environment=PERCEUS_CONFIG_DIR={paths.config_dir} PERCEUS_STATE_DIR={paths.state_dir}
ExecStart={bus} --foreground
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=2
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths={paths.state_dir} {paths.config_dir}

[Install]
WantedBy=multi-user.target
"""


def bus_command() -> str:
    found = shutil.which("perceus-bus") or str(Path(sys.executable).with_name("perceus-bus"))
    return found


def install(paths: Paths, root: Path = Path("/"), *, start: bool) -> tuple[Path | None, str]:
    """Write `<root>/etc/systemd/system/perceus-bus.service` (if missing) and `systemctl enable` it.

    `start` adds `--now` (a live systemd); with another `root` systemctl works offline (`--root`).
    Returns (unit written or None, what systemctl said).
    """
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        raise ConfigError("systemctl is not installed")
    path = root / "etc" / "systemd" / "system" / UNIT
    written: Path | None = None
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, unit_text(paths, bus_command()).encode(), mode=0o644)
        written = path
    argv = [systemctl, "enable", UNIT] if root == Path("/") else [systemctl, f"--root={root}", "enable", UNIT]
    if start and root == Path("/"):
        subprocess.run([systemctl, "daemon-reload"], capture_output=True, check=False, timeout=60)
        argv.insert(2, "--now")
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise ConfigError(f"systemctl enable {UNIT} failed: {(done.stderr or done.stdout).strip()[:200]}")
    return written, (done.stderr or done.stdout).strip()
