"""Capsule `config` in the original sourced-shell syntax (1.x ref §2.7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.errors import CapsuleError
from perceus.master.capsule.config import CapsuleConfig, new_config

STATELESS_1X = """\
# Perceus VNFS configuration (chroot2stateless.sh)
KEXEC="kexec"
COMPRESSION="low"
BACKUP="no"
HYBRIDIZE_FILE="/etc/perceus/hybridize"
LIVESYNCSKIP_FILE="/etc/perceus/livesync.skip"
KERNEL="/boot/vmlinuz-2.6.18-92.el5"
KERNEL_ARGS="ramdisk_blocksize=1024 console=tty0"
KEXEC_ARGS='--args-linux'
VNFSTIME=no

if [ -f "/etc/perceus/global-vnfs.config" ]; then
   . /etc/perceus/global-vnfs.config
fi
"""

STATEFUL_1X = """\
KERNEL="/boot/vmlinuz-2.6.18"
INITRD="/boot/initrd-2.6.18.img"
TARGETS="/dev/sda"
FILESYSTEM="ext3"
GRUB="yes"
"""


def test_original_stateless_config() -> None:
    cfg = CapsuleConfig.parse(STATELESS_1X)
    assert cfg.type == "stateless"
    assert cfg.kernel == "/boot/vmlinuz-2.6.18-92.el5"
    assert cfg.kernel_args == "ramdisk_blocksize=1024 console=tty0"
    assert cfg.kexec_args == "--args-linux"
    assert cfg.get("VNFSTIME") == "no"
    assert cfg.console == ""


def test_original_stateful_config_is_recognised() -> None:
    cfg = CapsuleConfig.parse(STATEFUL_1X)
    assert cfg.type == "stateful"
    assert cfg.initrd == "/boot/initrd-2.6.18.img"


def test_set_rewrites_in_place_and_keeps_other_lines(tmp_path: Path) -> None:
    cfg = CapsuleConfig.parse(STATELESS_1X)
    cfg.set("KEXEC_ARGS", "")
    cfg.set("CONSOLE", 'ttyS0,115200 "x" $y')
    cfg.save(tmp_path / "config")
    text = (tmp_path / "config").read_text()
    assert 'KEXEC_ARGS=""' in text and "--args-linux" not in text
    assert ". /etc/perceus/global-vnfs.config" in text
    assert CapsuleConfig.load(tmp_path / "config").console == 'ttyS0,115200 "x" $y'


def test_bad_type_is_refused() -> None:
    with pytest.raises(CapsuleError, match="TYPE 'diskless'"):
        _ = CapsuleConfig.parse('TYPE="diskless"\n').type
    with pytest.raises(CapsuleError):
        new_config(kind="diskless", kernel="/boot/vmlinuz")


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(CapsuleError, match="capsule config is missing"):
        CapsuleConfig.load(tmp_path / "config")
