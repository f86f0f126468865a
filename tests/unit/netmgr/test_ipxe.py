"""boot.ipxe, per-node iPXE settings files and `node set boot`."""

from __future__ import annotations

import ipaddress

import pytest

from perceus.errors import UsageError
from perceus.master.config import MasterConfig, Paths
from perceus.master.netmgr import ipxe
from perceus.master.netmgr.files import NetFiles
from perceus.master.netmgr.settings import NetSettings
from perceus.master.store.models import Node
from perceus.stage1 import builder

N1 = Node(nodeid="52:54:00:77:00:01", hostname="n0001", macs=("52:54:00:77:00:01", "52:54:00:77:01:01"))


def _settings(paths: Paths, extra: str = "") -> NetSettings:
    text = paths.perceus_conf.read_text().replace("master network device = eth1", "master network device = br0")
    paths.perceus_conf.write_text(text + extra)
    return NetSettings.build(
        MasterConfig.load(paths), address=ipaddress.IPv4Interface("10.77.0.1/24"), bus_port=5000, event_port=5001
    )


def test_file_names_match_the_stage1_builder() -> None:
    assert (ipxe.KERNEL, ipxe.INITRD) == (builder.KERNEL_NAME, builder.INITRD_NAME)


def test_boot_script(paths: Paths) -> None:
    lines = ipxe.boot_script(_settings(paths, "stage1 append = panic=30\n")).splitlines()
    assert lines[0] == "#!ipxe"
    assert "chain --autofree tftp://${next-server}/nodes/${netX/mac:hexhyp}.ipxe ||" in lines
    kernel = next(ln for ln in lines if ln.startswith("kernel "))
    words = (
        " console=tty0 console=ttyS0,115200 quiet"
        " perceus.master=10.77.0.1:5000 perceus.events=10.77.0.1:5001 perceus.debug=${perceus-debug} panic=30"
        " ${perceus-initrd}"
    )
    # stage one over HTTP from the provisioning address (http_boot), TFTP when HTTP is refused
    assert kernel == f"kernel http://10.77.0.1:9989/vmlinuz{words} || kernel tftp://${{next-server}}/vmlinuz{words}"
    assert "initrd http://10.77.0.1:9989/stage1.cpio.zst || initrd tftp://${next-server}/stage1.cpio.zst" in lines
    # defaults are set before the node file is chained; `local` is decided after it
    assert lines.index("set perceus-debug 0") < lines.index(next(ln for ln in lines if ln.startswith("chain")))
    assert lines.index("iseq ${perceus-boot} local && goto local ||") < lines.index(kernel) < lines.index(":local")
    assert lines[-1] == "exit"


def test_boot_script_tftp_only(paths: Paths) -> None:
    lines = ipxe.boot_script(_settings(paths, "boot http port = 0\n"), overlays=["perceus-keys.cpio"]).splitlines()
    assert not any("http://" in ln for ln in lines)
    assert "initrd tftp://${next-server}/stage1.cpio.zst" in lines
    assert "initrd tftp://${next-server}/perceus-keys.cpio" in lines
    # on UEFI the initrds are named on the kernel command line, all of them, before `kernel`; the overlay first
    # (the EFI stub does not pad: an uncompressed cpio after a zstd image of odd size would be lost)
    efi = "iseq ${platform} efi && set perceus-initrd initrd=perceus-keys.cpio initrd=stage1.cpio.zst ||"
    assert lines.index(efi) < lines.index(next(ln for ln in lines if ln.startswith("kernel ")))


def test_boot_script_overlay_over_http(paths: Paths) -> None:
    lines = ipxe.boot_script(_settings(paths, "boot http port = 8080\n"), overlays=["perceus-keys.cpio"]).splitlines()
    overlay = "initrd http://10.77.0.1:8080/perceus-keys.cpio || initrd tftp://${next-server}/perceus-keys.cpio"
    assert lines.index(overlay) > lines.index(next(ln for ln in lines if "stage1.cpio.zst" in ln))


@pytest.mark.parametrize(
    ("node", "boot", "expected"),
    [
        (N1, None, None),
        (N1, "default", None),
        (N1, "perceus", []),  # explicit stage one: a file with only comments (same as the default)
        (Node(nodeid=N1.nodeid, hostname="n0001", debug=2), None, ["set perceus-debug 2"]),
        (N1, "local", ["set perceus-boot local"]),
        (Node(nodeid=N1.nodeid, hostname="n0001", attrs={"boot": "local"}), None, ["set perceus-boot local"]),
        (Node(nodeid=N1.nodeid, hostname="n0001", attrs={"boot": "cloud"}), None, None),
    ],
)
def test_node_script(node: Node, boot: str | None, expected: list[str] | None) -> None:
    text = ipxe.node_script(node, boot)
    if expected is None:
        assert text is None
        return
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "#!ipxe" and lines[1].startswith("# node n0001: boot ")
    assert lines[2:] == expected


def test_sync_node_scripts_adds_and_removes(paths: Paths) -> None:
    files = NetFiles(paths)
    debug = Node(nodeid="52:54:00:77:00:02", hostname="n0002", debug=1)
    local = Node(nodeid=N1.nodeid, hostname="n0001", macs=N1.macs, attrs={"boot": "local"})
    assert ipxe.sync_node_scripts(files, [local, debug]) == 3
    names = sorted(p.name for p in files.nodes_dir.iterdir())
    assert names == ["52-54-00-77-00-01.ipxe", "52-54-00-77-00-02.ipxe", "52-54-00-77-01-01.ipxe"]
    assert ipxe.sync_node_scripts(files, [local, debug]) == 0  # unchanged: nothing rewritten
    (files.nodes_dir / "README").write_text("an admin's note stays\n")
    assert ipxe.sync_node_scripts(files, [N1]) == 3
    assert sorted(p.name for p in files.nodes_dir.iterdir()) == ["README"]


def test_write_boot_override(paths: Paths) -> None:
    files = NetFiles(paths)
    ipxe.write_boot_override(paths, N1, "local")
    assert (files.nodes_dir / "52-54-00-77-01-01.ipxe").read_text().endswith("set perceus-boot local\n")
    ipxe.write_boot_override(paths, N1, "default")
    assert list(files.nodes_dir.iterdir()) == []
    with pytest.raises(UsageError, match="valid boot options are: 'perceus', 'local' or 'default'"):
        ipxe.write_boot_override(paths, N1, "cloud")
