"""The image cache key: stable for equal inputs, different for any changed input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perceus.stage1.atomic import prune_cache
from perceus.stage1.builder import check_extra_files
from perceus.stage1.cachekey import cache_key, dir_digest, parse_dpkg_query, tree_digest
from perceus.stage1.run import BuildError
from perceus.stage1.wheels import PINS, site_key

INPUTS: dict[str, object] = {
    "level": 3,
    "kernel": ["linux-image-6.1.0-57-amd64", "6.1.192-3"],
    "host_packages": {"busybox-static": "1:1.35.0-4", "python3.11": "3.11.2-6"},
    "wheels": list(PINS),
    "builder": "aa",
    "agent": "bb",
}


def test_key_is_stable_and_order_independent() -> None:
    reordered = dict(reversed(list(INPUTS.items())))
    assert cache_key(INPUTS) == cache_key(reordered) == cache_key(dict(INPUTS))


def test_key_changes_with_every_input() -> None:
    base = cache_key(INPUTS)
    for name, value in [("level", 19), ("agent", "bc"), ("builder", "ab"), ("kernel", ["x", "1"])]:
        assert cache_key({**INPUTS, name: value}) != base, name
    packages = {"busybox-static": "1:1.36", "python3.11": "3.11.2-6"}
    assert cache_key({**INPUTS, "host_packages": packages}) != base


def test_tree_digest_ignores_order_but_not_names_or_content() -> None:
    files = [("a.py", b"1"), ("b.py", b"2")]
    assert tree_digest(files) == tree_digest(reversed(files))
    assert tree_digest(files) != tree_digest([("a.py", b"1"), ("c.py", b"2")])
    assert tree_digest(files) != tree_digest([("a.py", b"1"), ("b.py", b"3")])


def test_dir_digest_reads_files(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("x = 1\n")
    before = dir_digest(tmp_path, [Path("x.py")])
    (tmp_path / "x.py").write_text("x = 2\n")
    assert dir_digest(tmp_path, [Path("x.py")]) != before


def test_parse_dpkg_query_strips_arch() -> None:
    text = "libc6:amd64\t2.36-9+deb12u14\nbusybox-static\t1:1.35.0-4+deb12u1+b1\n"
    assert parse_dpkg_query(text) == {"libc6": "2.36-9+deb12u14", "busybox-static": "1:1.35.0-4+deb12u1+b1"}


def test_wheel_site_key_depends_on_pins_and_python() -> None:
    assert site_key(PINS, "3.11.2") == site_key(PINS, "3.11.2")
    assert site_key(PINS, "3.11.2") != site_key(PINS, "3.11.9")
    assert site_key((*PINS[:-1], "zstandard==0.26.0"), "3.11.2") != site_key(PINS, "3.11.2")


def test_prune_cache_keeps_newest_and_protected(tmp_path: Path) -> None:
    for i, name in enumerate(["old", "mid", "new", "current"]):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (1000 + i, 1000 + i))
    (tmp_path / ".build-tmp").mkdir()
    removed = prune_cache(tmp_path, keep=2, protect=tmp_path / "old")
    assert sorted(p.name for p in removed) == ["mid", "new"]
    remaining = sorted(p.name for p in tmp_path.iterdir())
    # The protected entry plus the newest other one survive; in-progress dirs are never touched.
    assert remaining == [".build-tmp", "current", "old"]


def test_publish_dir_first_finished_entry_wins(tmp_path: Path) -> None:
    from perceus.stage1.atomic import publish_dir

    dest = tmp_path / "entry"
    for content in ("first", "second"):
        ready = tmp_path / f".{content}"
        ready.mkdir()
        (ready / "DONE").write_text(content)
        publish_dir(ready, dest, complete=Path("DONE"))
        assert not ready.exists()
    assert (dest / "DONE").read_text() == "first"


def test_publish_dir_replaces_a_crashed_leftover(tmp_path: Path) -> None:
    from perceus.stage1.atomic import publish_dir

    dest = tmp_path / "entry"
    dest.mkdir()
    (dest / "partial").write_text("")
    ready = tmp_path / ".new"
    ready.mkdir()
    (ready / "DONE").write_text("new")
    publish_dir(ready, dest, complete=Path("DONE"))
    assert sorted(p.name for p in dest.iterdir()) == ["DONE"]


def test_extra_files_must_stay_inside_the_image() -> None:
    check_extra_files({"etc/perceus/master.pub": b"ab" * 32})
    for bad in ("/etc/passwd", "../x", "init", ""):
        with pytest.raises(BuildError):
            check_extra_files({bad: b""})
