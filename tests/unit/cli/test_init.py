"""`perceus init` (issue 17 items 2 and 4): state before → argv → exit code, stdout, stderr, state after."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key
from tests.unit.cli.clirun import run

from perceus.master.config import Paths
from perceus.master.modules.resolver import Resolver
from perceus.master.store.models import Activation, Node
from perceus.master.store.sqlite import SQLiteStore


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """Nothing exists yet; root's home is a temp dir (init writes ~/.ssh)."""
    monkeypatch.setenv("HOME", str(tmp_path / "root"))
    return Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_keys_scripts_and_activates_rootkey(fresh: Paths, tmp_path: Path) -> None:
    result = run(fresh, "init")
    assert (result.code, result.err) == (0, "")
    home = tmp_path / "root"
    for line in (
        f"Created {fresh.nodescripts}/init/all/00-init",
        f"Created {fresh.nodescripts}/init/all/99-zzzlast",
        f"Created {fresh.config_dir}/keys (SSH host keys: rsa, ecdsa, ed25519)",
        f"Created {home}/.ssh/id_ed25519 (root's SSH key for the nodes)",
        f"Created {fresh.config_dir}/modules/rootkey/authorized_keys",
        "Perceus is now ready to begin provisioning your cluster!",
    ):
        assert line in result.out
    for kind in ("rsa", "ecdsa", "ed25519"):
        secret = fresh.config_dir / "keys" / f"ssh_host_{kind}_key"
        load_ssh_private_key(secret.read_bytes(), None)  # a valid OpenSSH private key
        load_ssh_public_key(secret.with_name(secret.name + ".pub").read_bytes())
        assert mode(secret) == 0o600
    ident = home / ".ssh" / "id_ed25519"
    assert mode(ident) == 0o600 and mode(ident.parent) == 0o700
    public = ident.with_name("id_ed25519.pub").read_text().strip()
    assert public.startswith("ssh-ed25519 ")
    assert public in (fresh.config_dir / "modules" / "rootkey" / "authorized_keys").read_text()
    with SQLiteStore(fresh.database) as store:
        assert store.activations("rootkey") == [Activation("rootkey", "ready", "all")]
    # The module hands that key to a node's provisiond (state `boot` = provisiond start, then `ready`).
    resolver = Resolver(fresh)
    with SQLiteStore(fresh.database) as store:
        resolver.set_activations(store.activations())
    node = Node(nodeid="52:54:00:00:00:01", hostname="n0000")
    for state in ("boot", "ready"):
        (action,) = [a for a in resolver.actions_for(node, state) if a.module == "rootkey"]
        assert (action.kind, action.data) == ("authorized_keys", {"keys": [public]})
    assert not [a for a in resolver.actions_for(node, "init") if a.module == "rootkey"]


def test_init_again_changes_nothing_and_respects_deactivation(fresh: Paths, tmp_path: Path) -> None:
    assert run(fresh, "init").code == 0
    keys = {p.name: p.read_bytes() for p in (fresh.config_dir / "keys").iterdir()}
    ident = (tmp_path / "root" / ".ssh" / "id_ed25519").read_bytes()
    assert run(fresh, "-y", "module", "deactivate", "rootkey").code == 0
    again = run(fresh, "init")
    assert (again.code, again.err) == (0, "")
    assert "Created" not in again.out
    assert {p.name: p.read_bytes() for p in (fresh.config_dir / "keys").iterdir()} == keys
    assert (tmp_path / "root" / ".ssh" / "id_ed25519").read_bytes() == ident
    with SQLiteStore(fresh.database) as store:
        assert store.activations("rootkey") == []


def test_init_uses_roots_existing_key(fresh: Paths, tmp_path: Path) -> None:
    ssh = tmp_path / "root" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (ssh / "id_rsa.pub").write_text("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 admin@master\n")
    result = run(fresh, "init")
    assert result.code == 0
    assert "root's SSH key" not in result.out
    assert not (ssh / "id_ed25519").exists()
    text = (fresh.config_dir / "modules" / "rootkey" / "authorized_keys").read_text()
    assert "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 admin@master\n" in text


def test_init_json(fresh: Paths) -> None:
    result = run(fresh, "--json", "init", "--no-service")
    assert result.code == 0
    assert '"service": ""' in result.out and '"schema_version"' in result.out


def test_configure_sshkeys_keeps_then_replaces(fresh: Paths) -> None:
    assert run(fresh, "configure", "sshkeys").out.startswith("Created SSH host keys (rsa, ecdsa, ed25519)")
    before = (fresh.config_dir / "keys" / "ssh_host_ed25519_key").read_bytes()
    assert "already exist" in run(fresh, "configure", "sshkeys").out
    assert (fresh.config_dir / "keys" / "ssh_host_ed25519_key").read_bytes() == before
    assert run(fresh, "configure", "sshkeys", "--force").code == 0
    assert (fresh.config_dir / "keys" / "ssh_host_ed25519_key").read_bytes() != before


def test_a_bad_line_in_the_keys_file_is_an_error_not_a_key(fresh: Paths) -> None:
    assert run(fresh, "init").code == 0
    path = fresh.config_dir / "modules" / "rootkey" / "authorized_keys"
    path.write_text(path.read_text() + "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    from perceus.errors import ConfigError
    from perceus.master.modules import rootkey

    with pytest.raises(ConfigError, match="line 3 is not an SSH public key"):
        rootkey.actions(fresh)
