"""Module selection and dependency closure from a fixture modules.dep."""

from __future__ import annotations

import pytest

from perceus.stage1.drivers import (
    NIC_MODULE_DIRS,
    dependency_closure,
    load_order,
    module_name,
    parse_modules_dep,
    wanted_modules,
)

MODULES_DEP = """\
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko \
kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko: kernel/drivers/net/ethernet/mellanox/mlxfw/mlxfw.ko \
kernel/net/psample/psample.ko kernel/drivers/pci/controller/pci-hyperv-intf.ko
kernel/drivers/net/ethernet/mellanox/mlxfw/mlxfw.ko:
kernel/net/psample/psample.ko:
kernel/drivers/pci/controller/pci-hyperv-intf.ko:
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/scsi_mod.ko:
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/sound/core/snd.ko:
kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko:
"""
# modules.dep lines are continued only in this fixture (for line length); join them back.
DEPS = parse_modules_dep(MODULES_DEP.replace("\\\n", ""))


def test_module_name_normalises_dashes_and_suffixes() -> None:
    assert module_name("kernel/drivers/char/hw_random/virtio-rng.ko") == "virtio_rng"
    assert module_name("kernel/drivers/net/virtio_net.ko.zst") == "virtio_net"


def test_parse_modules_dep() -> None:
    assert DEPS["kernel/net/core/failover.ko"] == ()
    assert DEPS["kernel/drivers/net/net_failover.ko"] == ("kernel/net/core/failover.ko",)
    with pytest.raises(ValueError, match="without ':'"):
        parse_modules_dep("kernel/foo.ko\n")


def test_wanted_modules_takes_nic_dirs_and_named_modules_only() -> None:
    chosen = wanted_modules(DEPS)
    assert "kernel/drivers/net/ethernet/intel/e1000/e1000.ko" in chosen
    assert "kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko" in chosen
    assert "kernel/drivers/net/virtio_net.ko" in chosen
    assert "kernel/drivers/virtio/virtio_pci.ko" in chosen
    assert "kernel/drivers/scsi/sd_mod.ko" in chosen
    assert "kernel/drivers/char/hw_random/virtio-rng.ko" in chosen
    assert "kernel/sound/core/snd.ko" not in chosen
    assert "kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko" not in chosen
    # Dependencies are not "wanted" by themselves; the closure adds them.
    assert "kernel/net/psample/psample.ko" not in chosen


def test_dependency_closure_adds_transitive_dependencies() -> None:
    closure = dependency_closure(wanted_modules(DEPS), DEPS)
    for dep in (
        "kernel/net/psample/psample.ko",
        "kernel/drivers/pci/controller/pci-hyperv-intf.ko",
        "kernel/net/core/failover.ko",
        "kernel/drivers/virtio/virtio_ring.ko",
        "kernel/drivers/scsi/scsi_mod.ko",
    ):
        assert dep in closure
    assert "kernel/sound/core/snd.ko" not in closure


def test_dependency_closure_walks_non_transitive_files() -> None:
    deps = {"a.ko": ("b.ko",), "b.ko": ("c.ko",), "c.ko": ()}
    assert dependency_closure(["a.ko"], deps) == {"a.ko", "b.ko", "c.ko"}


def test_dependency_closure_rejects_unknown_module() -> None:
    with pytest.raises(KeyError, match=r"missing\.ko"):
        dependency_closure(["a.ko"], {"a.ko": ("missing.ko",)})


def test_load_order_puts_virtio_ring_before_virtio() -> None:
    order = [module_name(p) for p in load_order("kernel/drivers/net/virtio_net.ko", DEPS)]
    assert order == ["virtio_ring", "virtio", "failover", "net_failover", "virtio_net"]


def test_load_order_detects_cycles() -> None:
    with pytest.raises(ValueError, match="cycle"):
        load_order("a.ko", {"a.ko": ("b.ko",), "b.ko": ("a.ko",)})


def test_nic_dirs_are_relative_to_the_release_dir() -> None:
    assert all(d.startswith("kernel/drivers/net/") for d in NIC_MODULE_DIRS)
