"""modules.alias matching and modules.dep ordering against fixture index files."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.agent.failures import DriverError
from perceus.agent.modalias import AliasIndex, DepIndex, ModuleIndex, module_name

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def index() -> ModuleIndex:
    return ModuleIndex.load(DATA)


@pytest.mark.parametrize(
    ("modalias", "modules"),
    [
        ("pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", ["virtio_pci"]),
        ("virtio:d00000001v00001AF4", ["virtio_net"]),
        ("pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", ["e1000"]),
        ("pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02", ["nvme"]),
        ("usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00", ["usb_storage"]),
        ("acpi:PNP0A03:", ["pci_root_fake"]),
        ("pci:v00008086d0000FFFFsv00000000sd00000000bc06sc00i00", []),
        ("platform:serial8250", []),
        ("PCI:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", []),  # case-sensitive, as kmod
    ],
)
def test_match(index: ModuleIndex, modalias: str, modules: list[str]) -> None:
    assert index.aliases.match(modalias) == modules


def test_dependencies_load_first(index: ModuleIndex) -> None:
    order = index.deps.load_order(["virtio_net", "virtio_pci"])
    assert order.index("virtio_ring") < order.index("virtio") < order.index("virtio_pci")
    assert order.index("failover") < order.index("net_failover") < order.index("virtio_net")
    assert len(order) == len(set(order))


def test_resolve_plan(index: ModuleIndex) -> None:
    plan = index.resolve(
        ["pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "virtio:d00000001v00001AF4",
         "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02",
         "pci:v0000DEADd0000BEEFsv00000000sd00000000bc00sc00i00"],
        explicit=["ext4", "no-such-mod"],
        noload=["blocked_drv"],
    )  # fmt: skip
    assert plan.load[-2:] == ("virtio_net", "ext4")
    assert "nvme" in plan.builtin and "nvme" not in plan.load
    assert plan.missing == ("no_such_mod",)
    assert plan.blocked == ("blocked_drv",)
    assert "blocked_drv" not in plan.load


def test_compressed_module_path_and_names() -> None:
    assert module_name("kernel/x/e1000e.ko.xz") == "e1000e"
    assert module_name("usb-storage") == "usb_storage"
    assert DepIndex.parse("a/b-c.ko.zst: a/d.ko\n").paths == {"b_c": "a/b-c.ko.zst"}


def test_alias_parser_ignores_noise() -> None:
    index = AliasIndex.parse("# c\n\nsoftdep x pre: y\nalias a:* mod_a\nalias broken\n")
    assert len(index) == 1


def test_bad_modules_dep_and_missing_index(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="without ':'"):
        DepIndex.parse("kernel/a.ko kernel/b.ko\n")
    with pytest.raises(DriverError, match="cannot read the module index"):
        ModuleIndex.load(tmp_path)


def test_cyclic_dep_terminates() -> None:
    deps = DepIndex.parse("a.ko: b.ko\nb.ko: a.ko\n")
    assert sorted(deps.load_order(["a"])) == ["a", "b"]
