"""Config takeover, module activation scan, capsule inventory, tree carry-over and the port guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perceus.master.config import PERCEUS_CONF
from perceus.master.perceus1 import capsules, modules, safety, settings, trees

OLD_CONF = "master network device = eth1\nvnfs transfer method = nfs\ndatabase type = btree\nmy site key = 1\n"


def test_review_classifies_every_key(tmp_path: Path) -> None:
    conf = tmp_path / "perceus.conf"
    conf.write_text(OLD_CONF + "database pass = secret\n")
    review = {s.key: s for s in settings.review(conf)}
    assert review["database type"].status == "obsolete" and "SQLite" in review["database type"].note
    assert review["vnfs transfer method"].status == "obsolete"
    assert review["master network device"].status == "kept"
    assert review["my site key"].status == "unknown"
    assert review["database pass"].value == "***"  # never copied into reports


def test_legacy_block_is_added_once() -> None:
    once = settings.with_legacy_block(OLD_CONF)
    assert once.startswith(OLD_CONF) and "legacy listener = yes\nlegacy port = 987\n" in once
    assert settings.with_legacy_block(once) == once
    assert settings.with_legacy_block("legacy listener = no\n").count("legacy listener") == 1


@pytest.mark.parametrize(
    ("existing", "force", "action"),
    [
        (None, False, "write"),
        (PERCEUS_CONF, False, "write"),
        ("edited = 1\n", False, "conflict"),
        ("edited = 1\n", True, "write"),
    ],
)
def test_plan_file(tmp_path: Path, existing: str | None, force: bool, action: str) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "perceus.conf").write_text(OLD_CONF)
    if existing is not None:
        (new / "perceus.conf").write_text(existing)
    assert settings.plan_file("perceus.conf", old, new, force=force).action == action


def test_in_place_keeps_a_backup(tmp_path: Path) -> None:
    (tmp_path / "perceus.conf").write_text(OLD_CONF)
    plan = settings.plan_file("perceus.conf", tmp_path, tmp_path, force=False)
    assert plan.action == "write" and plan.backup == tmp_path / "perceus.conf.perceus1"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/var/lib/perceus/modules/masterauth/nodescripts/50-masterauth.pl", ("module", "masterauth")),
        ("../../../modules/ipaddr/nodescripts/50-ipaddr.pl", ("module", "ipaddr")),
        ("/var/lib/perceus/vnfs/centos/nodescripts/init/10-vnfsinit.sh", ("capsule", "centos")),
        ("/var/lib/perceus/vnfs/old/init/10-vnfsinit.sh", ("capsule", "old")),
        ("/usr/local/bin/site.sh", ("link", "")),
    ],
)
def test_classify_target(target: str, expected: tuple[str, str]) -> None:
    assert modules.classify_target(target) == expected


def test_scan_and_carry_over(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    script = old / "modules/hostname/nodescripts/49-hostname.sh"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    (old / "nodescripts/init/all").mkdir(parents=True)
    (old / "nodescripts/init/node/n0001").mkdir(parents=True)
    os.symlink(script, old / "nodescripts/init/all/49-hostname.sh")
    (old / "nodescripts/init/node/n0001/90-mine.sh").write_text("#!/bin/sh\necho mine\n")
    (old / "nodescripts/init/all/49-hostname.sh~").write_text("editor backup")
    scan = modules.scan(old)
    assert scan.modules() == {"hostname": ["init/all"]}
    assert [(e.kind, e.role) for e in scan.entries] == [("module", "init/all"), ("admin", "init/node/n0001")]
    plan = trees.plan_tree("nodescripts", old / "nodescripts", new / "nodescripts", modules.retargeter(old, new))
    assert trees.apply_tree(plan)[0] == len(plan.ops)
    assert os.readlink(new / "nodescripts/init/all/49-hostname.sh") == str(
        new / "modules/hostname/nodescripts/49-hostname.sh"
    )
    assert trees.apply_tree(plan) == (0, len(plan.ops), [])  # idempotent
    (new / "nodescripts/init/node/n0001/90-mine.sh").write_text("changed on the new master\n")
    assert trees.apply_tree(plan)[2] == [str(new / "nodescripts/init/node/n0001/90-mine.sh")]


def test_capsule_inventory(tmp_path: Path) -> None:
    cap = tmp_path / "vnfs" / "sl6.stateful.x86_64"
    (cap / "rootfs/boot").mkdir(parents=True)
    (cap / "rootfs/boot/vmlinuz").write_bytes(b"k")
    (cap / "config").write_text(
        'KERNEL="/boot/vmlinuz"\nKERNEL_ARGS="quiet console=ttyS1,115200"\nTARGETS=/dev/sda\n'
        "if [ -f x ]; then . x; fi\n"
    )
    (tmp_path / "vnfs" / "empty").mkdir()
    found = {c.name: c for c in capsules.scan(tmp_path)}
    good = found["sl6.stateful.x86_64"]
    assert (good.kind, good.root, good.console, good.problems) == ("stateful", "rootfs", "ttyS1,115200", [])
    assert found["empty"].problems == ["no config file (1.x did not list it either)"]
    capsules.plan_conversion(list(found.values()), tmp_path / "new-vnfs")
    assert (good.status, found["empty"].status) == ("will convert", "not convertible")


def test_listening_reads_proc_net_tcp(tmp_path: Path) -> None:
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (tmp_path / "tcp").write_text(
        header + "   0: 0100000A:03DB 00000000:0000 0A 00000000:00000000 00:00000000 0\n"
        "   1: 0100007F:2694 0100007F:03DB 01 00000000:00000000 00:00000000 0\n"
    )
    assert safety.listening(987, tmp_path) is True
    assert safety.listening(9876, tmp_path) is False
