"""The node side of `rootkey`: authorized_keys gets a managed block; other keys stay; bad data is refused."""

from __future__ import annotations

import stat
from pathlib import Path

from perceus.agent.modules.apply import Applier
from perceus.agent.modules.rootkey import BEGIN, END
from perceus.protocol.messages import Action

KEY1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGetZvWTFmDs0VWdY6vFj5rrW6jtPDv12evLJGx6Mn+X root@master"
KEY2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 admin@master"
OWN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOWNKEYOWNKEYOWNKEY user@capsule"


def action(keys: object) -> Action:
    return Action(module="rootkey", kind="authorized_keys", data={"keys": keys})


def test_written_with_modes_then_replaced_keeping_the_capsules_own_key(tmp_path: Path) -> None:
    ssh = tmp_path / "root" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "authorized_keys").write_text(OWN + "\n")
    applier = Applier(root=tmp_path)
    assert applier.apply([action([KEY1])]) == {"rootkey.authorized_keys": "written"}
    path = ssh / "authorized_keys"
    assert path.read_text() == f"{OWN}\n{BEGIN}\n{KEY1}\n{END}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(ssh.stat().st_mode) == 0o700
    assert applier.apply([action([KEY1])]) == {"rootkey.authorized_keys": "unchanged"}
    assert applier.apply([action([KEY2])]) == {"rootkey.authorized_keys": "written"}
    assert path.read_text() == f"{OWN}\n{BEGIN}\n{KEY2}\n{END}\n"


def test_refused_data_writes_nothing(tmp_path: Path) -> None:
    applier = Applier(root=tmp_path)
    for bad in ("x", [KEY1 + "\nssh-rsa AAAA evil"], ["rm -rf /"], [1]):
        outcome = applier.apply([action(bad)])["rootkey.authorized_keys"]
        assert outcome.startswith("failed: rootkey:"), outcome
    assert not (tmp_path / "root" / ".ssh" / "authorized_keys").exists()
    assert applier.failures == 4


def test_deferred_in_stage_one(tmp_path: Path) -> None:
    assert Applier(root=tmp_path, stage1=True).apply([action([KEY1])]) == {"rootkey.authorized_keys": "skipped"}
