"""`perceus module …` table tests: state before → argv → exit code, stdout, stderr, activations after."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.store.models import Activation
from perceus.master.store.sqlite import SQLiteStore


def run(paths: Paths, *argv: str) -> tuple[int, str, str, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), context=CliContext(paths=paths, stdout=out, stderr=err, stdin=io.StringIO()))
    with SQLiteStore(paths.database) as store:
        roles = [f"{a.module}:{a.role}" for a in store.activations()]
    return code, out.getvalue(), err.getvalue(), roles


@pytest.fixture
def store_paths(paths: Paths) -> Paths:
    with SQLiteStore(paths.database) as store:
        store.activate([Activation("masterauth", "ready", "group", "login")])
    return paths


TABLE = [
    # argv, exit, stdout has, stderr has, activations after
    (["module", "activate", "hostname"], 0, "'hostname' has been enabled in 'init/all'", "",
     ["hostname:init/all", "masterauth:ready/group/login"]),
    (["module", "activate", "syncnodes", "ready/node/n-01.a_b", "init/vnfs/deb-12"], 0, "ready/node/n-01.a_b", "",
     ["masterauth:ready/group/login", "syncnodes:init/vnfs/deb-12", "syncnodes:ready/node/n-01.a_b"]),
    (["module", "activate", "hostname", "init/all", "init/bogus/x"], 2, "", "inappropriate role 'init/bogus/x'",
     ["masterauth:ready/group/login"]),
    (["module", "activate", "nosuch"], 1, "", "module 'nosuch' does not exist", ["masterauth:ready/group/login"]),
    (["module", "activate", "passwdfile", "ready/vnfs/deb"], 1, "", "meet 'masterauth' active at 'ready/group/login'",
     ["masterauth:ready/group/login"]),
    (["module", "activate", "passwdfile", "ready/group/other"], 0, "enabled in 'ready/group/other'", "",
     ["masterauth:ready/group/login", "passwdfile:ready/group/other"]),
    (["module", "activate", "masterauth", "ready/group/login"], 0, "", "already active at 'ready/group/login'",
     ["masterauth:ready/group/login"]),
    (["module", "deactivate", "masterauth"], 0, "disabled in 'ready/group/login'", "", []),
    (["module", "deactivate", "masterauth", "ready/all"], 1, "", "not active at 'ready/all'",
     ["masterauth:ready/group/login"]),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "code", "out", "err", "after"), TABLE)
def test_table(store_paths: Paths, argv: list[str], code: int, out: str, err: str, after: list[str]) -> None:
    got = run(store_paths, *argv)
    assert got[0] == code, got
    assert out in got[1] and err in got[2]
    if code:
        assert got[2].startswith("perceus: ") and got[2].count("\n") == 1
    assert got[3] == after


def test_reads_and_json(store_paths: Paths) -> None:
    run(store_paths, "module", "activate", "hostname")
    code, out, _, _ = run(store_paths, "module", "summary", "host*", "master*")
    assert code == 0 and out == "hostname:\n\tinit/all\nmasterauth:\n\tready/group/login\n"
    _, out, _, _ = run(store_paths, "module", "states")
    assert out == "init/all:\n   hostname\nready/group/login:\n   masterauth\n"
    _, out, _, _ = run(store_paths, "module", "list", "--json")
    listed = {m["name"]: m for m in json.loads(out)}
    assert listed["hostname"]["active"] and not listed["xcpu"]["active"] and len(listed) == 10  # + rootkey
    _, out, _, _ = run(store_paths, "module", "show", "masterauth", "--json")
    assert json.loads(out)["default_roles"] == ["init/all", "ready/all"]
    assert json.loads(run(store_paths, "--json", "module", "states")[1]) == {
        "init/all": ["hostname"], "ready/group/login": ["masterauth"]}  # fmt: skip


def test_first_activation_seeds_config_without_overwriting(paths: Paths) -> None:
    run(paths, "module", "activate", "ipaddr")
    conf = paths.config_dir / "modules" / "ipaddr"
    assert conf.read_text().startswith("* eth0:[default]/[default]")
    conf.write_text("* eth0:dhcp\n")
    run(paths, "module", "deactivate", "ipaddr")
    run(paths, "module", "activate", "ipaddr")
    assert conf.read_text() == "* eth0:dhcp\n"
    run(paths, "module", "activate", "passwdfile")
    assert (paths.config_dir / "modules" / "passwdfile" / "all").read_text() == Path("/etc/passwd").read_text()


def _pmod(tmp: Path, name: str, members: dict[str, bytes], *, prefix: str = "") -> Path:
    path = tmp / f"{name}.pmod"
    with tarfile.open(path, "w:bz2") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(prefix + member)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def test_import_activate_links_scripts_like_1x(paths: Paths, tmp_path: Path) -> None:
    pmod = _pmod(tmp_path, "slurm", {"nodescripts/50-slurm.sh": b"#!/bin/sh\necho 'echo hi'\n",
                                     "defaultroles": b"init/all\nready/all\n"}, prefix="slurm/")  # fmt: skip
    assert run(paths, "module", "import", str(pmod))[0] == 0
    assert run(paths, "module", "import", str(pmod))[2] == "perceus: error: module 'slurm' already exists\n"
    code, _, _, roles = run(paths, "module", "activate", "slurm")
    assert code == 0 and roles == ["slurm:init/all", "slurm:ready/all"]
    link = paths.nodescripts / "ready" / "all" / "50-slurm.sh"
    assert os.readlink(link) == str(paths.state_dir / "modules" / "slurm" / "nodescripts" / "50-slurm.sh")
    run(paths, "module", "deactivate", "slurm", "ready/all")
    assert not link.exists() and (paths.nodescripts / "init" / "all" / "50-slurm.sh").is_symlink()
    assert run(paths, "-y", "module", "delete", "slurm")[0] == 0
    assert not (paths.state_dir / "modules" / "slurm").exists()
    assert not (paths.nodescripts / "init" / "all" / "50-slurm.sh").exists()


@pytest.mark.parametrize(
    ("members", "error"),
    [
        ({"../evil": b"x"}, "escapes"),
        ({"defaultroles": b"init/all\n"}, "no nodescripts/"),
    ],
)
def test_bad_pmods_leave_nothing(paths: Paths, tmp_path: Path, members: dict[str, bytes], error: str) -> None:
    code, _, err, _ = run(paths, "module", "import", str(_pmod(tmp_path, "bad", members)))
    assert code != 0 and error in err
    assert not (paths.state_dir / "modules").exists() or list((paths.state_dir / "modules").iterdir()) == []


def test_not_a_pmod(paths: Paths, tmp_path: Path) -> None:
    (tmp_path / "x.pmod").write_bytes(b"not bzip2")
    assert "is not a valid Perceus Module" in run(paths, "module", "import", str(tmp_path / "x.pmod"))[2]
    assert "is not a valid Perceus Module" in run(paths, "module", "import", str(tmp_path / "x.tar"))[2]
