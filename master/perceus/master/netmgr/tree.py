"""Write the network manager's files: dnsmasq.conf, hosts files, boot.ipxe, iPXE loaders, node settings.

Every file is written atomically (temp + fsync + rename) and only when its bytes change, so a reader
(dnsmasq, a TFTP transfer in flight) sees the old or the new file, never half of one, and an unchanged node
set costs no SIGHUP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perceus.master.fsutil import atomic_write
from perceus.master.netmgr import dnsmasq_conf, hosts, ipxe
from perceus.master.netmgr.files import BIOS_LOADER, NetFiles
from perceus.master.netmgr.settings import NetSettings
from perceus.master.store.models import Node


@dataclass
class WriteResult:
    """What a write changed, and what is missing for a node to boot."""

    changed: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hosts: int = 0
    # A file dnsmasq reads only at start or on SIGHUP changed (TFTP files are read per request).
    needs_hup: bool = False


def _put(path: Path, data: bytes, result: WriteResult) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data, mode=0o644)
    result.changed.append(path)
    return True


def write_hosts(files: NetFiles, settings: NetSettings, nodes: Sequence[Node], result: WriteResult) -> None:
    """The node-dependent files: dhcp-hostsfile, DNS hosts (when DNS is on) and per-node iPXE settings."""
    entries = hosts.entries(nodes, settings.network, reserved=(str(settings.address.ip),))
    result.hosts = len(entries)
    if _put(files.hosts, hosts.render_dhcp_hosts(entries).encode(), result):
        result.needs_hup = True
    if settings.domain and _put(files.dns_hosts, hosts.render_dns_hosts(entries, settings.domain).encode(), result):
        result.needs_hup = True
    if ipxe.sync_node_scripts(files, nodes):
        result.changed.append(files.nodes_dir)


def write_all(files: NetFiles, settings: NetSettings, nodes: Sequence[Node]) -> WriteResult:
    """Everything `perceus configure dhcpd` and perceus-bus's start write."""
    result = WriteResult()
    for d in (files.dir, files.site_dir, files.tftp, files.paths.run, files.paths.logs):
        d.mkdir(parents=True, exist_ok=True)
    write_hosts(files, settings, nodes, result)
    overlays = [name for name in (ipxe.KEYS_OVERLAY,) if (files.tftp / name).exists()]
    _put(files.boot_script, ipxe.boot_script(settings, overlays=overlays).encode(), result)
    for loader in (BIOS_LOADER, settings.uefi_loader):
        src = settings.ipxe_dir / loader
        try:
            data = src.read_bytes()
        except OSError:
            result.warnings.append(f"{src} is missing (install Debian's `ipxe` package): firmware PXE cannot load iPXE")
            continue
        _put(files.tftp / loader, data, result)
    for name in (ipxe.KERNEL, ipxe.INITRD):
        if not (files.tftp / name).exists():
            result.warnings.append(f"{files.tftp / name} is missing: build stage one into {files.tftp}")
    # Last, so dnsmasq never starts on a config naming files that do not exist yet.
    _put(files.conf, dnsmasq_conf.render(settings, files).encode(), result)
    return result
