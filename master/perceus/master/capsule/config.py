"""A capsule's `config`: the original sourced-shell file (1.x ref §2.7), read and rewritten without a shell.

Perceus 1.x *sourced* this file (and the includes it names) with /bin/sh.  We never execute it: only
`KEY=value` assignment lines are read (quotes and backslash escapes as sh), every other line (comments, the
`. /etc/perceus/…` includes, `if` blocks) is kept verbatim on rewrite and otherwise ignored.  A capsule
imported from 1.x therefore keeps its file byte for byte except for the keys we change.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from perceus.errors import CapsuleError, ConfigError
from perceus.master.capsule import kexecargs
from perceus.master.fsutil import atomic_write
from perceus.protocol.capsule import TYPES

_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$")
# Keys of stateful capsules (1.x ref §2.7): their presence marks a 1.x stateful capsule without TYPE.  LAYOUT
# (auto|gpt|mbr) and BOOTLOADER (auto|systemd-boot|none) are ours (docs/capsules.md "Stateful layouts").
STATEFUL_KEYS = ("TARGETS", "FILESYSTEM", "BOOT_SIZE", "SWAP_SIZE", "RAID", "LAYOUT", "BOOTLOADER")
DEFAULTS = {"TYPE": "stateless", "KERNEL_ARGS": "ramdisk_blocksize=1024", "KEXEC_ARGS": "", "CONSOLE": ""}
# 1.x sourced these after a capsule's own config (1.x ref §2.7): global, then node, then group (group wins).
GLOBAL_OVERRIDE = "global-vnfs.config"
SCOPED_OVERRIDES = ("nodes", "groups")


def _unquote(raw: str, where: str) -> str:
    raw = raw.strip()
    if not raw:
        return ""
    try:
        words = shlex.split(raw, comments=True, posix=True)
    except ValueError as exc:
        raise ConfigError(f"cannot parse value {raw!r}: {exc}", path=where) from None
    return " ".join(words)


def _quote(value: str) -> str:
    """Double quotes as 1.x wrote them; single quotes when the value holds shell specials (never expanded)."""
    if not any(c in value for c in "$`\\\"'"):
        return f'"{value}"'
    return "'" + value.replace("'", "'\\''") + "'"


@dataclass
class CapsuleConfig:
    """The key/value view of a capsule `config` plus its original lines."""

    values: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, where: str = "config") -> CapsuleConfig:
        values: dict[str, str] = {}
        for line in text.splitlines():
            m = _ASSIGN.match(line)
            if m:
                values[m.group(1)] = _unquote(m.group(2), where)
        return cls(values, text.splitlines())

    @classmethod
    def load(cls, path: Path) -> CapsuleConfig:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise CapsuleError(f"{path}: capsule config is missing") from None
        except OSError as exc:
            raise CapsuleError(f"{path}: cannot read: {exc.strerror}") from None
        return cls.parse(text, str(path))

    def get(self, key: str, default: str | None = None) -> str:
        if key in self.values:
            return self.values[key]
        return DEFAULTS.get(key, "") if default is None else default

    def set(self, key: str, value: str) -> None:
        """Change a key in place (first assignment line), or append it."""
        self.values[key] = value
        line = f"{key}={_quote(value)}"
        for i, old in enumerate(self.lines):
            m = _ASSIGN.match(old)
            if m and m.group(1) == key:
                self.lines[i] = line
                # Later assignments of the same key would win when sourced by 1.x tools: drop them.
                self.lines[i + 1 :] = [
                    x for x in self.lines[i + 1 :] if not ((n := _ASSIGN.match(x)) and n.group(1) == key)
                ]
                return
        self.lines.append(line)

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"

    def save(self, path: Path) -> None:
        atomic_write(path, self.render().encode(), mode=0o644)

    # ------------------------------------------------------------------ typed accessors
    @property
    def type(self) -> str:
        kind = self.values.get("TYPE", "")
        if not kind:
            return "stateful" if any(k in self.values for k in STATEFUL_KEYS) else "stateless"
        if kind not in TYPES:
            raise CapsuleError(f"capsule TYPE {kind!r} is not one of {', '.join(TYPES)}")
        return kind

    @property
    def kernel(self) -> str:
        return self.values.get("KERNEL", "")

    @property
    def initrd(self) -> str:
        return self.values.get("INITRD", "")

    @property
    def kernel_args(self) -> str:
        return self.get("KERNEL_ARGS")

    @property
    def kexec_args(self) -> str:
        return self.get("KEXEC_ARGS")

    @property
    def console(self) -> str:
        return self.get("CONSOLE")

    def merged(self, config_dir: Path | None) -> CapsuleConfig:
        """This config with `<config>/global-vnfs.config`'s assignments over it, as 1.x sourced the two."""
        values = dict(self.values)
        if config_dir is not None:
            override = config_dir / GLOBAL_OVERRIDE
            if override.is_file():
                values.update(CapsuleConfig.load(override).values)
        return CapsuleConfig(values, list(self.lines))

    def kexec(self) -> kexecargs.KexecArgs:
        """KEXEC_ARGS understood (CapsuleError for a word kexec_file_load has no meaning for)."""
        return kexecargs.parse(self.kexec_args, stateful=self.type == "stateful")

    def effective(self, config_dir: Path | None) -> CapsuleConfig:
        """What the manifest is built from: `merged`, then KEXEC_ARGS folded into KERNEL_ARGS / INITRD."""
        eff = self.merged(config_dir)
        values = eff.values
        kx = eff.kexec()
        args = kx.command_line if kx.command_line is not None else eff.kernel_args
        values["KERNEL_ARGS"] = " ".join(w for w in (args, *kx.append) if w)
        values["KEXEC_ARGS"] = kx.for_node
        if kx.initrd is not None:
            values["INITRD"] = kx.initrd
        return eff


def scoped_overrides(config_dir: Path) -> list[Path]:
    """1.x's per-node and per-group `vnfs.config` files present under `config_dir` (capsule/variants.py)."""
    found: list[Path] = []
    for scope in SCOPED_OVERRIDES:
        base = config_dir / scope
        if base.is_dir():
            found.extend(sorted(p for p in base.glob("*/vnfs.config") if p.is_file()))
    return found


def new_config(
    *,
    kind: str,
    kernel: str,
    initrd: str = "",
    console: str = "",
    kernel_args: str | None = None,
    kexec_args: str = "",
) -> CapsuleConfig:
    """The config of a freshly imported capsule, with the original's keys and defaults."""
    if kind not in TYPES:
        raise CapsuleError(f"capsule type {kind!r} is not one of {', '.join(TYPES)}")
    cfg = CapsuleConfig(lines=["# Perceus capsule configuration (the keys of Perceus 1.x; TYPE and CONSOLE are new)"])
    cfg.set("TYPE", kind)
    cfg.set("KERNEL", kernel)
    if initrd:
        cfg.set("INITRD", initrd)
    cfg.set("KERNEL_ARGS", DEFAULTS["KERNEL_ARGS"] if kernel_args is None else kernel_args)
    cfg.set("KEXEC_ARGS", kexec_args)
    cfg.set("CONSOLE", console)
    cfg.set("COMPRESSION", "low")
    return cfg
