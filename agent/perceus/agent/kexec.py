"""The agent's only cffi adapter: the kernel syscalls stage one needs (kexec_file_load, reboot, (f)init_module).

cffi in ABI mode (`dlopen(None)`, no compiler in the image).  `syscall()` is variadic, so every argument is
cast to its exact C type; a -1 return becomes a KexecError/DriverError with a readable reason in `_check`.
1.x shelled out to kexec-tools (2.0.4, with a 1.101 fallback) and modprobe; the syscalls need no binaries,
report the real errno, and kexec_file_load lets the kernel verify signatures when the platform enforces them.
`finit_module` lives here too because cffi has one importer (house style); drivers.py decides what to load.
"""

from __future__ import annotations

import errno
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from perceus.agent.failures import DriverError
from perceus.errors import KexecError

log = structlog.get_logger("perceus.agent.kexec")

# (kexec_file_load, finit_module, init_module) per machine; reboot goes through glibc's wrapper (it adds the
# magics).
_SYSCALLS: dict[str, tuple[int, int, int]] = {
    "x86_64": (320, 313, 175),
    "aarch64": (294, 273, 105),
    "riscv64": (294, 273, 105),
    "ppc64le": (382, 353, 128),
    "s390x": (381, 344, 128),
}
LINUX_REBOOT_CMD_KEXEC = 0x45584543
KEXEC_FILE_NO_INITRAMFS = 0x4
MODULE_INIT_COMPRESSED_FILE = 0x4

# Why a kexec load failed, in words an operator can act on (kexec_file_load(2), kernel/kexec_file.c).
KEXEC_REASONS: dict[int, str] = {
    errno.EPERM: "not permitted: needs CAP_SYS_BOOT, or kexec is disabled (kernel.kexec_load_disabled)",
    errno.ENOEXEC: "the kernel image is not a bootable kernel for this architecture (bad bzImage?)",
    errno.EKEYREJECTED: "the kernel's signature was rejected (Secure Boot / lockdown needs a signed kernel)",
    errno.EBUSY: "another kexec image is being loaded or executed",
    errno.EINVAL: "invalid arguments (command line too long or not NUL-terminated, bad flags)",
    errno.ENOMEM: "not enough memory to stage the kernel and initrd",
    errno.EBADF: "a kernel or initrd file descriptor is not valid",
    errno.ENOSYS: "this kernel lacks kexec_file_load (CONFIG_KEXEC_FILE)",
    errno.EMSGSIZE: "the image has too many segments",
    errno.EOVERFLOW: "the image does not fit the memory layout",
    errno.EFBIG: "the kernel or initrd is larger than the kernel accepts",
}

MODULE_REASONS: dict[int, str] = {
    errno.ENOEXEC: "invalid module format (built for another kernel?)",
    errno.ENOENT: "unknown symbol or missing dependency (see dmesg)",
    errno.EKEYREJECTED: "module signature rejected",
    errno.EPERM: "not permitted (needs CAP_SYS_MODULE, or module loading is disabled)",
    errno.EINVAL: "invalid parameters or module header",
    errno.ENOMEM: "out of memory",
    errno.EBUSY: "the module is busy",
    errno.ENODEV: "no matching device (the driver declined)",
    errno.EOPNOTSUPP: "this kernel cannot decompress modules itself (no CONFIG_MODULE_DECOMPRESS)",
}


@dataclass
class _Lib:
    ffi: Any
    libc: Any
    kexec_nr: int
    finit_nr: int
    init_nr: int


_lib: _Lib | None = None


def _libc() -> _Lib:
    global _lib  # noqa: PLW0603 - one lazily set module-level singleton
    if _lib is None:
        import cffi  # imported lazily: the runtime agent never needs it unless it kexecs or loads modules

        machine = platform.machine()
        if machine not in _SYSCALLS:
            raise KexecError(f"kexec is not supported on {machine}", errno=errno.ENOSYS)
        ffi = cffi.FFI()
        ffi.cdef("long syscall(long number, ...); int reboot(int cmd); void sync(void);")
        _lib = _Lib(ffi, ffi.dlopen(None), *_SYSCALLS[machine])
    return _lib


def _check(result: int, err: int, what: str, *, reasons: dict[int, str] = KEXEC_REASONS,
           subject: str = "") -> int:  # fmt: skip
    """The one place a syscall result becomes an exception: -1 + errno → KexecError with a clear reason."""
    if result != -1:
        return result
    reason = reasons.get(err) or os.strerror(err)
    name = errno.errorcode.get(err, str(err))
    text = f"{what} failed: {name}: {reason}" + (f" ({subject})" if subject else "")
    if reasons is MODULE_REASONS:
        raise DriverError(text, module=subject, errno=err)
    raise KexecError(text, errno=err)


def cmdline_bytes(cmdline: str) -> bytes:
    """The command line as the kernel wants it: NUL-terminated (the length passed includes the NUL)."""
    data = cmdline.strip().encode()
    if b"\0" in data:
        raise KexecError("the kexec command line contains a NUL byte", errno=errno.EINVAL)
    return data + b"\0"


def load(kernel: Path, initrd: Path | None, cmdline: str) -> None:
    """kexec_file_load the next kernel (+ initrd) with `cmdline`; it runs at `execute()`."""
    lib = _libc()
    ffi = lib.ffi
    data = cmdline_bytes(cmdline)
    flags = 0 if initrd is not None else KEXEC_FILE_NO_INITRAMFS
    try:
        kfd = os.open(kernel, os.O_RDONLY | os.O_CLOEXEC)
        ifd = os.open(initrd, os.O_RDONLY | os.O_CLOEXEC) if initrd is not None else -1
    except OSError as exc:
        raise KexecError(f"cannot open {exc.filename}: {exc.strerror}", errno=exc.errno or 0) from None
    try:
        buf = ffi.new("char[]", data)
        ffi.errno = 0
        result = lib.libc.syscall(
            ffi.cast("long", lib.kexec_nr), ffi.cast("int", kfd), ffi.cast("int", ifd),
            ffi.cast("unsigned long", len(data)), ffi.cast("char *", buf), ffi.cast("unsigned long", flags),
        )  # fmt: skip
        _check(int(result), ffi.errno, "kexec_file_load", subject=kernel.name)
    finally:
        os.close(kfd)
        if ifd >= 0:
            os.close(ifd)
    log.info("kexec_loaded", kernel=str(kernel), initrd=str(initrd or ""), cmdline=cmdline)


def execute() -> None:
    """Sync filesystems (reboot(KEXEC) does not) and jump into the loaded kernel; returns only on failure."""
    lib = _libc()
    log.info("kexec_started")
    os.sync()
    lib.ffi.errno = 0
    result = lib.libc.reboot(lib.ffi.cast("int", LINUX_REBOOT_CMD_KEXEC))
    _check(int(result), lib.ffi.errno, "reboot(LINUX_REBOOT_CMD_KEXEC)")
    raise KexecError("reboot(LINUX_REBOOT_CMD_KEXEC) returned without switching kernels")


def finit_module(path: Path, params: str = "") -> bool:
    """Load one module file; False if it was already loaded (EEXIST), DriverError on any other failure."""
    lib = _libc()
    ffi = lib.ffi
    flags = MODULE_INIT_COMPRESSED_FILE if path.suffix in (".xz", ".zst", ".gz") else 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise DriverError(f"cannot open module {path}: {exc.strerror}", module=path.name,
                          errno=exc.errno or 0) from None  # fmt: skip
    try:
        pbuf = ffi.new("char[]", params.encode())  # kept alive by this name for the call
        ffi.errno = 0
        result = lib.libc.syscall(
            ffi.cast("long", lib.finit_nr), ffi.cast("int", fd), ffi.cast("char *", pbuf),
            ffi.cast("int", flags),
        )  # fmt: skip
        err = ffi.errno
    finally:
        os.close(fd)
    if int(result) == -1 and err == errno.EEXIST:
        return False
    _check(int(result), err, "finit_module", reasons=MODULE_REASONS, subject=path.name)
    return True


def init_module(image: bytes, name: str, params: str = "") -> bool:
    """Load one module from memory (a compressed module the kernel cannot decompress, decompressed by the
    caller); False if it was already loaded (EEXIST), DriverError on any other failure."""
    lib = _libc()
    ffi = lib.ffi
    buf = ffi.from_buffer(image)
    pbuf = ffi.new("char[]", params.encode())
    ffi.errno = 0
    result = lib.libc.syscall(
        ffi.cast("long", lib.init_nr), ffi.cast("void *", buf), ffi.cast("unsigned long", len(image)),
        ffi.cast("char *", pbuf),
    )  # fmt: skip
    err = ffi.errno
    if int(result) == -1 and err == errno.EEXIST:
        return False
    _check(int(result), err, "init_module", reasons=MODULE_REASONS, subject=name)
    return True
