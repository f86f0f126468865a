"""kexec wrapper: errno → KexecError/DriverError mapping in `_check`, command-line encoding (no syscalls)."""

from __future__ import annotations

import ast
import errno
import os
import platform
from pathlib import Path

import pytest

from perceus.agent import kexec
from perceus.agent.failures import DriverError
from perceus.errors import KexecError


def test_success_passes_the_result_through() -> None:
    assert kexec._check(0, 0, "kexec_file_load") == 0
    assert kexec._check(7, errno.EPERM, "finit_module", reasons=kexec.MODULE_REASONS) == 7


@pytest.mark.parametrize(
    ("err", "words"),
    [
        (errno.EPERM, "CAP_SYS_BOOT"),
        (errno.ENOEXEC, "not a bootable kernel"),
        (errno.EKEYREJECTED, "signature was rejected"),
        (errno.EBUSY, "another kexec"),
        (errno.EINVAL, "command line"),
        (errno.ENOMEM, "not enough memory"),
        (errno.ENOSYS, "CONFIG_KEXEC_FILE"),
        (errno.EIO, "Input/output error"),  # unmapped: strerror
    ],
)
def test_kexec_errno_mapping(err: int, words: str) -> None:
    with pytest.raises(KexecError) as exc:
        kexec._check(-1, err, "kexec_file_load", subject="vmlinuz")
    assert exc.value.errno == err
    text = str(exc.value)
    assert words in text and errno.errorcode[err] in text and "vmlinuz" in text
    assert text.startswith("kexec_file_load failed: ")


def test_module_errno_mapping_raises_driver_error() -> None:
    with pytest.raises(DriverError) as exc:
        kexec._check(-1, errno.ENOEXEC, "finit_module", reasons=kexec.MODULE_REASONS, subject="e1000.ko")
    assert exc.value.errno == errno.ENOEXEC and exc.value.module == "e1000.ko"
    assert "invalid module format" in str(exc.value)


def test_cmdline_is_nul_terminated_and_length_counts_it() -> None:
    data = kexec.cmdline_bytes(" console=ttyS0 perceus.mode=runtime ")
    assert data == b"console=ttyS0 perceus.mode=runtime\0"
    with pytest.raises(KexecError):
        kexec.cmdline_bytes("a\0b")


def _ffi_arguments(source: str) -> dict[str, object]:
    """The literal arguments of the `_cffi_backend.FFI(...)` call in a generated module, formatting aside."""
    call = next(node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call))
    return {"name": ast.literal_eval(call.args[0])} | {kw.arg or "": ast.literal_eval(kw.value) for kw in call.keywords}


def test_pre_parsed_ffi_matches_the_declarations_and_works() -> None:
    checked_in = (Path(kexec.__file__).parent / "_kexec_ffi.py").read_text()
    assert _ffi_arguments(checked_in) == _ffi_arguments(kexec.ffi_source())  # regenerate: kexec.ffi_source()
    ffi = kexec._ffi()
    assert type(ffi).__module__ == "_cffi_backend"  # the pre-parsed FFI, not cffi.api.FFI parsing CDEF
    if platform.machine() == "x86_64":
        libc = ffi.dlopen(None)
        assert int(libc.syscall(ffi.cast("long", 39))) == os.getpid()  # getpid(2), through the variadic call
