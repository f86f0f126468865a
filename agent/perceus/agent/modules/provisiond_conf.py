"""/etc/perceus/provisiond.conf: the master address etc. for provisiond when the kernel command line lacks it.

Stage one passes `perceus.master=…` at kexec, so a provisioned node never needs this file; it is for
capsules booted another way (a stateful install's own boot loader, a VM image).  Same syntax as the kernel
command line (`perceus.master=10.0.0.1:9987 perceus.events=…`), `#` comments; the command line wins.
1.x's equivalent was MASTERIP in /etc/sysconfig/provisiond.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from perceus.agent import cmdline
from perceus.agent.cmdline import AgentConfig
from perceus.errors import ConfigError

DEFAULT_PATH = Path("/etc/perceus/provisiond.conf")


def fill(config: AgentConfig, path: Path = DEFAULT_PATH) -> AgentConfig:
    """`config` with masters/events/node/debug taken from `path` where the command line gave none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return config
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    words = " ".join(line.split("#", 1)[0] for line in text.splitlines())
    try:
        extra = cmdline.parse(words)
    except ConfigError as exc:
        raise ConfigError(str(exc).removeprefix("kernel command line: "), path=str(path)) from None
    return dataclasses.replace(
        config,
        masters=config.masters or extra.masters,
        events=config.events or extra.events,
        node=config.node or extra.node,
        debug=config.debug or extra.debug,
    )
