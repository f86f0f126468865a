"""Perceus 1.x modules (`.pmod`, a bzip2 tar of `nodescripts/`, `defaultroles` …) installed and linked.

Import unpacks into a temporary directory beside `<state>/modules/<name>` and renames it into place, so
a bad archive leaves nothing.  Activation links each `nodescripts/<script>` into
`<state>/nodescripts/<role>/` exactly as 1.x did, so plain shell node scripts keep working unchanged.
Differences, on purpose: archive members that are absolute, climb out with `..`, are devices, or links
pointing outside the module are refused; the module's `install` and `activate` programs are not run
(perceus is root — running a downloaded archive's code at import is the admin's explicit choice).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from perceus.errors import AlreadyExistsError, CapsuleError, ConfigError, NotFoundError, UsageError
from perceus.master.config import Paths
from perceus.master.modules.roles import valid_module_name
from perceus.master.store.models import Activation

MAX_MEMBERS = 10_000
MAX_BYTES = 256 * 1024 * 1024


def modules_dir(paths: Paths) -> Path:
    return paths.state_dir / "modules"


def installed(paths: Paths) -> list[str]:
    base = modules_dir(paths)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def scripts(paths: Paths, name: str) -> list[Path]:
    directory = modules_dir(paths) / name / "nodescripts"
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.endswith("~"))


def default_roles(paths: Paths, name: str) -> list[str]:
    try:
        text = (modules_dir(paths) / name / "defaultroles").read_text()
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _check_member(member: tarfile.TarInfo, top: str) -> str:
    path = PurePosixPath(member.name)
    parts = [p for p in path.parts if p not in (".", "")]
    if path.is_absolute() or ".." in parts:
        raise CapsuleError(f"module archive member {member.name!r} escapes the module directory")
    if not (member.isfile() or member.isdir() or member.issym()):
        raise CapsuleError(f"module archive member {member.name!r} is not a file, directory or link")
    if member.issym():
        target = PurePosixPath(member.linkname)
        if target.is_absolute() or ".." in target.parts:
            raise CapsuleError(f"module archive link {member.name!r} → {member.linkname!r} leaves the module")
    if parts and parts[0] == top:  # archives made as `tar cjf x.pmod x/` carry the name as first part
        parts = parts[1:]
    return "/".join(parts)


def import_pmod(paths: Paths, archive: Path) -> str:
    """Unpack `archive` to `<state>/modules/<name>`; returns the name."""
    if archive.suffix != ".pmod":
        raise UsageError(f"{archive} is not a valid Perceus Module (*.pmod)")
    name = archive.name[: -len(".pmod")]
    if not valid_module_name(name):
        raise UsageError(f"{name!r} is not a valid module name")
    base = modules_dir(paths)
    dest = base / name
    if dest.exists():
        raise AlreadyExistsError("module", name)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=base))
    try:
        try:
            with tarfile.open(archive, "r:bz2") as tar:
                members = tar.getmembers()
                if len(members) > MAX_MEMBERS or sum(m.size for m in members) > MAX_BYTES:
                    raise CapsuleError(f"{archive}: too large for a module")
                for member in members:
                    rel = _check_member(member, name)
                    if not rel:
                        continue
                    target = tmp / rel
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                    elif member.issym():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.symlink(member.linkname, target)
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        src = tar.extractfile(member)
                        assert src is not None
                        with src, open(target, "wb") as out:
                            shutil.copyfileobj(src, out)
                        os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UsageError(f"{archive} is not a valid Perceus Module (*.pmod): {exc}") from None
        if not (tmp / "nodescripts").is_dir():
            raise UsageError(f"{archive} is not a valid Perceus Module (*.pmod): no nodescripts/ directory")  # noqa: TRY301 - the except below cleans up
        os.chmod(tmp, 0o755)  # noqa: S103 - node scripts are executable by design
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return name


def role_dir(paths: Paths, activation: Activation) -> Path:
    return paths.nodescripts / activation.role


def link(paths: Paths, activation: Activation) -> list[Path]:
    """Symlink the module's scripts into the role's nodescripts directory; returns the links made.  A file
    already there that is not our link is an admin's override and is left alone."""
    made: list[Path] = []
    directory = role_dir(paths, activation)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for script in scripts(paths, activation.module):
            dest = directory / script.name
            if dest.is_symlink() and Path(os.readlink(dest)) == script:
                continue
            if dest.exists() or dest.is_symlink():
                continue
            os.symlink(script, dest)
            made.append(dest)
    except OSError as exc:
        for path in made:
            path.unlink(missing_ok=True)
        raise ConfigError(f"cannot link module scripts: {exc}", path=str(directory)) from None
    return made


def unlink(paths: Paths, activation: Activation) -> int:
    directory = role_dir(paths, activation)
    removed = 0
    for script in scripts(paths, activation.module):
        dest = directory / script.name
        if dest.is_symlink() and Path(os.readlink(dest)) == script:
            dest.unlink()
            removed += 1
    return removed


def delete(paths: Paths, name: str) -> None:
    dest = modules_dir(paths) / name
    if not dest.is_dir():
        raise NotFoundError("module", name)
    shutil.rmtree(dest)
