"""Fetch Debian's kernel package without installing it: apt-get download + dpkg -x + depmod."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from perceus.stage1.atomic import publish_dir
from perceus.stage1.run import BuildError, run

META_PACKAGE = "linux-image-amd64"
_DONE = ".perceus-extracted"


@dataclass(frozen=True)
class KernelPackage:
    """One concrete kernel image package, e.g. linux-image-6.1.0-57-amd64 at 6.1.192-3."""

    name: str
    version: str


@dataclass(frozen=True)
class KernelTree:
    """An extracted kernel package: the vmlinuz and the module tree of one release."""

    package: KernelPackage
    root: Path
    release: str

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def modules_dir(self) -> Path:
        return self.root / "lib" / "modules" / self.release


def parse_depends(show_text: str, meta: str = META_PACKAGE) -> KernelPackage:
    """Return the concrete linux-image package (and version) that ``apt-cache show <meta>`` depends on.

    Debian's meta package pins its image exactly (``linux-image-6.1.0-57-amd64 (= 6.1.192-3)``),
    so one apt-cache call gives both name and version.
    """
    for line in show_text.splitlines():
        if not line.startswith("Depends:"):
            continue
        for alternative in line.split(":", 1)[1].replace("|", ",").split(","):
            name, _, rest = alternative.strip().partition(" ")
            if name.startswith("linux-image-") and name != meta:
                version = rest.strip().removeprefix("(").removesuffix(")").strip()
                if version.startswith("="):
                    return KernelPackage(name, version.lstrip("= ").strip())
                return KernelPackage(name, "")
    raise LookupError(f"no linux-image dependency found for {meta}")


def parse_version(show_text: str) -> str:
    """Return the Version field of ``apt-cache show --no-all-versions`` output."""
    for line in show_text.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise LookupError("no Version field in apt-cache show output")


def resolve(meta: str = META_PACKAGE) -> KernelPackage:
    """Ask apt which kernel ``meta`` currently points at (no download)."""
    try:
        pkg = parse_depends(run(["apt-cache", "show", "--no-all-versions", meta], step="kernel resolve"), meta)
    except LookupError as exc:
        raise BuildError("kernel resolve", str(exc)) from exc
    if pkg.version:
        return pkg
    show = run(["apt-cache", "show", "--no-all-versions", pkg.name], step="kernel resolve")
    return KernelPackage(pkg.name, parse_version(show))


def release_of(root: Path) -> str:
    """Derive the kernel release (ABI, e.g. 6.1.0-57-amd64) from the extracted tree itself."""
    releases = sorted(p.name for p in (root / "lib" / "modules").iterdir() if p.is_dir())
    if len(releases) != 1:
        raise LookupError(f"expected one kernel release under {root}/lib/modules, found {releases}")
    return releases[0]


def tree_dir(pkg: KernelPackage, cache_dir: Path) -> Path:
    """Where ``pkg`` is (or will be) unpacked under ``cache_dir``."""
    return cache_dir / "kernel" / f"{pkg.name}_{pkg.version}"


def fetch(pkg: KernelPackage, cache_dir: Path) -> KernelTree:
    """Download and unpack ``pkg`` under ``cache_dir`` once; later calls reuse the tree."""
    dest = tree_dir(pkg, cache_dir)
    if (dest / _DONE).exists():
        return KernelTree(pkg, dest, release_of(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        work = Path(tmp)
        # Sandbox user root: _apt cannot write into a root-owned cache directory.
        run(
            ["apt-get", "download", "-o", "APT::Sandbox::User=root", f"{pkg.name}={pkg.version}"],
            step="kernel download",
            cwd=work,
        )
        debs = list(work.glob("*.deb"))
        if len(debs) != 1:
            raise LookupError(f"apt-get download produced {debs}")
        tree = work / "tree"
        run(["dpkg", "-x", str(debs[0]), str(tree)], step="kernel extract")
        release = release_of(tree)
        # The package ships no modules.dep; depmod on the full tree lets us compute
        # dependency closures of the modules we pick.
        run(["depmod", "-b", str(tree), release], step="kernel depmod")
        (tree / _DONE).write_text(f"{pkg.name} {pkg.version}\n")
        publish_dir(tree, dest, complete=Path(_DONE))
    return KernelTree(pkg, dest, release_of(dest))
