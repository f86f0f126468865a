"""Driver-loading orchestration over the fixture index: rounds, dependency order, blacklist, failures.

The loader is a recorder: loading real modules into the test host's kernel is not something a test may do.
"""

from __future__ import annotations

import errno
from pathlib import Path

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
