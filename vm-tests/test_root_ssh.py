"""Issue 17 item 2: after `perceus init`, a booted node accepts `ssh root@<node> true` from the master with root's
key (module `rootkey`, on by default) and presents the cluster's host key (`configure sshkeys`, sent over the
authenticated bus) — both delivered by provisiond, neither baked into the capsule.

The capsule is the stage-one image imported as a capsule (as in test_capsule_boot) plus the host's dropbear
(Debian `dropbear-bin`, installed by scripts/setup) under /opt/dropbear with its libraries; a `ready` node script
converts the delivered OpenSSH host key for dropbear and starts it.  The capsule build is seconds on top of the
cached stage-one image.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from perceus.lab import DirectBoot, Lab, SerialTimeout
from perceus.lab.bus import LabBus, perceus_cli, start_bus
from perceus.master.config import Paths
from perceus.master.store.sqlite import SQLiteStore
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm

DROPBEAR = ("/usr/sbin/dropbear", "/usr/bin/dropbearconvert")
START_SSHD = """\
# test capsule: start dropbear once the cluster host key has arrived (rootkey and sshkeys come first)
#!/bin/sh
DB=/opt/dropbear
if [ ! -e /run/dropbear.pid ] && [ -s /etc/ssh/ssh_host_ed25519_key ]; then
    mkdir -p /etc/dropbear
    LD_LIBRARY_PATH=$DB/lib $DB/bin/dropbearconvert openssh dropbear /etc/ssh/ssh_host_ed25519_key \\
        /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
    LD_LIBRARY_PATH=$DB/lib $DB/bin/dropbear -s -r /etc/dropbear/dropbear_ed25519_host_key -P /run/dropbear.pid
fi
"""


def _libraries(binary: str) -> list[Path]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return [Path(p) for p in re.findall(r"=> (/\S+)", out)]


def add_dropbear(rootfs: Path) -> None:
    """Copy dropbear, dropbearconvert and their shared libraries into rootfs/opt/dropbear."""
    (rootfs / "opt/dropbear/bin").mkdir(parents=True, exist_ok=True)
    (rootfs / "opt/dropbear/lib").mkdir(parents=True, exist_ok=True)
    for binary in DROPBEAR:
        shutil.copy2(binary, rootfs / "opt/dropbear/bin" / Path(binary).name)
        for lib in _libraries(binary):
            shutil.copy2(lib.resolve(), rootfs / "opt/dropbear/lib" / lib.name)


@pytest.fixture
def ssh_master(
    lab: Lab, stage1_image: BuildResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    record_time: Callable[[str, float], None],
) -> tuple[LabBus, Path]:  # fmt: skip
    """`perceus init` (root's home is a temp dir), capsule `mini` with dropbear, perceus-bus in the lab."""
    if any(shutil.which(Path(b).name) is None for b in DROPBEAR) or shutil.which("ssh") is None:
        pytest.skip("needs dropbear-bin and openssh-client (scripts/setup installs them)")
    home = tmp_path / "root"
    monkeypatch.setenv("HOME", str(home))
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    t = time.monotonic()
    for argv in (
        ("init",),
        ("vnfs", "import", str(stage1_image.initrd), "--kernel", str(stage1_image.kernel), "--name", "mini"),
        ("vnfs", "mount", "mini"),
    ):
        done = perceus_cli(paths, *argv, timeout=600)
        assert done.returncode == 0, (argv, done.stderr)
    add_dropbear(paths.vnfs / "mini" / "rootfs")
    done = perceus_cli(paths, "vnfs", "umount", "mini", timeout=600)
    assert done.returncode == 0, done.stderr
    record_time("capsule with dropbear (import + mount + umount)", time.monotonic() - t)
    defaults = paths.defaults_conf.read_text()
    paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = mini", defaults))
    (paths.nodescripts / "ready" / "all" / "50-sshd").write_text(START_SSHD)
    return start_bus(lab, paths, port=9987), home


def test_root_ssh_with_roots_key_and_the_cluster_host_key(
    lab: Lab, ssh_master: tuple[LabBus, Path], stage1_image: BuildResult, tmp_path: Path,
    record_time: Callable[[str, float], None],
) -> None:  # fmt: skip
    bus, home = ssh_master
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 {bus.kernel_args} perceus.debug=1"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append), memory_mb=1024)
    try:
        kexec = node.wait_for(r"kexec_started", 400)
        keys = node.wait_for(r"module_applied module=rootkey kind=authorized_keys result=written", 300,
                             start=kexec.index)  # fmt: skip
        node.wait_for(r"module_applied module=sshkeys kind=host_keys", 60, start=kexec.index)
        node.wait_for(r"node_scripts_done state=ready status=0", 60, start=keys.index)
        record_time("root key and host keys on the node", keys.t)
    except SerialTimeout:
        if not bus.process.running():
            pytest.fail(f"perceus-bus died: {bus.log_tail()}")
        raise
    with SQLiteStore(bus.paths.database) as store:
        (found,) = [n for n in store.list_nodes() if n.nodeid.lower() == node.mac.lower()]
    assert found.ip, found
    cluster_key = (bus.paths.config_dir / "keys" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"{found.ip} {' '.join(cluster_key)}\n")
    argv = ["ssh", "-i", str(home / ".ssh" / "id_ed25519"), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}", "-o", "ConnectTimeout=20",
            "-o", "HostKeyAlgorithms=ssh-ed25519", f"root@{found.ip}"]  # fmt: skip
    t = time.monotonic()
    deadline = t + 60
    while True:  # dropbear may still be starting when the script reported
        result = lab.netns.run([*argv, "true"], check=False, timeout=60)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert result.returncode == 0, result.stderr
    record_time("ssh root@node true", time.monotonic() - t)
    who = lab.netns.run([*argv, "id -u; cat /root/.ssh/authorized_keys"], check=False, timeout=60)
    assert who.returncode == 0, who.stderr
    assert who.stdout.splitlines()[0] == "0"
    assert (home / ".ssh" / "id_ed25519.pub").read_text().split()[1] in who.stdout
    # A different host key must be refused: the check above really compared the cluster's key.
    other = tmp_path / "other_known_hosts"
    other.write_text(f"{found.ip} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGetZvWTFmDs0VWdY6vFj5rrW6jtPDv12evLJGx6Mn+X\n")
    refused = lab.netns.run([*[a.replace(str(known), str(other)) for a in argv], "true"], check=False, timeout=60)
    assert refused.returncode != 0 and "Host key verification failed" in refused.stderr, refused.stderr
