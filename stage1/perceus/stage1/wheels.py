"""The node-side Python libraries: pinned binary wheels installed for the image's interpreter."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from perceus.stage1.agentsrc import SITE
from perceus.stage1.atomic import publish_dir
from perceus.stage1.pyruntime import PYTHON
from perceus.stage1.run import run

# Pinned so the image (and its cache key) changes only when someone bumps a pin.
# typing_extensions and pycparser are dependencies (structlog, cffi) pinned for the same reason.
PINS: tuple[str, ...] = (
    "pyzmq==27.3.0",
    "msgpack==1.2.4",
    "pyroute2==0.9.7",
    "pyudev==0.24.5",
    "cffi==2.1.1",
    "pycparser==3.12",
    "structlog==26.1.0",
    "typing_extensions==4.16.0",
    "blake3==1.0.11",
    "zstandard==0.25.0",
    "PyNaCl==1.6.2",  # Ed25519 capsule signatures (perceus.agent.security)
)
# What the self-test imports: every third-party module the agent may use.
IMPORT_NAMES: tuple[str, ...] = (
    "zmq", "msgpack", "pyroute2", "pyudev", "cffi", "structlog", "blake3", "zstandard", "nacl",
)  # fmt: skip

# Dropped after install: console scripts, test suites, type stubs, and zstandard's
# cffi backend (12 MB; the C backend is the default and enough).
PRUNE_GLOBS: tuple[str, ...] = (
    "bin",
    "zmq/tests",
    "**/*.pyi",
    "zstandard/_cffi.*.so",
    "zstandard/backend_cffi.py",
)
_DONE = ".perceus-installed"
# Bump when the post-install treatment (prune, strip, compile) changes.
SITE_FORMAT = 2


def site_key(pins: tuple[str, ...] = PINS, python_version: str = "") -> str:
    """Cache key of an installed wheel set: pins plus the interpreter version."""
    blob = "\n".join((f"format={SITE_FORMAT}", python_version, *pins)).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _prune(site: Path) -> None:
    for pattern in PRUNE_GLOBS:
        for path in site.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _strip(site: Path) -> None:
    # Some wheels ship unstripped extension modules (zstandard's backend: 11.6 MB -> 1 MB).
    strip = shutil.which("strip")
    if strip is None:
        return
    sos = sorted(str(p) for p in site.rglob("*.so*") if p.is_file() and not p.is_symlink())
    if sos:
        run([strip, "--strip-unneeded", *sos], step="strip wheels")


def compile_tree(path: Path, image_path: str) -> None:
    """Precompile with unchecked-hash pycs: no stat of sources at import, ~2x faster under TCG.

    ``image_path`` is where ``path`` sits inside the image; recording it (-d) as the
    code's file name gives right tracebacks on nodes and build-path-independent pycs.
    """
    run(
        [str(PYTHON), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-d", image_path, str(path)],
        step="compileall",
    )  # fmt: skip


def site_dir(cache_dir: Path, python_version: str, pins: tuple[str, ...] = PINS) -> Path:
    """Where the wheel set for ``pins`` is (or will be) installed under ``cache_dir``."""
    return cache_dir / "wheels" / site_key(pins, python_version)


def install(cache_dir: Path, python_version: str, pins: tuple[str, ...] = PINS) -> Path:
    """Install ``pins`` once into a cached site directory and return it."""
    dest = site_dir(cache_dir, python_version, pins)
    if (dest / _DONE).exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".install-") as tmp:
        site = Path(tmp) / "site"
        # --target skips Debian's externally-managed check and never touches the host's Python.
        run(
            [
                str(PYTHON), "-m", "pip", "install", "--quiet", "--only-binary=:all:", "--no-compile",
                "--disable-pip-version-check", "--no-warn-script-location", "--target", str(site), *pins,
            ],
            step="pip install",
        )  # fmt: skip
        _prune(site)
        _strip(site)
        compile_tree(site, f"/{SITE}")
        (site / _DONE).write_text("\n".join(pins) + "\n")
        publish_dir(site, dest, complete=Path(_DONE))
    return dest
