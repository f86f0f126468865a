"""The stock Perceus 1.x module generators, produced natively: the same bytes, without a process per request.

A 1.x node-script tree holds executable generators the master runs on every request (`hostname/49-hostname.sh`,
`masterauth/50-masterauth.pl` …, symlinked into `nodescripts/<state>/all/`).  Forking sh and Perl for each one
caps a 1.x master at a few hundred requests per second.  Here a generator whose bytes are exactly a stock 1.x
script (SHA-256 of the file) is answered by a Python function that reproduces its output byte for byte on this
master; anything else — an admin's own generator, a stock script edited by one byte — still runs as a process.
A native generator returns None for inputs whose output it does not reproduce exactly (odd characters in a
name, a shell quirk it does not model) and the real script runs instead.  tests/integration/legacy/
test_stock_generators.py proves byte identity against the real scripts.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

Native = Callable[[Mapping[str, str]], str | None]

# Values a stock shell script may see unquoted or through dash's `echo` (which reads backslash escapes):
# anything else goes to the real script.
_PLAIN = re.compile(r"[A-Za-z0-9._+@%,=-]+")
PASSWD_TTL = 1.0  # the account tables are re-read at most once a second (as plans are: nodescripts.PLAN_TTL)


@cache
def _sh_test_has_double_equals() -> bool:
    """Whether this master's /bin/sh `[` accepts `==` (bash: yes; dash: no — it errors and the test is false).

    49-hostname.sh tests `[ $STATE == "init" ]`, so its output depends on which shell /bin/sh is.
    """
    try:
        return subprocess.run(["/bin/sh", "-c", '[ init == "init" ]'], capture_output=True, check=False).returncode == 0
    except OSError:
        return False


def hostname_sh(env: Mapping[str, str]) -> str | None:
    """modules/hostname/49-hostname.sh (1.6–1.9): a network file in init, `hostname NAME` otherwise."""
    state, name = env.get("STATE", ""), env.get("NODENAME", "")
    if not _PLAIN.fullmatch(state) or not _PLAIN.fullmatch(name):
        return None  # `$STATE` is unquoted in the script, dash's echo interprets backslashes: let sh decide
    if state == "init" and _sh_test_has_double_equals():
        return (
            "mkdir -p $DESTDIR/etc/sysconfig\n"
            "cat <<EOL > $DESTDIR/etc/sysconfig/network\n"
            "NETWORKING=yes\n"
            f"HOSTNAME={name}\n"
            "EOL\n"
        )
    return f"hostname {name}\n"


def _bsd_sum(data: bytes) -> int:
    """The script's `sum` sub (BSD checksum, `sum -r`): rotate right one bit, add the byte, 16 bits."""
    crc = 0
    for byte in data:
        crc = ((crc >> 1) + ((crc & 1) << 15) + byte) & 0xFFFF
    return crc


def _accounts() -> tuple[bytes, bytes]:
    """passwd and group lines as 50-masterauth.pl builds them from getpwent/getgrent (NSS order)."""
    enc = os.fsencode
    passwd = b"".join(
        b"%s:x:%d:%d:%s:%s:%s\n" % (enc(p.pw_name), p.pw_uid, p.pw_gid, enc(p.pw_gecos), enc(p.pw_dir), enc(p.pw_shell))
        for p in pwd.getpwall()
    )
    group = b"".join(
        b"%s:x:%d:%s\n" % (enc(g.gr_name), g.gr_gid, b",".join(enc(m) for m in g.gr_mem if m)) for g in grp.getgrall()
    )
    return passwd, group


_masterauth_cache: dict[str, tuple[float, str]] = {}


def masterauth_pl(env: Mapping[str, str]) -> str | None:
    """modules/masterauth/50-masterauth.pl (1.6–1.9): the master's passwd and group, checksummed (any state)."""
    del env  # the script reads nothing from its environment
    now = time.monotonic()
    hit = _masterauth_cache.get("text")
    if hit is not None and now - hit[0] < PASSWD_TTL:
        return hit[1]
    passwd, group = _accounts()
    d = b"/etc"
    out = b"".join(
        [
            b"if which sum >/dev/null 2>&1; then\n",
            b'SUM=`sum -r %s/passwd | cut -d " " -f 1`\n' % d,
            b'if [ "x$SUM" != "x%d" ]; then\n' % _bsd_sum(passwd),
            b"cat <<EOF > %s/.perceus_passwd\n" % d,
            passwd,
            b"EOF\n",
            b"chmod --reference %s/passwd %s/.perceus_passwd\n" % (d, d),
            b"mv %s/.perceus_passwd %s/passwd\n" % (d, d),
            b"fi\n",
            b'SUM=`sum -r %s/group | cut -d " " -f 1`\n' % d,
            b'if [ "x$SUM" != "x%d" ]; then\n' % _bsd_sum(group),
            b"cat <<EOF > %s/.perceus_group\n" % d,
            group,
            b"EOF\n",
            b"chmod --reference %s/group %s/.perceus_group\n" % (d, d),
            b"mv %s/.perceus_group %s/group\n" % (d, d),
            b"fi\n",
            b"else\n",
            b"cat <<EOF > %s/passwd\n" % d,
            passwd,
            b"EOF\n",
            b"cat <<EOF > %s/group\n" % d,
            group,
            b"EOF\n",
            b"fi\n",
        ]
    )
    text = out.decode("utf-8", "replace")  # as nodescripts decodes a generator's stdout
    _masterauth_cache["text"] = (now, text)
    return text


# SHA-256 of the exact stock files (identical in Perceus 1.6.2 and 1.9.3, github.com/perceus/perceus).
STOCK: dict[str, tuple[str, Native]] = {
    "c0f3b121487c946c7479d9eaccefedd0143682f69785168f0b61bf7a8447853c": ("hostname/49-hostname.sh", hostname_sh),
    "0bdbff36b5edc34d8ed145e8bacf2f304623fe31e3aa099b6641611051d118b0": ("masterauth/50-masterauth.pl", masterauth_pl),
}

_recognised: dict[Path, tuple[tuple[int, int, int], Native | None]] = {}


def recognise(path: Path) -> Native | None:
    """The native generator for `path` when its bytes are a stock 1.x script (cached by inode, size, mtime)."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _recognised.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    native: Native | None = None
    if st.st_size < 64 * 1024:
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            digest = ""
        found = STOCK.get(digest)
        native = found[1] if found else None
    _recognised[path] = (key, native)
    return native
