"""Driver-loading orchestration over the fixture index: rounds, dependency order, blacklist, failures.

The loader is a recorder: loading real modules into the test host's kernel is not something a test may do.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from perceus.agent import drivers
from perceus.agent.failures import DriverError

DATA = Path(__file__).parent / "data"
PCI_VIRTIO = "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"
VIRTIO_NET = "virtio:d00000001v00001AF4"


def test_rounds_follow_new_devices_and_log_each_module() -> None:
    loaded: list[str] = []

    def walk() -> list[str]:
        # virtio_pci creates the virtio bus device that virtio_net matches (as on a real node)
        return [PCI_VIRTIO, VIRTIO_NET] if "virtio_pci.ko" in loaded else [PCI_VIRTIO]

    def loader(path: Path) -> bool:
        loaded.append(path.name)
        return True

    with capture_logs() as logs:
        result = drivers.load_drivers(["e1000"], ["floppy"], root=DATA, walk=walk, loader=loader, loaded=set())
    assert sorted(loaded[:5]) == ["virtio.ko", "virtio_pci.ko", "virtio_pci_legacy_dev.ko",
                                  "virtio_pci_modern_dev.ko", "virtio_ring.ko"]  # fmt: skip
    assert loaded.index("virtio_ring.ko") < loaded.index("virtio.ko") < loaded.index("virtio_pci.ko")
    assert loaded.index("e1000.ko") < loaded.index("virtio_net.ko")
    assert loaded[-3:] == ["failover.ko", "net_failover.ko", "virtio_net.ko"]
    assert len(loaded) == len(set(loaded))
    assert sorted(result.loaded) == sorted(name.removesuffix(".ko") for name in loaded)
    assert sum(1 for e in logs if e["event"] == "module_loaded") == len(loaded)


def test_failures_and_already_loaded_do_not_stop_the_rest() -> None:
    def loader(path: Path) -> bool:
        if path.name == "virtio.ko":
            raise DriverError("finit_module failed: ENOEXEC", module="virtio.ko", errno=errno.ENOEXEC)
        return path.name != "virtio_ring.ko"  # EEXIST → False

    result = drivers.load_drivers((), ("virtio_pci_legacy_dev",), root=DATA, walk=lambda: [PCI_VIRTIO],
                                  loader=loader, loaded=set())  # fmt: skip
    assert "virtio" in result.failed and "virtio_ring" in result.already
    assert "virtio_pci" in result.loaded and "virtio_pci_legacy_dev" in result.blocked
    assert "failed: virtio" in result.summary()


def test_device_modaliases_reads_bus_devices_from_sysfs(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    devices = {
        "pci/devices/0000:00:02.0": PCI_VIRTIO + "\n",
        "pci/devices/0000:00:03.0": PCI_VIRTIO + "\n",  # a second device of the same kind: listed once
        "virtio/devices/virtio0": VIRTIO_NET + "\n",
        "platform/devices/serial8250": "platform:serial8250\n",
        "cpu/devices/cpu0": None,  # no modalias file
        "memory/devices/memory0": "",  # an empty one
    }
    for rel, alias in devices.items():
        (sysfs / "bus" / rel).mkdir(parents=True)
        if alias is not None:
            (sysfs / "bus" / rel / "modalias").write_text(alias)
    (sysfs / "bus" / "nodevices").mkdir()  # a bus without a devices directory
    assert drivers.device_modaliases(sysfs) == [PCI_VIRTIO, "platform:serial8250", VIRTIO_NET]
    assert drivers.device_modaliases(tmp_path / "nothing") == []


def test_compressed_module_goes_to_init_module_when_the_kernel_cannot_decompress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lzma

    from perceus.agent import kexec

    image = b"\x7fELF" + bytes(range(256)) * 64
    path = tmp_path / "virtio_net.ko.xz"
    path.write_bytes(lzma.compress(image, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32))
    calls: list[tuple[str, object]] = []

    def finit(p: Path, params: str = "") -> bool:
        calls.append(("finit", p.name))
        raise DriverError("finit_module failed: EOPNOTSUPP", module=p.name, errno=errno.EOPNOTSUPP)

    def init(data: bytes, name: str, params: str = "") -> bool:
        calls.append(("init", (data == image, name)))
        return True

    monkeypatch.setattr(kexec, "finit_module", finit)
    monkeypatch.setattr(kexec, "init_module", init)
    monkeypatch.setattr(drivers, "_kernel_decompresses", None)
    assert drivers._finit(path) is True
    assert drivers._finit(path) is True  # learnt: no second finit_module attempt
    assert calls == [("finit", "virtio_net.ko.xz"), ("init", (True, "virtio_net.ko.xz")),
                     ("init", (True, "virtio_net.ko.xz"))]  # fmt: skip
    path.write_bytes(b"not xz")
    with pytest.raises(DriverError, match=r"cannot decompress module virtio_net\.ko\.xz"):
        drivers._finit(path)
