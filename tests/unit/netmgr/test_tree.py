"""write_all / write_hosts: every file, atomically, only when its bytes change."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from perceus.master.config import MasterConfig, Paths
from perceus.master.netmgr.files import NetFiles
from perceus.master.netmgr.settings import NetSettings
from perceus.master.netmgr.supervisor import split_endpoint
from perceus.master.netmgr.tree import WriteResult, write_all, write_hosts
from perceus.master.store.models import Node


def _settings(paths: Paths, ipxe_dir: Path, extra: str = "") -> NetSettings:
    text = paths.perceus_conf.read_text().replace("master network device = eth1", "master network device = br0")
    paths.perceus_conf.write_text(text + f"ipxe directory = {ipxe_dir}\n" + extra)
    return NetSettings.build(MasterConfig.load(paths), address=ipaddress.IPv4Interface("10.77.0.1/24"))


def test_write_all_then_nothing_changes(paths: Paths, tmp_path: Path) -> None:
    loaders = tmp_path / "ipxe"
    loaders.mkdir()
    (loaders / "undionly.kpxe").write_bytes(b"bios loader")
    (loaders / "ipxe.efi").write_bytes(b"uefi loader")
    (paths.tftp / "vmlinuz").write_bytes(b"k")
    (paths.tftp / "stage1.cpio.zst").write_bytes(b"i")
    files = NetFiles(paths)
    settings = _settings(paths, loaders, "dns domain = cluster\n")
    nodes = [Node(nodeid="52:54:00:77:00:01", hostname="n0001", ip="10.77.0.50", debug=1)]
    first = write_all(files, settings, nodes)
    assert first.warnings == [] and first.needs_hup and first.hosts == 1
    assert set(first.changed) == {
        files.hosts,
        files.dns_hosts,
        files.nodes_dir,
        files.boot_script,
        files.tftp / "undionly.kpxe",
        files.tftp / "ipxe.efi",
        files.conf,
    }
    assert (files.tftp / "ipxe.efi").read_bytes() == b"uefi loader"
    assert files.site_dir.is_dir()
    assert files.conf.stat().st_mode & 0o777 == 0o644
    second = write_all(files, settings, nodes)
    assert second.changed == [] and not second.needs_hup
    # a hostname change touches the hosts files only
    renamed = [Node(nodeid="52:54:00:77:00:01", hostname="c01", ip="10.77.0.50", debug=1)]
    result = WriteResult()
    write_hosts(files, settings, renamed, result)
    assert result.needs_hup and set(result.changed) == {files.hosts, files.dns_hosts, files.nodes_dir}
    assert files.hosts.read_text().splitlines()[-1] == "52:54:00:77:00:01,10.77.0.50,c01"


def test_missing_loaders_and_stage1_are_warnings(paths: Paths, tmp_path: Path) -> None:
    result = write_all(NetFiles(paths), _settings(paths, tmp_path / "none"), [])
    assert len(result.warnings) == 4
    assert any("install Debian's `ipxe` package" in w for w in result.warnings)
    assert any("build stage one" in w for w in result.warnings)
    assert NetFiles(paths).conf.exists()


def test_split_endpoint() -> None:
    assert split_endpoint("tcp://10.0.0.1:9987") == ("10.0.0.1", 9987)
    assert split_endpoint("tcp://[::]:1") == ("::", 1)
    assert split_endpoint("tcp://0.0.0.0:x") == ("0.0.0.0", None)


def test_snponly_loader_is_copied_when_chosen(paths: Paths, tmp_path: Path) -> None:
    loaders = tmp_path / "ipxe"
    loaders.mkdir()
    for name in ("undionly.kpxe", "ipxe.efi", "snponly.efi"):
        (loaders / name).write_bytes(name.encode())
    files = NetFiles(paths)
    write_all(files, _settings(paths, loaders, "uefi loader = snponly.efi\n"), [])
    assert (files.tftp / "snponly.efi").read_bytes() == b"snponly.efi"
    assert not (files.tftp / "ipxe.efi").exists()
