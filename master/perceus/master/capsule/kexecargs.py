"""KEXEC_ARGS (1.x ref §2.7) read as what it meant to 1.x's kexec, turned into what kexec_file_load takes.

The node calls kexec_file_load(kernel, initrd, cmdline) itself (no kexec binary), so the words are folded in
when the manifest is built, on the master: `--append=X` adds X to the kernel command line (1.x's kexec let a
second --append silently replace Perceus' own; adding is what admins meant), `--command-line=X` replaces
KERNEL_ARGS, `--initrd=FILE` names a stateful capsule's initrd inside rootfs/ (a stateless capsule's initrd
is its root filesystem), `--reuse-cmdline` travels to the node, which puts its stage-one command line first.
`--args-linux` (the 1.x default for relocatable kernels; meaningless to kexec_file_load) is accepted and
reported as a no-op.  Any other word is refused with a one-line message: nothing is silently dropped.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from perceus.errors import CapsuleError

NOOPS = ("--args-linux",)
REUSE = "--reuse-cmdline"
_VALUED = ("--append", "--command-line", "--initrd")


@dataclass(frozen=True)
class KexecArgs:
    """KEXEC_ARGS understood."""

    append: tuple[str, ...] = ()
    command_line: str | None = None
    initrd: str | None = None
    reuse_cmdline: bool = False
    noops: tuple[str, ...] = field(default=())

    @property
    def for_node(self) -> str:
        """What the manifest's kexec_args keeps: only what the node acts on."""
        return REUSE if self.reuse_cmdline else ""

    def notes(self) -> list[str]:
        out = [f"KEXEC_ARGS {w}: accepted, no effect with kexec_file_load" for w in self.noops]
        if self.command_line is not None:
            out.append("KEXEC_ARGS --command-line replaces KERNEL_ARGS")
        if self.append:
            out.append("KEXEC_ARGS --append adds to KERNEL_ARGS: " + " ".join(self.append))
        if self.initrd is not None:
            out.append(f"KEXEC_ARGS --initrd sets the initrd: {self.initrd}")
        if self.reuse_cmdline:
            out.append("KEXEC_ARGS --reuse-cmdline: the node keeps its stage-one command line first")
        return out


def parse(text: str, *, stateful: bool = False) -> KexecArgs:
    """Parse KEXEC_ARGS; CapsuleError (one line) for a word kexec_file_load has no meaning for."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise CapsuleError(f"KEXEC_ARGS {text!r}: {exc}") from None
    append: list[str] = []
    command_line: str | None = None
    initrd: str | None = None
    reuse = False
    noops: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if name in _VALUED:
            if not eq:
                if i + 1 >= len(words):
                    raise CapsuleError(f"KEXEC_ARGS: {name} needs a value")
                i += 1
                value = words[i]
            if name == "--append":
                append.append(value)
            elif name == "--command-line":
                command_line = value
            else:
                if not stateful:
                    raise CapsuleError(
                        "KEXEC_ARGS --initrd: a stateless capsule's initrd is its root filesystem; "
                        "use it only in stateful capsules"
                    )
                initrd = value
        elif word == REUSE:
            reuse = True
        elif word in NOOPS:
            noops.append(word)
        else:
            raise CapsuleError(
                f"KEXEC_ARGS {word!r} has no meaning for kexec_file_load (accepted: --append, --command-line, "
                "--initrd, --reuse-cmdline, --args-linux)"
            )
        i += 1
    return KexecArgs(tuple(append), command_line, initrd, reuse, tuple(noops))
