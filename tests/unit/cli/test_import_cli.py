"""`perceus import` through `perceus` main(argv): every format's samples, dry run vs real run vs the store."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.unit.cli.import_cases import CASES, Case

from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore

DATA = Path(__file__).parents[2] / "data" / "importers"


@dataclass
class Run:
    code: int
    out: str
    err: str


def perceus(paths: Paths, *argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    ctx = CliContext(paths=paths, stdin=io.StringIO(), stdout=out, stderr=err)
    code = main(list(argv), context=ctx)
    return Run(code, out.getvalue(), err.getvalue())


def stored(paths: Paths) -> list[tuple[str, str, str]]:
    if not paths.database.exists():
        return []
    with SQLiteStore(paths.database) as store:
        return sorted((n.nodeid, n.hostname, n.ip) for n in store.list_nodes())


def _files(case: Case) -> list[str]:
    return [str(DATA / name) for name in case.files]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.fmt}:{c.files[0]}" for c in CASES])
def test_import_through_perceus(case: Case, paths: Paths) -> None:
    files = _files(case)
    dry = perceus(paths, "import", case.fmt, *files, "--skip-invalid", "--dry-run", "--json", *case.args)
    assert dry.code == 0, dry.err
    doc = json.loads(dry.out)
    assert [(n["mac"], n["hostname"], n["ip"]) for n in doc["nodes"]] == list(case.nodes)
    reasons = [e["reason"] for e in doc["errors"]]
    assert len(reasons) == len(case.errors), reasons
    for expected, reason in zip(case.errors, reasons, strict=True):
        assert expected in reason
    if case.skipped is not None:
        assert len(doc["skipped"]) == case.skipped, doc["skipped"]
    if case.bmc:
        assert [n["bmc"] and (n["bmc"]["address"], n["bmc"]["username"]) for n in doc["nodes"]] == list(case.bmc)
    assert stored(paths) == []  # a dry run writes nothing

    strict_dry = perceus(paths, "import", case.fmt, *files, "--dry-run", *case.args)
    assert strict_dry.code == (1 if case.errors else 0)
    strict = perceus(paths, "import", case.fmt, *files, *case.args)
    assert strict.code == (1 if case.errors else 0), strict.err
    if case.errors:
        assert "nothing imported" in strict.err
        assert stored(paths) == []
        strict_json = perceus(paths, "import", case.fmt, *files, "--json", *case.args)
        assert strict_json.code == 1
        assert len(json.loads(strict_json.out)["errors"]) == len(case.errors)
        assert stored(paths) == []
        real = perceus(paths, "import", case.fmt, *files, "--skip-invalid", *case.args)
        assert real.code == 0, real.err
    assert stored(paths) == sorted(case.nodes)
    if case.bmc:  # the real run put the source's BMC addresses into the BMC file (never a password)
        bmcs = perceus(paths, "node", "bmc", "*", "--json")
        by_name = {row["hostname"]: row for row in json.loads(bmcs.out)}
        for (_, hostname, _), bmc in zip(case.nodes, case.bmc, strict=True):
            row = by_name[hostname]
            if bmc:
                assert (row["protocol"], row["host"], row.get("user") or "") == ("ipmi", *bmc), row
                assert row["password"] == "unset"  # no source gives one: the admin sets it


def test_global_options_anywhere_on_the_line(paths: Paths) -> None:
    sample = str(DATA / "maclist/macs.txt")
    for argv in (
        ["--json", "import", "mac-list", sample, "--dry-run"],
        ["import", "mac-list", "--json", sample, "--dry-run"],
        ["-q", "import", "mac-list", sample, "--dry-run", "--json"],
    ):
        run = perceus(paths, *argv)
        assert run.code == 0, run.err
        assert len(json.loads(run.out)["nodes"]) == 4


def test_dry_run_sees_the_store_as_the_real_run_does(paths: Paths) -> None:
    with SQLiteStore(paths.database) as store:
        store.add(NewNode(nodeid="00:1A:2B:3C:4D:02", hostname="n0000"))
    sample = str(DATA / "maclist/macs.txt")
    dry = perceus(paths, "import", "mac-list", sample, "--dry-run", "--json")
    real = perceus(paths, "import", "mac-list", sample, "--json")
    assert dry.code == real.code == 1
    assert "NodeID 00:1A:2B:3C:4D:02 already exists (node n0000)" in dry.err
    problems = [line for line in real.err.splitlines() if line.startswith("perceus: import: ")]
    assert dry.err.splitlines() == problems
    update = perceus(paths, "import", "mac-list", sample, "--dry-run", "--json", "--update")
    assert update.code == 0
    names = [(n["mac"], n["hostname"]) for n in json.loads(update.out)["nodes"]]
    assert names == [
        ("00:1A:2B:3C:4D:01", "n0001"),
        ("00:1A:2B:3C:4D:02", "n0000"),
        ("00:1A:2B:3C:4D:03", "n0002"),
        ("00:1A:2B:3C:4D:04", "n0003"),
    ]
    real = perceus(paths, "import", "mac-list", sample, "--update", "--json")
    assert real.code == 0 and json.loads(real.out)["outcome"] == {"added": 3, "updated": 0, "unchanged": 1}


@pytest.mark.parametrize(
    ("argv", "code", "err"),
    [
        (["import"], 2, "missing subcommand"),
        (["import", "nosuch", "x"], 2, "invalid choice: 'nosuch'"),
        (["import", "mac-list"], 2, "the following arguments are required: FILE"),
        (["import", "mac-list", "/nonexistent/x"], 1, "perceus: error: cannot read /nonexistent/x"),
        (["import", "mac-list", "{macs}", "--name-template", "node"], 2, "bad name template 'node'"),
    ],
)
def test_usage_and_unreadable_files(paths: Paths, argv: list[str], code: int, err: str) -> None:
    argv = [a.replace("{macs}", str(DATA / "maclist/macs.txt")) for a in argv]
    run = perceus(paths, *argv)
    assert run.code == code
    assert err in run.err
    assert stored(paths) == []
