"""Debian's CPython for the image: interpreter, zipped stdlib, lib-dynload and shared libraries."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from perceus.stage1.run import run

PYTHON = Path("/usr/bin/python3.11")
STDLIB = Path("/usr/lib/python3.11")
LIBDIR = "usr/lib/x86_64-linux-gnu"
LOADER = "/lib64/ld-linux-x86-64.so.2"
# Loaded with dlopen, so ldd cannot see them: pyudev finds libudev through
# ctypes.util.find_library, and glibc dlopens libgcc_s for pthread_cancel.
DLOPENED = ("libudev.so.1", "libgcc_s.so.1")
# lib-dynload entries left out: test helpers, terminal UIs, obsolete audio/NIS,
# CJK codecs, and _crypt (drags in libcrypt for nothing).
DYNLOAD_EXCLUDE = re.compile(
    r"^(_test|_xx|xxlimited|_ctypes_test|_dbm|_curses|readline|nis|ossaudiodev|audioop|_crypt"
    r"|_codecs_|_multibytecodec|_lsprof)"
)
_LDD_ARROW = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)\s+\(0x[0-9a-f]+\)\s*$")
_LDD_PLAIN = re.compile(r"^\s*(/\S+)\s+\(0x[0-9a-f]+\)\s*$")
_ZIP_SCRIPT = Path(__file__).with_name("zip_stdlib.py")
# The one list of extra host binaries the image carries (image path -> host file), copied with their ldd
# closure like python3.  mkfs.ext4 for stateful installs: busybox's mke2fs makes only ext2 (no journal).
# It is the host's mke2fs under the name that selects ext4 defaults (its built-in profile: no mke2fs.conf).
# Stateful layouts (agent/perceus/agent/install.py): sfdisk writes GPT and MBR tables, mdadm the RAID1 mirror,
# mkfs.xfs and mkfs.fat (the ESP) the filesystems busybox cannot make.
EXTRA_BINARIES: dict[str, Path] = {
    "usr/sbin/mkfs.ext4": Path("/sbin/mke2fs"),
    "usr/sbin/sfdisk": Path("/sbin/sfdisk"),
    "usr/sbin/mdadm": Path("/sbin/mdadm"),
    "usr/sbin/mkfs.xfs": Path("/sbin/mkfs.xfs"),
    "usr/sbin/mkfs.fat": Path("/sbin/mkfs.fat"),
}


def parse_ldd(text: str) -> dict[str, Path]:
    """Map each needed soname to the file ldd resolved it to (the loader maps to itself)."""
    found: dict[str, Path] = {}
    for line in text.splitlines():
        if "not found" in line:
            raise FileNotFoundError(f"ldd: {line.strip()}")
        if m := _LDD_ARROW.match(line):
            found[m.group(1)] = Path(m.group(2))
        elif m := _LDD_PLAIN.match(line):
            found[m.group(1)] = Path(m.group(1))
    return found


def dynload_wanted(filename: str) -> bool:
    """Whether a lib-dynload extension module goes into the image."""
    return filename.endswith(".so") and not DYNLOAD_EXCLUDE.match(filename)


def install_interpreter(root: Path) -> list[Path]:
    """Copy python3.11, the stdlib zip and lib-dynload; return the ELF files copied."""
    bindir = root / "usr/bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PYTHON, bindir / "python3.11")
    for alias in ("python3", "python"):
        link = bindir / alias
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("python3.11")
    zip_path = root / "usr/lib/python311.zip"  # already first on the default sys.path
    run([str(PYTHON), str(_ZIP_SCRIPT), str(STDLIB), str(zip_path)], step="stdlib zip")
    dyn_src = STDLIB / "lib-dynload"
    dyn_dst = root / "usr/lib/python3.11/lib-dynload"
    dyn_dst.mkdir(parents=True, exist_ok=True)
    elfs = [bindir / "python3.11"]
    for so in sorted(dyn_src.iterdir()):
        if dynload_wanted(so.name):
            shutil.copy2(so, dyn_dst / so.name)
            elfs.append(dyn_dst / so.name)
    return elfs


def install_extra_binaries(root: Path) -> list[Path]:
    """Copy EXTRA_BINARIES (replacing a busybox applet link of the same name); return the ELF files."""
    out: list[Path] = []
    for rel, src in sorted(EXTRA_BINARIES.items()):
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        shutil.copy2(src, dest)
        out.append(dest)
    return out


def _ldd(path: Path) -> dict[str, Path]:
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 and "not a dynamic executable" in proc.stderr + proc.stdout:
        return {}
    proc.check_returncode()
    return parse_ldd(proc.stdout)


def _find_system_lib(soname: str) -> Path:
    for base in (Path("/usr/lib/x86_64-linux-gnu"), Path("/lib/x86_64-linux-gnu")):
        if (base / soname).exists():
            return base / soname
    raise FileNotFoundError(f"shared library {soname} not found on the build host")


def install_shared_libs(root: Path, elfs: Iterable[Path]) -> list[str]:
    """Copy the ldd closure of ``elfs`` (plus dlopened libraries) into the image; return sonames.

    Libraries that resolve inside ``root`` (a wheel's bundled ``pyzmq.libs``) are
    already there.  Files are copied dereferenced, under their soname.
    """
    root_abs = root.resolve()
    needed: dict[str, Path] = {name: _find_system_lib(name) for name in DLOPENED}
    for elf in elfs:
        needed.update(_ldd(elf))
        for soname in DLOPENED:
            needed.update(_ldd(needed[soname]))
    libdir = root / LIBDIR
    libdir.mkdir(parents=True, exist_ok=True)
    copied: list[str] = []
    for soname, src in sorted(needed.items()):
        if src.resolve().is_relative_to(root_abs) or soname.startswith("linux-vdso"):
            continue
        if soname == LOADER:
            shutil.copy(src, libdir / Path(LOADER).name)
            lib64 = root / "usr/lib64"
            lib64.mkdir(parents=True, exist_ok=True)
            loader_link = lib64 / Path(LOADER).name
            if not loader_link.is_symlink():
                loader_link.symlink_to(f"../lib/x86_64-linux-gnu/{Path(LOADER).name}")
        else:
            shutil.copy(src, libdir / Path(soname).name)
        copied.append(soname)
    return copied


def install_ldconfig(root: Path) -> None:
    """Ship a static ldconfig and a prebuilt ld.so.cache.

    pyudev locates libudev with ctypes.util.find_library, which on Linux runs
    ``ldconfig -p``; without the binary and the cache, ``import pyudev`` fails.
    """
    sbin = root / "usr/sbin"
    sbin.mkdir(parents=True, exist_ok=True)
    dest = sbin / "ldconfig"
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    shutil.copy2("/sbin/ldconfig", dest)
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "ld.so.conf").write_text(f"/{LIBDIR}\n")
    # `ldconfig -r` chroots; without root, a user namespace grants that for this one call.
    prefix = [] if os.geteuid() == 0 else ["unshare", "--map-root-user"]
    run([*prefix, "ldconfig", "-r", str(root)], step="ldconfig")


def interpreter_version() -> str:
    """The target interpreter's full version string (part of the cache key)."""
    return run([str(PYTHON), "-c", "import sys; print(sys.version)"], step="python version").strip()


__all__ = [
    "LIBDIR",
    "PYTHON",
    "dynload_wanted",
    "install_extra_binaries",
    "install_interpreter",
    "install_ldconfig",
    "install_shared_libs",
    "interpreter_version",
    "parse_ldd",
]
