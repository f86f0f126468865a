"""What the vnfs verbs share: progress bars on stderr, sizes, the capsule config flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from perceus.master.capsule import hybrid
from perceus.master.capsule.importer import Settings
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import PackResult, current
from perceus.master.capsule.progress import ProgressLine
from perceus.master.cli.context import CliContext
from perceus.master.config import Paths
from perceus.protocol.capsule import TYPES

ProgressFactory = Callable[[str, int], Callable[[int], None]]


@contextmanager
def progress(ctx: CliContext) -> Iterator[ProgressFactory]:
    """Progress bars on a terminal's stderr (nothing when quiet or not a terminal)."""
    line = ProgressLine(ctx.stderr, enabled=None if not ctx.quiet else False)
    try:
        yield line.bar
    finally:
        line.finish()


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--type", choices=TYPES, help="stateless (RAM root), stateful (installed to disk) or hybrid")
    p.add_argument("--console", help="console device(s) for the runtime kernel: tty0, ttyS0 (gets ,115200) …")
    p.add_argument("--kernel-args", help="KERNEL_ARGS: the runtime kernel command line")
    p.add_argument("--kexec-args", help="KEXEC_ARGS: extra kexec flags")
    p.add_argument("--hybridize", type=Path, metavar="FILE",
                   help="hybrid: the list of directories (paths, globs) served over NFS instead of RAM")  # fmt: skip


def console(value: str | None) -> str | None:
    """As 1.x's configure: a serial device without settings gets `,115200`; `console=` prefixes are dropped."""
    if value is None:
        return None
    devices = [d.removeprefix("console=") for d in value.split()]
    return " ".join(d + ",115200" if d.startswith("ttyS") and "," not in d else d for d in devices if d)


def settings(ns: argparse.Namespace) -> Settings:
    return Settings(type=ns.type, console=console(ns.console), kernel_args=ns.kernel_args, kexec_args=ns.kexec_args,
                    hybridize=ns.hybridize)  # fmt: skip


def hybrid_line(paths: Paths, name: str) -> str | None:
    """`hybrid: RAM image … + NFS part …` for a hybrid capsule (None for others)."""
    cap = Store(paths).existing(name)
    summary = hybrid.read_summary(cap)
    m = current(cap)
    if summary is None or m is None:
        return None
    where = ", ".join(summary["paths"])
    return (
        f"hybrid: RAM image {mib(m.rootfs.size)}, NFS part {mib(int(summary['bytes']))} "
        f"({summary['entries']} entries in {where}) exported as {summary['export']}"
    )


def ask_console(ctx: CliContext, current: str) -> str | None:
    """The 1.x import question (FAQ: "Perceus will ask where it should send the terminal output")."""
    default = current or "tty0"
    print(f"Console device for the runtime kernel (tty0, ttyS0 …) [{default}]: ", end="", file=ctx.stdout, flush=True)
    answer = ctx.stdin.readline().strip()
    return console(answer or default)


def describe(result: PackResult) -> str:
    m = result.manifest
    return (
        f"version {m.version}, {len(m.all_chunks())} chunks ({result.new_chunks} new), "
        f"{mib(m.packed_size)} packed from {mib(m.rootfs.size)}, manifest {m.hash[:16]}"
    )
