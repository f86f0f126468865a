"""CLI table tests for `perceus vnfs …`: state before → argv → exit code, stdout, stderr, state after."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore


@dataclass
class Run:
    code: int
    out: str
    err: str


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(paths: Paths, *argv: str, stdin: str = "", tty: bool = False) -> Run:
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(paths=paths, stdin=(Terminal if tty else io.StringIO)(stdin), stdout=out, stderr=err)
    code = main(list(argv), context=ctx)
    return Run(code, out.getvalue(), err.getvalue())


def state(paths: Paths) -> dict[str, object]:
    """Everything a vnfs verb may change: capsule dirs with their manifests, chunk and manifest files."""
    caps = {}
    for d in sorted(paths.vnfs.iterdir()):
        caps[d.name] = (
            (d / "manifest").read_bytes() if (d / "manifest").exists() else b"",
            (d / "config").read_text() if (d / "config").exists() else "",
            (d / "mounted").exists(),
        )
    chunks = sorted(p.name for p in (paths.state_dir / "chunks").rglob("*") if p.is_file())
    return {"capsules": caps, "chunks": chunks}


@pytest.fixture
def seeded(paths: Paths, tree: Path) -> Paths:
    assert run(paths, "vnfs", "import", str(tree), "--name", "deb").code == 0
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid="52:54:00:00:00:01", hostname="n0000", group="cluster", vnfs="deb"))
        store.add(NewNode(nodeid="52:54:00:00:00:02", hostname="n0001", group="cluster"))
    return paths


ERRORS = [
    (["vnfs", "import", "/nonexistent"], 1, "perceus: error: /nonexistent: no such file or directory"),
    (["vnfs", "import", "{tree}", "--name", "deb"], 1, "perceus: error: VNFS 'deb' already exists"),
    (["vnfs", "import", "{tree}", "--name", "bad/name"], 1, "VNFS name 'bad/name' contains illegal characters"),
    (["vnfs", "import", "{tree}", "--name", "x", "--type", "diskless"], 2, "invalid choice: 'diskless'"),
    (["vnfs", "delete", "deb"], 1, "perceus: error: VNFS 'deb' is used by 1 node(s) (n0000); use --force"),
    (["vnfs", "delete", "nosuch"], 1, "perceus: error: VNFS 'nosuch' does not exist"),
    (["vnfs", "delete", "deb", "--force"], 2, "--yes"),
    (["vnfs", "umount", "deb"], 1, "perceus: error: VNFS 'deb' is not mounted"),
    (["vnfs", "configure", "deb"], 2, "nothing to change: give --console"),
    (["vnfs", "clone", "deb", "deb"], 1, "VNFS 'deb' already exists"),
    (["vnfs", "clone", "nosuch", "x"], 1, "VNFS 'nosuch' does not exist"),
    (["vnfs", "verify", "nosuch"], 1, "VNFS 'nosuch' does not exist"),
    (["vnfs"], 2, "perceus vnfs: missing subcommand"),
]


@pytest.mark.parametrize(("argv", "code", "err"), ERRORS)
def test_errors_change_nothing(seeded: Paths, tree: Path, argv: list[str], code: int, err: str) -> None:
    before = state(seeded)
    result = run(seeded, *[a.replace("{tree}", str(tree)) for a in argv])
    assert (result.code, result.out) == (code, "")
    assert err in result.err and result.err.count("\n") == 1
    assert state(seeded) == before


def test_list_text_and_json(seeded: Paths) -> None:
    r = run(seeded, "vnfs", "list")
    assert r.code == 0 and r.err == ""
    header, row = r.out.splitlines()
    assert header.split() == ["NAME", "TYPE", "VER", "KERNEL", "SIZE", "PACKED", "NODES"]
    assert row.split()[:4] == ["deb", "stateless", "1", "vmlinuz-6.1.0-9-amd64"] and row.split()[-1] == "1"
    data = json.loads(run(seeded, "vnfs", "list", "--json").out)
    assert data[0]["name"] == "deb" and data[0]["nodes"] == ["n0000"] and data[0]["version"] == 1
    assert run(seeded, "vnfs", "list", "nomatch*").code == 1


def test_mount_edit_umount_repacks_only_changes(seeded: Paths, tmp_path: Path) -> None:
    links = tmp_path / "mnt"
    links.mkdir()
    r = run(seeded, "vnfs", "mount", "deb", "--link-dir", str(links))
    assert r.code == 0 and r.out == f"The VNFS can be found at: {links / 'deb'}\n"
    assert run(seeded, "vnfs", "mount", "deb").err == "perceus: error: VNFS 'deb' is already mounted\n"
    assert "deb (mounted)" in run(seeded, "vnfs", "list").out
    (links / "deb" / "etc").mkdir()
    (links / "deb" / "etc" / "motd").write_text("hello\n")
    r = run(seeded, "vnfs", "umount", "deb")
    assert r.code == 0 and r.out.endswith("VNFS 'deb' has been successfully un-mounted and updated.\n")
    assert "version 2" in r.out and "new)" in r.out
    assert not (links / "deb").exists()
    assert run(seeded, "vnfs", "mount", "deb").code == 0
    r = run(seeded, "vnfs", "umount", "deb")
    assert r.out == "VNFS 'deb' has been un-mounted (unchanged, version 2).\n"


def test_configure_clone_verify_export_delete(seeded: Paths, tmp_path: Path) -> None:
    r = run(seeded, "vnfs", "configure", "deb", "--console", "ttyS0,115200", "--kexec-args=--reuse-cmdline")
    assert r.code == 0 and "VNFS 'deb' has been configured." in r.out
    assert 'CONSOLE="ttyS0,115200"' in (seeded.vnfs / "deb/config").read_text()
    r = run(seeded, "vnfs", "configure", "deb", tty=True, stdin="\n\n\n\n")
    assert r.code == 0 and r.out.endswith("VNFS 'deb' is unchanged.\n") and "Console device [ttyS0,115200]" in r.out
    chunks_before = state(seeded)["chunks"]
    assert run(seeded, "vnfs", "clone", "deb", "deb2").code == 0
    assert state(seeded)["chunks"] == chunks_before  # a clone shares every chunk
    r = run(seeded, "vnfs", "verify", "deb2")
    assert r.code == 0 and r.out.rstrip().endswith(": OK")
    out = tmp_path / "deb2.vnfs"
    assert run(seeded, "vnfs", "export", "deb2", str(out)).code == 0
    assert run(seeded, "vnfs", "import", str(out), "--name", "deb3").code == 0
    assert state(seeded)["capsules"]["deb3"][0] != b""  # type: ignore[index]
    r = run(seeded, "-y", "vnfs", "delete", "deb2")
    assert r.code == 0 and r.out.startswith("VNFS 'deb2' has been deleted")
    assert run(seeded, "vnfs", "verify", "deb").code == 0  # shared chunks survived the delete


def test_verify_finds_damage_and_rebuild_repairs(seeded: Paths) -> None:
    chunk = next(p for p in (seeded.state_dir / "chunks").rglob("*") if p.is_file())
    chunk.chmod(0o644)
    chunk.write_bytes(b"garbage")
    r = run(seeded, "vnfs", "verify", "deb")
    assert r.code == 1 and f"BAD  chunk {chunk.name[:16]}…: size 7" in r.out
    assert run(seeded, "vnfs", "rebuild", "deb").code == 0
    assert run(seeded, "vnfs", "verify", "deb").code == 0


def test_delete_unused_frees_chunks(seeded: Paths) -> None:
    with SQLiteStore(seeded.database) as store:
        store.update(["52:54:00:00:00:01"], {"vnfs": ""})
    assert run(seeded, "vnfs", "delete", "deb", tty=True, stdin="no\n").code == 1
    r = run(seeded, "vnfs", "delete", "deb", tty=True, stdin="yes\n")
    assert r.code == 0 and "Are you sure you wish to delete VNFS 'deb'?" in r.out
    assert state(seeded) == {"capsules": {}, "chunks": []}
