"""Hybrid capsules (1.x ref §9.5): the `hybridize` list, its paths left out of the RAM image, the NFS export tree.

A capsule with TYPE=hybrid names directories in a `hybridize` list (one path or glob per line, `#` comments,
as 1.x).  At every pack the list is resolved against `rootfs/`:

* each entry must be a real directory inside the root: `..`, `/` itself, a path through a symbolic link (the
  `usr -> /somewhere` escape) or ending in one, a file, a missing path or a glob matching nothing are refused
  with one line, and nothing is packed (an import then stores nothing);
* those directories are left out of the cpio stream the node boots (kept as empty mount points), and the
  stream gains `/etc/perceus/hybrid.conf`, which tells provisiond what to mount from where;
* `<capsule>/nfs/` becomes a hard-link snapshot of exactly those directories (no other file of the capsule is
  ever exported: a root holds host keys and password hashes), which perceus-bus exports read-only over NFSv4
  as `/perceus/<capsule>` (netmgr/nfs.py); `<capsule>/hybrid.json` records paths, sizes and a stamp.

Differences from 1.x, on purpose: 1.x replaced the paths by symlinks into an NFS mount of the whole state dir
(every capsule's root readable by anyone on the provisioning network); here only the hybridized directories
are exported and mounted in place.  The capsule's own list wins over the global `<config>/hybridize` (1.x
preferred the global file): a list given at import is not silently replaced.  Only directories are
hybridized (1.x's defaults are all directories).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import structlog

from perceus.errors import CapsuleError
from perceus.master.capsule import cpio
from perceus.master.capsule.config import CapsuleConfig
from perceus.master.capsule.layout import CapsuleDir
from perceus.master.fsutil import atomic_write

log = structlog.get_logger("perceus.capsule")

LIST_FILE = "hybridize"  # the capsule's list, as 1.x kept it next to `config`
EXPORT_DIR = "nfs"
SUMMARY_FILE = "hybrid.json"
IN_IMAGE = "etc/perceus/hybrid.conf"  # read by the node (agent/perceus/agent/hybrid_mount.py)
PSEUDO_ROOT = "/perceus"
_MAGIC = frozenset("*?[")
# Never left out of the RAM image: the node needs them before (or to) mount anything.
_KEEP = ("etc", "dev", "proc", "sys", "run", "tmp")


def pseudo_path(name: str) -> str:
    """The capsule's NFSv4 pseudo path on the master: `/perceus/<name>`."""
    return f"{PSEUDO_ROOT}/{name}"


def export_dir(cap: CapsuleDir) -> Path:
    return cap.root / EXPORT_DIR


def summary_path(cap: CapsuleDir) -> Path:
    return cap.root / SUMMARY_FILE


def parse_list(text: str, where: str) -> list[str]:
    """The entries of a hybridize file: one path or glob per line; blank lines and `#` comments skipped."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "\0" in line:
            raise CapsuleError(f"{where}: hybridize entry {line!r} holds a NUL byte")
        out.append(line)
    return out


def list_source(config_dir: Path, cap: CapsuleDir, cfg: CapsuleConfig) -> Path | None:
    """Which hybridize file applies: HYBRIDIZE_FILE when set and present, the capsule's own, the global one."""
    named = cfg.values.get("HYBRIDIZE_FILE", "")
    candidates: list[Path] = []
    if named:
        # 1.x's default value names /etc/perceus; our config dir may live elsewhere.
        rel = named.removeprefix("/etc/perceus/")
        candidates.append(config_dir / rel if rel != named else Path(named))
    candidates += [cap.root / LIST_FILE, config_dir / LIST_FILE]
    return next((p for p in candidates if p.is_file()), None)


def _refuse(where: str, entry: str, why: str) -> CapsuleError:
    return CapsuleError(f"{where}: hybridize entry {entry!r} {why}; nothing was packed")


def _expand(rootfs: Path, entry: str, where: str) -> list[str]:
    """The capsule-relative directories an entry names, walking one component at a time without following links."""
    parts = [p for p in entry.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _refuse(where, entry, "climbs out of the capsule root (..)")
    if not parts:
        raise _refuse(where, entry, "is the capsule root itself")
    found = [""]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: list[str] = []
        for base in found:
            names = (
                sorted(n for n in os.listdir(rootfs / base) if fnmatch.fnmatchcase(n, part))
                if _MAGIC & set(part)
                else [part]
            )
            for n in names:
                rel = f"{base}/{n}" if base else n
                try:
                    st = os.lstat(rootfs / rel)
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(st.st_mode):
                    why = f"goes through the symbolic link /{rel} (it could point out of the root)"
                    raise _refuse(where, entry, why)
                if not stat.S_ISDIR(st.st_mode):
                    if last and not _MAGIC & set(part):
                        raise _refuse(where, entry, f"is not a directory (/{rel}); only directories are hybridized")
                    continue
                nxt.append(rel)
        found = nxt
        if not found:
            what = "matches nothing" if _MAGIC & set(entry) else "does not exist"
            raise _refuse(where, entry, f"{what} in the capsule")
    return found


def resolve(rootfs: Path, entries: Iterable[str], where: str) -> tuple[str, ...]:
    """Every entry expanded and checked; sorted, without duplicates and without paths inside another one."""
    chosen: set[str] = set()
    for entry in entries:
        for rel in _expand(rootfs, entry, where):
            top = rel.split("/", 1)[0]
            if top in _KEEP:
                raise _refuse(where, entry, f"names /{rel}, which the node needs in RAM (/{top})")
            chosen.add(rel)
    out = sorted(chosen)
    return tuple(p for p in out if not any(p.startswith(q + "/") for q in out if q != p))


@dataclass(frozen=True)
class Plan:
    """The resolved hybridize list of one pack."""

    name: str
    paths: tuple[str, ...]  # capsule-relative directories, no leading slash
    source: str  # the list file used

    @property
    def export(self) -> str:
        return pseudo_path(self.name)

    def excluded(self, member: str) -> bool:
        """True for what lives under a hybridized directory (the directory itself stays as a mount point)."""
        return any(member.startswith(p + "/") for p in self.paths)

    def image_file(self) -> bytes:
        lines = [
            f"# Perceus hybrid capsule {self.name}: these directories are mounted read-only over NFSv4",
            "# from the master before provisiond starts (written by perceus at pack time).",
            f"export {self.export}",
            *(f"mount /{p}" for p in self.paths),
        ]
        return ("\n".join(lines) + "\n").encode()


def plan_for(config_dir: Path, cap: CapsuleDir, cfg: CapsuleConfig, name: str) -> Plan:
    """Read and resolve the list that applies to `cap` (CapsuleError when there is none or it is bad)."""
    source = list_source(config_dir, cap, cfg)
    if source is None:
        raise CapsuleError(
            f"capsule {name!r} is hybrid but has no hybridize list: give --hybridize FILE, "
            f"or put one in {cap.root / LIST_FILE} or {config_dir / LIST_FILE}"
        )
    # The capsule's own list is named by capsule (during an import it still sits in a temp dir).
    where = f"VNFS {name!r} hybridize list" if source == cap.root / LIST_FILE else str(source)
    entries = parse_list(source.read_text(encoding="utf-8", errors="replace"), where)
    if not entries:
        raise CapsuleError(f"{where}: the list is empty; capsule {name!r} is hybrid")
    return Plan(name, resolve(cap.rootfs, entries, where), where)


def _dir_entry(name: str, mode: int) -> cpio.Entry:
    return cpio.Entry(name, cpio.header(name=name, mode=mode, uid=0, gid=0, mtime=0, filesize=0), 0)


def image_entries(entries: Iterable[cpio.Entry], plan: Plan, rootfs: Path) -> Iterator[cpio.Entry]:
    """The capsule's stream minus the hybridized trees, plus `/etc/perceus/hybrid.conf` before the trailer."""
    for e in entries:
        if e.name == cpio.TRAILER:
            for d in ("etc", "etc/perceus"):
                if not (rootfs / d).is_dir() or (rootfs / d).is_symlink():
                    yield _dir_entry(d, stat.S_IFDIR | 0o755)
            data = plan.image_file()
            head = cpio.header(name=IN_IMAGE, mode=stat.S_IFREG | 0o644, uid=0, gid=0, mtime=0, filesize=len(data))
            yield cpio.Entry(IN_IMAGE, head, len(data), data=data)
        elif plan.excluded(e.name) or e.name == IN_IMAGE:
            continue
        elif e.name in plan.paths:
            # The mount point without its mtime: a change in the NFS part alone makes no new RAM image version.
            st = os.lstat(rootfs / e.name)
            owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 else (0, 0)
            yield cpio.Entry(e.name, cpio.header(name=e.name, mode=st.st_mode, uid=owner[0], gid=owner[1], mtime=0,
                                                 filesize=0), 0)  # fmt: skip
        else:
            yield e


# ---------------------------------------------------------------------------------------------- export tree


def _walk(root: Path, rel: str) -> Iterator[tuple[str, os.stat_result]]:
    st = os.lstat(root / rel)
    yield rel, st
    if stat.S_ISDIR(st.st_mode):
        for name in sorted(os.listdir(root / rel)):
            yield from _walk(root, f"{rel}/{name}")


def _stamp(rootfs: Path, paths: tuple[str, ...]) -> tuple[str, int, int]:
    """(digest of the listing, regular-file bytes, entries) of the hybridized trees."""
    h = blake3.blake3()
    size = count = 0
    for p in paths:
        for rel, st in _walk(rootfs, p):
            h.update(f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_uid}\0{st.st_gid}\n"
                     .encode("utf-8", "surrogateescape"))  # fmt: skip
            count += 1
            if stat.S_ISREG(st.st_mode):
                size += st.st_size
    return h.hexdigest(), size, count


def _copy_tree(rootfs: Path, dest: Path, paths: tuple[str, ...]) -> None:
    """Hard links of every non-directory (the same inodes: no second copy on disk), directories re-made."""
    for p in paths:
        for rel, st in _walk(rootfs, p):
            src, dst = rootfs / rel, dest / rel
            if stat.S_ISDIR(st.st_mode):
                dst.mkdir(parents=True, exist_ok=True)
                continue
            try:
                os.link(src, dst, follow_symlinks=False)
            except OSError:  # another file system, or a kernel forbidding links to others' files: copy
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(src), dst)
                elif stat.S_ISREG(st.st_mode):
                    shutil.copy2(src, dst, follow_symlinks=False)
                else:
                    continue  # a device or fifo that cannot be linked is no use over NFS
        for rel, st in reversed(list((r, s) for r, s in _walk(rootfs, p) if stat.S_ISDIR(s.st_mode))):
            d = dest / rel
            if os.geteuid() == 0:
                os.chown(d, st.st_uid, st.st_gid)
            os.chmod(d, stat.S_IMODE(st.st_mode))
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Parents of the hybridized directories: plain 0755, so the export root and the way down are traversable.
    for p in paths:
        for parent in Path(p).parents:
            if parent != Path("."):
                os.chmod(dest / parent, 0o755)  # noqa: S103 - a read-only export nodes must traverse


def read_summary(cap: CapsuleDir) -> dict[str, Any] | None:
    try:
        data = json.loads(summary_path(cap).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_export(cap: CapsuleDir, plan: Plan) -> dict[str, Any]:
    """Make `<capsule>/nfs/` the snapshot of the plan's directories (skipped when nothing changed)."""
    digest, size, count = _stamp(cap.rootfs, plan.paths)
    stamp = blake3.blake3(f"{digest}\0{','.join(plan.paths)}".encode()).hexdigest()[:32]
    old = read_summary(cap)
    shown = [f"/{p}" for p in plan.paths]
    summary = {"name": plan.name, "export": plan.export, "paths": shown,
               "bytes": size, "entries": count, "stamp": stamp, "list": plan.source}  # fmt: skip
    if old is not None and old.get("stamp") == stamp and export_dir(cap).is_dir():
        if old != summary:
            atomic_write(summary_path(cap), json.dumps(summary, indent=1).encode(), mode=0o644)
        return summary
    new = cap.root / f".{EXPORT_DIR}-new"
    stale = cap.root / f".{EXPORT_DIR}-old"
    for d in (new, stale):
        shutil.rmtree(d, ignore_errors=True)
    new.mkdir(mode=0o755)
    _copy_tree(cap.rootfs, new, plan.paths)
    os.chmod(new, 0o755)  # noqa: S103 - the export root: nodes must traverse it
    if export_dir(cap).exists():
        os.rename(export_dir(cap), stale)
    os.rename(new, export_dir(cap))
    shutil.rmtree(stale, ignore_errors=True)
    atomic_write(summary_path(cap), json.dumps(summary, indent=1).encode(), mode=0o644)
    log.info("hybrid_export_written", capsule=plan.name, paths=",".join(shown), bytes=size,
             entries=count, stamp=stamp)  # fmt: skip
    return summary


def drop_export(cap: CapsuleDir) -> None:
    """A capsule that is no longer hybrid exports nothing."""
    shutil.rmtree(export_dir(cap), ignore_errors=True)
    summary_path(cap).unlink(missing_ok=True)


@dataclass(frozen=True)
class Export:
    """One hybrid capsule as the NFS server sees it."""

    name: str
    path: Path
    pseudo: str
    stamp: str


def exports(vnfs: Path) -> list[Export]:
    """Every capsule under `vnfs` with an export tree and a summary, sorted by name (what ganesha serves)."""
    out: list[Export] = []
    if not vnfs.is_dir():
        return out
    for d in sorted(vnfs.iterdir()):
        if d.name.startswith(".") or not (d / "config").is_file():
            continue
        cap = CapsuleDir(d)
        summary = read_summary(cap)
        if summary is None or not export_dir(cap).is_dir():
            continue
        out.append(Export(d.name, export_dir(cap), pseudo_path(d.name), str(summary.get("stamp", ""))))
    return out
