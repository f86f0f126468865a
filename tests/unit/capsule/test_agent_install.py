"""install_provisiond into a capsule root (no wheels: the unit tier does not reach the network) and
provisiond.conf filling in what the kernel command line lacks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perceus.agent import cmdline
from perceus.agent.modules import provisiond_conf
from perceus.errors import ConfigError
from perceus.master.capsule.agent_install import AGENT_DIR, install_provisiond


def test_install_into_a_root(tmp_path: Path) -> None:
    (tmp_path / "lib/systemd/system").mkdir(parents=True)
    (tmp_path / "lib/systemd/system/systemd-networkd.service").touch()
    install_provisiond(tmp_path, wheels=False)
    agent = tmp_path / AGENT_DIR / "perceus"
    assert (agent / "agent" / "runtime.py").is_file() and (agent / "agent" / "modules" / "apply.py").is_file()
    assert (agent / "protocol" / "messages.py").is_file() and not (agent / "master").exists()
    assert not list(agent.rglob("__pycache__"))
    unit = (tmp_path / "etc/systemd/system/perceus-provisiond.service").read_text()
    assert "ExecStart=/usr/bin/python3 -m perceus.agent --mode runtime" in unit
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "perceus-provisiond.service") == "/etc/systemd/system/perceus-provisiond.service"
    assert os.readlink(wants / "systemd-networkd.service") == "/lib/systemd/system/systemd-networkd.service"
    conf = tmp_path / "etc/perceus/provisiond.conf"
    conf.write_text("perceus.master=10.9.9.9\n")
    install_provisiond(tmp_path, wheels=False)  # idempotent; the admin's conf is kept
    assert conf.read_text() == "perceus.master=10.9.9.9\n"


def test_conf_fills_only_what_the_cmdline_lacks(tmp_path: Path) -> None:
    conf = tmp_path / "provisiond.conf"
    conf.write_text("# comment\nperceus.master=10.0.0.1:9000  # trailing\nperceus.node=52:54:00:00:00:09\n")
    filled = provisiond_conf.fill(cmdline.parse("perceus.mode=runtime"), conf)
    assert [str(m) for m in filled.masters] == ["10.0.0.1:9000"] and filled.node == "52:54:00:00:00:09"
    given = provisiond_conf.fill(cmdline.parse("perceus.mode=runtime perceus.master=10.1.1.1"), conf)
    assert [str(m) for m in given.masters] == ["10.1.1.1:9987"]
    assert provisiond_conf.fill(given, tmp_path / "missing") == given
    conf.write_text("perceus.debug=9\n")
    with pytest.raises(ConfigError, match=r"provisiond\.conf: perceus\.debug"):
        provisiond_conf.fill(cmdline.parse("perceus.mode=runtime"), conf)
