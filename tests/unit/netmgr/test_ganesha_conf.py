"""The generated nfs-ganesha config (a real ganesha reads it in tests/integration/nfs/) and its export ids."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from perceus.master.capsule.hybrid import Export
from perceus.master.netmgr import ganesha_conf


def _render(*names: str) -> str:
    exports = [Export(n, Path(f"/var/lib/perceus/vnfs/{n}/nfs"), f"/perceus/{n}", "s1") for n in names]
    return ganesha_conf.render(exports, bind=ipaddress.IPv4Address("10.0.0.1"),
                               network=ipaddress.IPv4Network("10.0.0.0/24"), recovery=Path("/st/nfs/recovery"),
                               plugins="/usr/lib/x86_64-linux-gnu/ganesha")  # fmt: skip


def test_nfsv4_read_only_to_the_provisioning_network_only() -> None:
    text = _render("a", "b")
    assert "Protocols = 4;" in text and "Bind_addr = 10.0.0.1;" in text and "Enable_NLM = false;" in text
    assert "Only_Numeric_Owners = true;" in text and 'RecoveryRoot = "/st/nfs/recovery";' in text
    assert text.count("EXPORT {") == 2 and text.count("    Access_Type = None;") == 2
    assert text.count("CLIENT { Clients = 10.0.0.0/24; Access_Type = RO; }") == 2
    assert 'Path = "/var/lib/perceus/vnfs/b/nfs";' in text and 'Pseudo = "/perceus/b";' in text


def test_export_ids_do_not_shift_when_another_capsule_comes_or_goes() -> None:
    both = ganesha_conf.export_ids(["alpha", "beta", "gamma"])
    assert ganesha_conf.export_ids(["beta", "gamma"]) == {k: v for k, v in both.items() if k != "alpha"}
    assert len(set(both.values())) == 3 and all(2 <= v <= 60001 for v in both.values())


def test_a_path_ganesha_would_misread_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be written into a ganesha config"):
        _render('we"ird')
