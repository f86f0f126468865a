"""Every command in the Perceus FAQ (../shared/docs/perceus-faq.txt), literally, on a fresh state dir, through
`perceus …` main(argv): state before → argv → exit code, stdout, stderr, state after.

FAQ lines that name 1.x files or scripts rather than `perceus` commands are checked where a file exists
(modules/modprobe, vnfs/<name>/config, vnfs/<name>/rootfs) and listed in docs/upgrade-from-1x.md otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.unit.capsule.conftest import make_tree
from tests.unit.cli.clirun import run

from perceus.master.config import Paths
from perceus.master.perceusd import translate
from perceus.master.store.sqlite import SQLiteStore

MACS = ["00:1E:67:00:00:01", "00:1E:67:00:00:02", "00:1E:67:00:00:03"]


def node(paths: Paths, name: str) -> dict[str, object]:
    with SQLiteStore(paths.database) as store:
        (found,) = [n for n in store.list_nodes() if n.hostname == name]
    return found.as_dict()


@dataclass
class Row:
    faq: str  # the FAQ's words
    argv: list[str]
    code: int = 0
    out: str = ""
    err: str = ""
    after: Callable[[Paths], bool] = field(default=lambda paths: True)
    before: Callable[[Paths], object] = field(default=lambda paths: None)


def install_kernel(paths: Paths) -> None:
    """What the admin did in the mounted VNFS: installed a newer kernel."""
    (paths.vnfs / "centos" / "rootfs" / "boot" / "vmlinuz-6.12.0-new").write_bytes(b"\x01" * 4096)


def rows(chroot: Path) -> list[Row]:
    table = [
        # Q: What is the Perceus command-line structure?  "# perceus <command> help"
        *[Row(f"perceus {c} help", [c, "help"], out=f"usage: perceus {c} [-h]")
          for c in ("node", "group", "vnfs", "module", "info", "configure")],
        Row("perceus contact help", ["contact", "help"], out="usage: perceus contact [-h]"),
        Row("perceus help", ["help"], out="usage: perceus [-h] [--version] <command> ..."),
        # Q: I've installed and configured Perceus, now what?  (initialisation: database, SSH host keys,
        # root's SSH keys, services)
        Row("initialisation", ["init"], out="Perceus is now ready to begin provisioning your cluster!",
            after=lambda p: (p.config_dir / "keys" / "ssh_host_ed25519_key").exists()
            and (p.config_dir / "modules" / "rootkey" / "authorized_keys").exists()),
        # Q: How do you add nodes?  "# perceus node add <MAC address>" (and the while-read script)
        *[Row(f"perceus node add {m}", ["node", "add", m], out=f"n000{i}",
              after=lambda p, i=i: node(p, f"n000{i}")["group"] == "cluster")
          for i, m in enumerate(MACS)],
        # Q: custom network driver: "# perceus module activate modprobe init/all", then edit modules/modprobe
        Row("perceus module activate modprobe init/all", ["module", "activate", "modprobe", "init/all"],
            after=lambda p: (p.config_dir / "modules" / "modprobe").is_file()),
        # Q: XCPU: "If the Perceus xcpu module is activated"
        Row("perceus module activate xcpu", ["module", "activate", "xcpu"]),
        # Q: masterauth / passwdfile
        Row("perceus module activate masterauth", ["module", "activate", "masterauth"]),
        # Q: serial console at import ("Perceus will ask where it should send the terminal output")
        Row("perceus vnfs import (ttyS0)", ["vnfs", "import", str(chroot), "--name", "centos", "--console", "ttyS0"],
            out="VNFS 'centos' has been successfully imported.",
            after=lambda p: 'CONSOLE="ttyS0,115200"' in (p.vnfs / "centos" / "config").read_text()),
        # Q: non-RHEL kernel: remove "--args-linux" from KEXEC_ARGS (accepted as a no-op either way)
        Row("KEXEC_ARGS --args-linux", ["-y", "vnfs", "configure", "centos", "--kexec-args=--args-linux"],
            out="note: KEXEC_ARGS --args-linux: accepted, no effect with kexec_file_load"),
        Row("KEXEC_ARGS removed", ["-y", "vnfs", "configure", "centos", "--kexec-args="],
            out="VNFS 'centos' has been configured."),
        # Q: "I mounted the VNFS, installed a new kernel, and unmounted, but the node boots to old kernel":
        # the KERNEL line of vnfs/<name>/config, set with `vnfs configure --kernel`
        Row("perceus vnfs mount centos", ["vnfs", "mount", "centos"]),
        Row("perceus vnfs umount centos", ["vnfs", "umount", "centos"], before=install_kernel),
        Row("vnfs config KERNEL", ["vnfs", "configure", "centos", "--kernel", "6.12.0-new"],
            out="VNFS 'centos' has been configured.",
            after=lambda p: 'KERNEL="/boot/vmlinuz-6.12.0-new"' in (p.vnfs / "centos" / "config").read_text()),
        # Q: different distro on the master: edit vnfs/<name>/rootfs, then "# perceus vnfs rebuild <VNFS capsule>"
        Row("perceus vnfs rebuild centos", ["vnfs", "rebuild", "centos"],
            after=lambda p: (p.vnfs / "centos" / "rootfs" / "sbin" / "init").is_file()),
        # Q: node attributes: "# perceus node show <node name>"
        Row("perceus node show n0000", ["node", "show", "n0000"], out="n0000"),
        # "# perceus node set <attribute> <attribute value> <node name>": debug, desc, enabled, group, hostname, vnfs
        Row("perceus node set debug 2 n0000", ["-y", "node", "set", "debug", "2", "n0000"],
            after=lambda p: node(p, "n0000")["debug"] == 2),
        Row("perceus node set desc rack4 n0000", ["-y", "node", "set", "desc", "rack4", "n0000"],
            after=lambda p: node(p, "n0000")["desc"] == "rack4"),
        Row("perceus node set enabled 0 n0001", ["-y", "node", "set", "enabled", "0", "n0001"],
            after=lambda p: node(p, "n0001")["enabled"] is False),
        Row("perceus node set group gpu n0001", ["-y", "node", "set", "group", "gpu", "n0001"],
            after=lambda p: node(p, "n0001")["group"] == "gpu"),
        Row("perceus node set hostname login0 n0002", ["-y", "node", "set", "hostname", "login0", "n0002"],
            after=lambda p: node(p, "login0")["nodeid"] == MACS[2]),
        Row("perceus node set vnfs centos n0000", ["-y", "node", "set", "vnfs", "centos", "n0000"],
            after=lambda p: node(p, "n0000")["vnfs"] == "centos"),
        # debugging: "# perceus node set debug <1, 2, or 3> <node name>" (3 drops to the shell)
        Row("perceus node set debug 3 n0000", ["-y", "node", "set", "debug", "3", "n0000"],
            after=lambda p: node(p, "n0000")["debug"] == 3),
        # 1.x configure scripts: "perceus -e info config …"
        Row("perceus -e info config statedir", ["-e", "info", "config", "statedir"], out="/var"),
        Row("perceus -e info config vnfs transfer method", ["-e", "info", "config", "vnfs", "transfer", "method"],
            out="bus"),
        Row("perceus contact", ["contact"], out="Where to get help"),
    ]  # fmt: skip
    return table


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Paths, Path]:
    monkeypatch.setenv("HOME", str(tmp_path / "root"))
    chroot = make_tree(tmp_path / "chroot", files=5)
    return Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var"), chroot


def test_every_faq_command_in_order(fresh: tuple[Paths, Path]) -> None:
    paths, chroot = fresh
    for row in rows(chroot):
        row.before(paths)
        result = run(paths, *row.argv)
        where = f"FAQ: {row.faq} → {result}"
        assert result.code == row.code, where
        assert row.out in result.out, where
        assert row.err in result.err, where
        assert "perceus: error" not in result.err, where
        assert row.after(paths), where
    data = json.loads(run(paths, "node", "list", "--json").out)
    assert [n["hostname"] for n in data] == ["login0", "n0000", "n0001"]


def test_perceusd_debug_foreground_is_perceus_bus_in_the_foreground() -> None:
    # The daemon itself runs in tests/integration/cli/test_completion.py (perceusd --debug --foreground).
    assert translate(["--debug", "--foreground"]) == (["--debug", "--foreground"], [])
