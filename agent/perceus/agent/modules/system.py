"""hostname, modprobe and stateful flags on the node: small, validated, written under the agent's root."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from perceus.errors import ConfigError
from perceus.fsatomic import replace_file
from perceus.protocol import names

log = structlog.get_logger("perceus.agent.modules")

_KMOD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MODPROBE_TIMEOUT = 60.0


def set_hostname(root: Path, name: Any, *, live: bool) -> bool:
    """Write <root>/etc/hostname and, on a real node (root "/"), set the kernel's name; True if changed."""
    if not isinstance(name, str) or not names.valid("node", name):  # fullmatch: no newline into /etc/hostname
        raise ConfigError(f"refusing host name {name!r}")
    path = root / "etc" / "hostname"
    try:
        changed = path.read_text().strip() != name
    except FileNotFoundError:
        changed = True
    if changed:
        replace_file(path, f"{name}\n".encode(), mode=0o644)
    if live and socket.gethostname() != name:
        socket.sethostname(name)
        changed = True
    return changed


def module_names(data: Any) -> list[str]:
    mods = data.get("modules") if isinstance(data, dict) else None
    if not isinstance(mods, list | tuple):
        raise ConfigError("modprobe: modules must be a list")
    for mod in mods:
        if not isinstance(mod, str) or not _KMOD.match(mod):
            raise ConfigError(f"modprobe: refusing module name {mod!r}")
    return list(mods)


def modprobe(mods: Sequence[str], run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> list[str]:
    """Runtime: `modprobe -- <m>` each (the capsule's kmod knows its own kernel); returns the failures."""
    failed = []
    for mod in mods:
        try:
            result = run(["modprobe", "--", mod], capture_output=True, text=True, timeout=MODPROBE_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as exc:
            failed.append(f"{mod}: {exc}")
            continue
        if result.returncode != 0:
            failed.append(f"{mod}: {result.stderr.strip()[:200]}")
        else:
            log.info("module_loaded", module=mod)
    return failed


def stateful_flag(directory: Path, install: bool) -> Path:
    """What a stateful capsule's installer reads (1.x emitted `INIT=yes` into the node script instead)."""
    path = directory / "stateful"
    replace_file(path, f"INIT={'yes' if install else 'no'}\n".encode(), mode=0o644)
    return path
