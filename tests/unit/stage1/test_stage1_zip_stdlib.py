"""The stdlib zip: sourceless optimize-2 pycs that zipimport loads, excluded packages left out."""

from __future__ import annotations

import zipfile
import zipimport
from pathlib import Path

from perceus.stage1.zip_stdlib import build, wanted


def test_wanted() -> None:
    assert wanted(Path("os.py"))
    assert wanted(Path("unittest/mock.py"))  # pyroute2 imports it
    assert wanted(Path("sqlite3/__init__.py"))
    assert not wanted(Path("test/support/__init__.py"))
    assert not wanted(Path("sqlite3/test/test_dbapi.py"))
    assert not wanted(Path("tkinter/__init__.py"))
    assert not wanted(Path("config-3.11-x86_64-linux-gnu/python-config.py"))
    assert not wanted(Path("os.txt"))


def test_build_writes_importable_stored_sourceless_pycs(tmp_path: Path) -> None:
    stdlib = tmp_path / "lib"
    (stdlib / "pkg").mkdir(parents=True)
    (stdlib / "pkg/__init__.py").write_text('"""doc"""\nVALUE = 42\nassert False, "stripped at -O2"\n')
    (stdlib / "broken.py").write_text("def (:\n")
    (stdlib / "tkinter").mkdir()
    (stdlib / "tkinter/__init__.py").write_text("")
    out = tmp_path / "python311.zip"
    count, skipped = build(stdlib, out)
    assert (count, skipped) == (1, ["broken.py"])
    with zipfile.ZipFile(out) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["pkg/__init__.pyc"]
        assert infos[0].compress_type == zipfile.ZIP_STORED
    spec = zipimport.zipimporter(str(out)).find_spec("pkg")
    assert spec is not None and spec.loader is not None
    module = type(zipfile)("pkg")
    spec.loader.exec_module(module)  # the assert was compiled away (optimize=2)
    assert module.VALUE == 42
    assert module.__doc__ is None


def test_build_is_reproducible(tmp_path: Path) -> None:
    stdlib = tmp_path / "lib"
    stdlib.mkdir()
    (stdlib / "a.py").write_text("A = 1\n")
    build(stdlib, tmp_path / "one.zip")
    build(stdlib, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
