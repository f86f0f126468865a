"""`perceus-bus --user NAME`: give up root once every socket is bound (Perceus 1.x ran everything as root).

Every secret is read before this runs (bus and signing keys at start, the cluster SSH host keys by
HostKeyDelivery's constructor, perceus.conf by the dispatcher).  Then:
- the state dir itself stays root's (an older version chowned it to the user, who could then swap
  `state/dnsmasq` or `state/log/audit.log` for a symlink and redirect root's later writes) — it is taken back;
- the user owns only what the daemon writes: run/, log/ (and the files in them, never through a symlink), and
  the SQLite store with its WAL files (SQLite keeps them while the bus holds its connection);
- the capsule, manifest and chunk stores stay root-owned; they get the user's group for reading (0750 tops,
  0710 capsule directories: traverse to `manifest`, no listing) — never world-readable.
Root's own writes into the user's directories use O_NOFOLLOW (audit.py) or temp + rename (fsatomic).
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import structlog

from perceus.errors import ConfigError
from perceus.master.capsule.layout import Store
from perceus.master.config import Paths

log = structlog.get_logger("perceus.security")


def _own(path: Path, uid: int, gid: int) -> None:
    try:
        os.chown(path, uid, gid, follow_symlinks=False)
    except FileNotFoundError:
        pass


def _readable_by_group(path: Path, gid: int, mode: int) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    os.chown(path, 0, gid, follow_symlinks=False)
    os.chmod(path, mode)


def prepare_tree(paths: Paths, uid: int, gid: int) -> None:
    """Ownership and modes for a daemon running as uid:gid (as root, before dropping)."""
    state = os.lstat(paths.state_dir)
    if state.st_uid != 0 or state.st_mode & 0o022:
        os.chown(paths.state_dir, 0, 0, follow_symlinks=False)  # taken back from an older `--user` run
        os.chmod(paths.state_dir, state.st_mode & 0o7755)
    for d in (paths.run, paths.logs):
        d.mkdir(parents=True, exist_ok=True)
        _own(d, uid, gid)
        for p in d.iterdir():
            if p.is_file() and not p.is_symlink():
                _own(p, uid, gid)
    db = paths.database
    for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if not p.is_symlink():
            _own(p, uid, gid)
    store = Store(paths)
    for top in (store.chunks, store.manifests, store.vnfs):
        _readable_by_group(top, gid, 0o750)
    if store.vnfs.is_dir():
        for cap in store.vnfs.iterdir():
            _readable_by_group(cap, gid, 0o710)


def drop_privileges(user: str, paths: Paths) -> None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"--user {user}: no such user") from None
    if os.geteuid() != 0:
        if os.geteuid() == entry.pw_uid:
            return
        raise ConfigError(f"--user {user}: perceus-bus is not running as root")
    prepare_tree(paths, entry.pw_uid, entry.pw_gid)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if os.getuid() == 0 or os.geteuid() == 0:  # paranoia: a failed setuid must never pass silently
        raise ConfigError(f"--user {user}: could not drop root")
    log.info("privileges_dropped", user=user, uid=entry.pw_uid, gid=entry.pw_gid)
