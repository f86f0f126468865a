"""Pack a CPython stdlib into one ZIP_STORED zip of sourceless optimize-2 bytecode.

Run as a script by the *target* interpreter (Debian's python3.11), never imported
by the builder: bytecode must match the interpreter that will load it, whatever
Python runs the builder.  Usage: ``python3.11 zip_stdlib.py STDLIB_DIR OUT_ZIP``.
"""

from __future__ import annotations

import importlib.util
import marshal
import sys
import zipfile
from pathlib import Path

# Top-level stdlib entries a provisioning agent never needs.  unittest, ssl and
# sqlite3 stay: pyroute2 imports all three at import time.
EXCLUDE_TOP = frozenset(
    {
        "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
        "distutils", "venv", "dbm", "curses", "lib-dynload", "site-packages", "dist-packages",
        "__pycache__", "turtle.py", "sitecustomize.py", "antigravity.py", "this.py",
        "__phello__", "__hello__.py",
    }
)  # fmt: skip
EXCLUDE_PREFIX = ("config-",)
# One fixed timestamp keeps the zip byte-for-byte reproducible.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def wanted(rel: Path) -> bool:
    """Whether the stdlib file at ``rel`` (relative to the stdlib dir) goes into the zip."""
    top = rel.parts[0]
    if top in EXCLUDE_TOP or top.startswith(EXCLUDE_PREFIX):
        return False
    # Test suites nested in packages (ctypes/test, sqlite3/test, unittest/test) are dead weight.
    return rel.suffix == ".py" and not {"__pycache__", "test", "tests"} & set(rel.parts)


def pyc_bytes(source: bytes, filename: str) -> bytes:
    """Compile at optimize=2 into a sourceless pyc (timestamp 0: there is no source to check)."""
    code = compile(source, filename, "exec", dont_inherit=True, optimize=2)
    return importlib.util.MAGIC_NUMBER + b"\0" * 12 + marshal.dumps(code)


def build(stdlib: Path, out: Path) -> tuple[int, list[str]]:
    """Write the zip; return (modules written, files skipped because they do not compile)."""
    skipped: list[str] = []
    count = 0
    files = sorted(p for p in stdlib.rglob("*.py") if not p.is_symlink())
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in files:
            rel = path.relative_to(stdlib)
            if not wanted(rel):
                continue
            try:
                data = pyc_bytes(path.read_bytes(), f"{stdlib}/{rel.as_posix()}")
            except SyntaxError:
                skipped.append(rel.as_posix())
                continue
            # Sourceless pycs must sit where the .py would (mod.pyc), not in __pycache__.
            info = zipfile.ZipInfo(rel.with_suffix(".pyc").as_posix(), ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
            count += 1
    return count, skipped


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: zip_stdlib.py STDLIB_DIR OUT_ZIP", file=sys.stderr)
        return 2
    count, skipped = build(Path(argv[0]), Path(argv[1]))
    print(f"{count} {len(skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
