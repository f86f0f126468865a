"""Builds a Perceus 1.x master (config dir + state dir) from the spec with the real Berkeley DB tools.

One `db_load -T -t btree|hash` file per attribute, upper-case MAC keys, and the quirks of 1.x ref §3.1: enabled
"0" and "" (both disabled), an empty debug, ipaddr as a decimal uint32, an admin's extra table (`rack`), the
unused `hwaddr` table, a gap in the names (n0002 deleted) and, optionally, a duplicate hostname.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from perceus.master.perceus1.bdb import find_db_dump

MAC = "00:1E:67:00:00:{:02X}".format

PERCEUS_CONF = """\
# Perceus 1.x perceus.conf
master network device = eth1
vnfs transfer method = nfs
vnfs transfer master =
vnfs transfer prefix =
database type = {backend}
database server = localhost
database name = perceus
database user = db user
database pass = db pass
node timeout = 600
controlport bind address = 127.0.0.1
controlport allow address = 127.0.0.1
"""

DEFAULTS_CONF = """\
Node Name = n####
Group Name = cluster
Vnfs Name = centos-5.stateless.x86_64
Enabled = 1
First Node = 0
"""

CAPSULE = "centos-5.stateless.x86_64"


def tables(*, duplicate: bool = False) -> dict[str, dict[str, str]]:
    """field → {NodeID: value}: what the 1.x CLI and perceusd would have written."""
    t: dict[str, dict[str, str]] = {
        "hostname": {MAC(0): "n0000", MAC(1): "n0001", MAC(3): "n0003", MAC(4): "n0004"},
        "group": {MAC(0): "compute", MAC(1): "compute", MAC(3): "gpu", MAC(4): "cluster"},
        "vnfs": {MAC(0): CAPSULE, MAC(1): CAPSULE, MAC(3): CAPSULE, MAC(4): ""},
        "enabled": {MAC(0): "1", MAC(1): "0", MAC(3): "", MAC(4): "1"},
        "debug": {MAC(0): "", MAC(1): "0", MAC(3): "2", MAC(4): ""},
        "desc": {MAC(3): "GPU node, rack 7"},
        "status": {MAC(0): "ready", MAC(1): "init", MAC(3): "halt"},
        "ipaddr": {MAC(0): "167772161", MAC(1): "167772162", MAC(3): "3232235777"},
        "lastcontact": {MAC(0): "1300000000", MAC(1): "1300000100", MAC(3): "1300000200"},
        "hwaddr": {},
        "rack": {MAC(0): "r1", MAC(3): "r7"},
    }
    if duplicate:
        t["hostname"][MAC(5)] = "n0003"  # 1.x allowed it; later in NodeID order than 00:..:03
        t["enabled"][MAC(5)] = "1"
    return t


def _db_load() -> str:
    return str(Path(find_db_dump()).with_name(Path(find_db_dump()).name.replace("_dump", "_load")))


def write_table(path: Path, rows: dict[str, str], kind: str) -> None:
    """One attribute file, written by the real Berkeley DB tool as Perl's DB_File would have."""
    text = "".join(f"{k}\n{v}\n" for k, v in rows.items())
    subprocess.run([_db_load(), "-T", "-t", kind, str(path)], input=text.encode(), check=True)


def build(root: Path, *, backend: str = "btree", duplicate: bool = False) -> tuple[Path, Path]:
    """Create `<root>/etc/perceus` and `<root>/var/lib/perceus`; returns (config dir, state dir)."""
    etc, state = root / "etc" / "perceus", root / "var" / "lib" / "perceus"
    for d in (etc / "modules" / "passwdfile", etc / "keys", state / "database"):
        d.mkdir(parents=True)
    (etc / "perceus.conf").write_text(PERCEUS_CONF.format(backend=backend))
    (etc / "defaults.conf").write_text(DEFAULTS_CONF)
    (etc / "modules" / "ipaddr").write_text("* eth0:[default]/[default]\n")
    (etc / "modules" / "passwdfile" / "all").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "keys" / "ssh_host_rsa_key").write_text("not a real key\n")
    if backend in ("btree", "hash"):
        suffix = ".bdb" if backend == "btree" else ".db"
        for name, rows in tables(duplicate=duplicate).items():
            write_table(state / "database" / f"{name}{suffix}", rows, backend)
    # modules and their activation symlinks (1.x ref §8.1)
    for module, script in (("hostname", "49-hostname.sh"), ("masterauth", "50-masterauth.pl")):
        d = state / "modules" / module / "nodescripts"
        d.mkdir(parents=True)
        (d / script).write_text(f"#!/bin/sh\necho '# {module} for' $NODENAME\n")
        (d / script).chmod(0o755)
        (state / "modules" / module / ".installed").write_text("init/all\n")
    ns = state / "nodescripts"
    for rel in ("init/all", "ready/all", "init/group/gpu", f"init/vnfs/{CAPSULE}", "ready/node/n0000"):
        (ns / rel).mkdir(parents=True)
    os.symlink(state / "modules/hostname/nodescripts/49-hostname.sh", ns / "init/all/49-hostname.sh")
    # An absolute link as the real master wrote it (/var/lib/perceus/…), resolved inside the snapshot.
    os.symlink("/var/lib/perceus/modules/masterauth/nodescripts/50-masterauth.pl", ns / "ready/all/50-masterauth.pl")
    os.symlink(state / "modules/masterauth/nodescripts/50-masterauth.pl", ns / "ready/node/n0000/50-masterauth.pl")
    (ns / "init/group/gpu/60-nvidia.sh").write_text("# admin's own script\n#!/bin/sh\nmodprobe nvidia\n")
    os.symlink(state / f"vnfs/{CAPSULE}/nodescripts/init/10-vnfsinit.sh", ns / f"init/vnfs/{CAPSULE}/10-vnfsinit.sh")
    os.symlink("/nonexistent/modules/gone/nodescripts/70-gone.sh", ns / "init/all/70-gone.sh")
    # a capsule laid out as chroot2stateless.sh leaves it (1.x ref §9.2)
    cap = state / "vnfs" / CAPSULE
    (cap / "rootfs" / "boot").mkdir(parents=True)
    (cap / "rootfs" / "sbin").mkdir()
    (cap / "rootfs" / "boot" / "vmlinuz-2.6.18-194.el5").write_bytes(b"\x00kernel")
    (cap / "rootfs" / "sbin" / "init").write_bytes(b"\x7fELF")
    (cap / "nodescripts" / "init").mkdir(parents=True)
    (cap / "nodescripts" / "init" / "10-vnfsinit.sh").write_text("#!/bin/sh\necho vnfsinit\n")
    (cap / "vnfs.img").write_bytes(b"")
    (cap / "vmlinuz").write_text("placeholder\n")
    (cap / "config").write_text(
        'KEXEC="kexec"\nCOMPRESSION=low\nKERNEL="/boot/vmlinuz-2.6.18-194.el5"\n'
        'KERNEL_ARGS="ramdisk_blocksize=1024 console=ttyS0,115200"\nKEXEC_ARGS="--args-linux"\n'
        "VNFSTIME=yes\n. /etc/perceus/global-vnfs.config 2>/dev/null\n"
    )
    broken = state / "vnfs" / "broken.stateless"
    broken.mkdir()
    (broken / "config").write_text('KERNEL="/boot/vmlinuz"\n')
    return etc, state


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file's bytes and every link's target under `root`: to prove the import changed nothing."""
    out: dict[str, bytes | str] = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p)] = os.readlink(p) if p.is_symlink() else p.read_bytes()
    return out


def copy(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True)
