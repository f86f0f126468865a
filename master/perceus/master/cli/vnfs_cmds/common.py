"""What the vnfs verbs share: progress bars on stderr, sizes, the capsule config flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from perceus.master.capsule.importer import Settings
from perceus.master.capsule.pack import PackResult
from perceus.master.capsule.progress import ProgressLine
from perceus.master.cli.context import CliContext
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
    p.add_argument("--console", help="console device(s) for the runtime kernel, e.g. ttyS0,115200")
    p.add_argument("--kernel-args", help="KERNEL_ARGS: the runtime kernel command line")
    p.add_argument("--kexec-args", help="KEXEC_ARGS: extra kexec flags")


def settings(ns: argparse.Namespace) -> Settings:
    return Settings(type=ns.type, console=ns.console, kernel_args=ns.kernel_args, kexec_args=ns.kexec_args)


def describe(result: PackResult) -> str:
    m = result.manifest
    return (
        f"version {m.version}, {len(m.all_chunks())} chunks ({result.new_chunks} new), "
        f"{mib(m.packed_size)} packed from {mib(m.rootfs.size)}, manifest {m.hash[:16]}"
    )
