"""Image skeleton, the /init asset and the agent source selection."""

from __future__ import annotations

import os
from pathlib import Path

from perceus.stage1.agentsrc import source_dir, source_files
from perceus.stage1.layout import MERGED_USR, init_script, skeleton


def test_skeleton_links_are_relative(tmp_path: Path) -> None:
    skeleton(tmp_path)
    for name, target in MERGED_USR.items():
        assert os.readlink(tmp_path / name) == target
        assert (tmp_path / name).resolve() == (tmp_path / target).resolve()


def test_init_script_contract() -> None:
    text = init_script().decode()
    assert text.startswith("#!/bin/sh\n")
    assert "export PYTHONHOME=/usr" in text
    assert "python3 -m perceus.agent" in text
    assert "perceus.selftest" in text and 'print("python-ok")' in text
    # The exit-code contract with the agent: 0 poweroff, 3 shell, else reboot after a countdown.
    assert "    0)" in text and "    3)" in text and "countdown_reboot" in text
    assert "poweroff -f" in text


def test_agent_source_is_the_agent_namespace_portion() -> None:
    src = source_dir()
    files = [p.as_posix() for p in source_files(src)]
    assert "errors.py" in files
    assert "protocol/__init__.py" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert not any(f.startswith(("master/", "stage1/", "importers/")) for f in files)


def test_source_files_skip_bytecode(tmp_path: Path) -> None:
    (tmp_path / "agent/__pycache__").mkdir(parents=True)
    (tmp_path / "agent/__init__.py").write_text("")
    (tmp_path / "agent/__pycache__/x.cpython-311.pyc").write_bytes(b"")
    (tmp_path / "agent/y.pyc").write_bytes(b"")
    assert source_files(tmp_path) == [Path("agent/__init__.py")]


def test_source_files_leave_out_master_side_code_of_a_merged_install(tmp_path: Path) -> None:
    for rel in ("errors.py", "agent/__main__.py", "master/cli/main.py", "stage1/init", "importers/x.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert [p.as_posix() for p in source_files(tmp_path)] == ["agent/__main__.py", "errors.py"]


def test_selftest_imports_every_node_library() -> None:
    from perceus.stage1.wheels import IMPORT_NAMES, PINS

    selftest = next(line for line in init_script().decode().splitlines() if 'print("python-ok")' in line)
    imported = {name.strip().split(".")[0] for name in selftest.split("import ", 1)[1].split(";")[0].split(",")}
    assert imported == set(IMPORT_NAMES)
    assert len(PINS) >= len(IMPORT_NAMES)
