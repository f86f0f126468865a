"""Berkeley DB reader for Perceus 1.x node tables (`*.bdb` BTREE, `*.db` HASH) via Debian's `db_dump`.

Why `db_dump` (package `db5.3-util`) and not the `berkeleydb` pip binding: the binding needs libdb headers and
a compiler on every master and CI machine, while `db5.3-util` is one apt package with a stable text output.
The file is first copied into a private temporary directory and only the copy is dumped (and, for old
on-disk versions, upgraded), so the original can never be opened for writing, not even by accident.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from perceus.errors import PerceusError

# Debian ships versioned names (db5.3_dump); `db-util` adds the plain ones.  Newest first.
_DUMP_NAMES = ("db_dump", "db5.3_dump", "db5.1_dump", "db4.8_dump", "db4.7_dump", "db4.6_dump")
DUMP_TIMEOUT = 60.0


class BerkeleyDBError(PerceusError):
    """A Berkeley DB table could not be read."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read Berkeley DB file {path}: {reason}")
        self.path = path
        self.reason = reason


def find_db_dump() -> str:
    """Path of a `db_dump` binary; PerceusError naming the package to install when there is none."""
    for name in _DUMP_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise PerceusError("no db_dump found: install the Debian package db5.3-util (apt-get install db5.3-util)")


def _upgrade_tool(dump: str) -> str | None:
    name = Path(dump).name.replace("_dump", "_upgrade")
    return shutil.which(name, path=str(Path(dump).parent)) or shutil.which(name)


def parse_dump(text: str, path: Path) -> dict[bytes, bytes]:
    """Parse `db_dump` bytevalue output (header lines, then alternating ` hex` key and value lines)."""
    lines = text.splitlines()
    try:
        start = lines.index("HEADER=END") + 1
        end = lines.index("DATA=END", start)
    except ValueError:
        raise BerkeleyDBError(path, "db_dump output has no data section") from None
    header = dict(line.split("=", 1) for line in lines[: start - 1] if "=" in line)
    if header.get("format") != "bytevalue":
        raise BerkeleyDBError(path, f"unexpected db_dump format {header.get('format')!r}")
    body = lines[start:end]
    if len(body) % 2:
        raise BerkeleyDBError(path, "db_dump output has a key without a value")
    table: dict[bytes, bytes] = {}
    try:
        for i in range(0, len(body), 2):
            table[bytes.fromhex(body[i].strip())] = bytes.fromhex(body[i + 1].strip())
    except ValueError:
        raise BerkeleyDBError(path, "db_dump output is not hexadecimal") from None
    return table


def _run(argv: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=DUMP_TIMEOUT, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise BerkeleyDBError(path, f"{Path(argv[0]).name} timed out") from None
    except OSError as exc:
        raise BerkeleyDBError(path, f"cannot run {argv[0]}: {exc.strerror}") from None


def read_table(path: Path, *, dump: str | None = None) -> dict[bytes, bytes]:
    """All key → value pairs of one Berkeley DB file (BTREE or HASH), read from a private copy."""
    dump = dump or find_db_dump()
    with tempfile.TemporaryDirectory(prefix="perceus1-bdb-") as tmp:
        copy = Path(tmp) / path.name
        try:
            shutil.copyfile(path, copy)  # read-only open of the original; db tools only see the copy
        except OSError as exc:
            raise BerkeleyDBError(path, exc.strerror or str(exc)) from None
        os.chmod(copy, 0o600)
        # -h tmp keeps any environment files db_dump might create inside the temporary directory.
        proc = _run([dump, "-h", tmp, str(copy)], path)
        if proc.returncode != 0 and "upgrade" in proc.stderr.lower():
            # An older on-disk version (BDB 4.x written by an old Perl DB_File): upgrade the copy only.
            upgrade = _upgrade_tool(dump)
            if upgrade:
                _run([upgrade, "-h", tmp, str(copy)], path)
                proc = _run([dump, "-h", tmp, str(copy)], path)
        if proc.returncode != 0:
            reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            raise BerkeleyDBError(path, reason)
        return parse_dump(proc.stdout, path)
