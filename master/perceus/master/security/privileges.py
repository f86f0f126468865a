"""`perceus-bus --user NAME`: give up root once every socket is bound (Perceus 1.x ran everything as root).

What the daemon still writes afterwards — the state dir itself, the SQLite store and its journal, run/ and
log/ — is handed to the user first; capsules and chunks stay root-owned and are only read.
"""

from __future__ import annotations

import os
import pwd

import structlog

from perceus.errors import ConfigError
from perceus.master.config import Paths

log = structlog.get_logger("perceus.security")


def drop_privileges(user: str, paths: Paths) -> None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"--user {user}: no such user") from None
    if os.geteuid() != 0:
        if os.geteuid() == entry.pw_uid:
            return
        raise ConfigError(f"--user {user}: perceus-bus is not running as root")
    writable = [paths.state_dir, paths.run, paths.logs]
    db = paths.database
    writable += [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    writable += [p for p in paths.logs.glob("*") if p.is_file()] + [p for p in paths.run.iterdir() if p.exists()]
    for path in writable:
        try:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        except FileNotFoundError:
            continue
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if os.getuid() == 0 or os.geteuid() == 0:  # paranoia: a failed setuid must never pass silently
        raise ConfigError(f"--user {user}: could not drop root")
    log.info("privileges_dropped", user=user, uid=entry.pw_uid, gid=entry.pw_gid)
