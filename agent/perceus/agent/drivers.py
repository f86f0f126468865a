"""Driver loading: walk the devices' modaliases (sysfs) and load matching modules.

The walk reads `/sys/bus/*/devices/*/modalias`, the files udev's coldplug reads too.  It used pyudev, whose
import runs `ldconfig -p` (ctypes.util.find_library) and whose per-device objects cost ~0.4 s per walk under
QEMU TCG — three walks per boot, in stage one and again in a bare runtime.

Modules load with `finit_module` (kexec.py, the cffi adapter) in dependency order from modules.dep, not by
spawning busybox modprobe: no fork of a 30 MB interpreter per module, and the real errno per module (EEXIST =
already loaded).  Loading a bus driver creates new devices (virtio_pci makes `virtio:` devices that
virtio_net matches), so the walk repeats until a round loads nothing new.  `noload=` blacklists, as in 1.x.
Compressed modules (`.ko.xz`, `.ko.gz`; the stage-one image ships xz) go to the kernel as files when it can
decompress them (CONFIG_MODULE_DECOMPRESS); Debian 12's kernel cannot (EOPNOTSUPP), and then the few modules a
node loads are decompressed here and handed over with `init_module` — the signature check is the same.
"""

from __future__ import annotations

import errno
import gzip
import lzma
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from perceus.agent.failures import DriverError
from perceus.agent.modalias import ModuleIndex

log = structlog.get_logger("perceus.agent.drivers")

MAX_ROUNDS = 4


def modules_dir(release: str | None = None) -> Path:
    """`/lib/modules/<uname -r>` of the running kernel."""
    return Path("/lib/modules") / (release or os.uname().release)


def device_modaliases(sysfs: Path = Path("/sys")) -> list[str]:
    """Every distinct modalias of a device on a bus, bus by bus and device by device in name order."""
    seen: dict[str, None] = {}
    try:
        buses = sorted(os.listdir(sysfs / "bus"))
    except OSError:
        return []
    for bus in buses:
        devices = sysfs / "bus" / bus / "devices"
        try:
            names = sorted(os.listdir(devices))
        except OSError:
            continue
        for name in names:
            try:
                with open(devices / name / "modalias", encoding="ascii", errors="replace") as fh:
                    alias = fh.read().strip()
            except OSError:  # no modalias (most buses' devices have one; some do not)
                continue
            if alias:
                seen.setdefault(alias, None)
    return list(seen)


def loaded_modules(path: Path = Path("/proc/modules")) -> set[str]:
    try:
        return {line.split(maxsplit=1)[0] for line in path.read_text().splitlines() if line.strip()}
    except OSError:
        return set()


@dataclass
class Result:
    """What driver loading did, for the log, the console and the DRIVERS phase report."""

    loaded: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} loaded"]
        if self.failed:
            parts.append("failed: " + ", ".join(sorted(self.failed)))
        if self.missing:
            parts.append("missing: " + ", ".join(self.missing))
        return "; ".join(parts)


Loader = Callable[[Path], bool]


_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {".xz": lzma.decompress, ".gz": gzip.decompress}
_kernel_decompresses: bool | None = None  # learnt at the first compressed module (EOPNOTSUPP: it cannot)


def _finit(path: Path) -> bool:
    global _kernel_decompresses  # noqa: PLW0603 - one fact about the running kernel, learnt once per process
    from perceus.agent import kexec

    decompress = _DECOMPRESS.get(path.suffix)
    if decompress is None:
        return kexec.finit_module(path)
    if _kernel_decompresses is not False:
        try:
            fresh = kexec.finit_module(path)
        except DriverError as exc:
            if exc.errno != errno.EOPNOTSUPP:
                raise
            _kernel_decompresses = False
        else:
            _kernel_decompresses = True
            return fresh
    try:
        image = decompress(path.read_bytes())
    except (OSError, lzma.LZMAError, gzip.BadGzipFile, EOFError) as exc:
        raise DriverError(f"cannot decompress module {path.name}: {exc}", module=path.name) from None
    return kexec.init_module(image, path.name)


def load_drivers(
    explicit: Iterable[str] = (),
    noload: Iterable[str] = (),
    *,
    root: Path | None = None,
    walk: Callable[[], list[str]] = device_modaliases,
    loader: Loader = _finit,
    loaded: set[str] | None = None,
) -> Result:
    """Load modules for every device plus `explicit`, minus `noload`; one log line per module."""
    index = ModuleIndex.load(root or modules_dir())
    log.debug("module_index_loaded", root=str(index.root), aliases=len(index.aliases), modules=len(index.deps.paths))
    result = Result()
    explicit, noload = tuple(explicit), tuple(noload)
    done = loaded_modules() if loaded is None else set(loaded)
    tried: set[str] = set()
    for round_no in range(MAX_ROUNDS):
        plan = index.resolve(walk(), explicit if round_no == 0 else (), noload)
        for name in plan.blocked:
            if name not in result.blocked:
                result.blocked.append(name)
                log.info("module_blacklisted", module=name)
        for name in plan.missing:
            if name not in result.missing and name not in done:
                result.missing.append(name)
                log.warning("module_missing", module=name)
        todo = [m for m in plan.load if m not in tried]
        if not todo:
            break
        for name in todo:
            tried.add(name)
            if name in done:
                result.already.append(name)
                continue
            start = time.monotonic()
            try:
                fresh = loader(index.root / index.deps.paths[name])
            except DriverError as exc:
                result.failed[name] = str(exc)
                log.warning("module_load_failed", module=name, error=str(exc))
                continue
            (result.loaded if fresh else result.already).append(name)
            done.add(name)
            log.info("module_loaded" if fresh else "module_already_loaded", module=name,
                     duration_ms=round((time.monotonic() - start) * 1000, 1))  # fmt: skip
    return result
