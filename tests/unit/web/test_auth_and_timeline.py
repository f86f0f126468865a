"""Tokens, roles and CSRF; the node page's timeline rows; phase-duration metrics from bus events."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from perceus.errors import ConfigError
from perceus.master.store.models import PhaseEvent
from perceus.web.auth import Role, Tokens
from perceus.web.metrics import Metrics
from perceus.web.pages import timeline_rows


def test_token_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "web" / "tokens.json"
    first = Tokens.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Tokens.load_or_create(path) == first
    assert first.read != first.admin and len(first.admin) >= 32
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="readable by others"):
        Tokens.load_or_create(path)


def test_roles_and_csrf_are_bound_to_the_token(tmp_path: Path) -> None:
    t = Tokens.load_or_create(tmp_path / "tokens.json")
    assert (t.role(t.admin), t.role(t.read), t.role(""), t.role(t.admin + "x")) == (
        Role.ADMIN,
        Role.READ,
        Role.NONE,
        Role.NONE,
    )
    csrf = t.csrf_for(t.admin)
    assert t.csrf_ok(t.admin, csrf)
    assert not t.csrf_ok(t.admin, "") and not t.csrf_ok(t.admin, t.csrf_for(t.read))
    other = Tokens(t.read, t.admin, "00" * 32)
    assert not other.csrf_ok(t.admin, csrf)  # another key, another CSRF token


def test_bad_token_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"read": "x"}))
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="lacks"):
        Tokens.load_or_create(path)


def test_timeline_rows_durations_and_failure() -> None:
    ev = [
        PhaseEvent("m", "b", "dhcp", 10.0, done=False),
        PhaseEvent("m", "b", "dhcp", 11.5),
        PhaseEvent("m", "b", "enroll", 11.7),
        PhaseEvent("m", "b", "capsule", 12.0, done=False),
        PhaseEvent("m", "b", "capsule", 20.0, ok=False, detail="chunk hash mismatch"),
    ]
    rows = timeline_rows(ev)
    assert [(r["phase"], round(r["start"], 2), round(r["duration"], 2), r["ok"]) for r in rows] == [
        ("dhcp", 0.0, 1.5, True),
        ("enroll", 1.5, 0.2, True),
        ("capsule", 2.0, 8.0, False),
    ]
    assert rows[2]["detail"] == "chunk hash mismatch"
    assert timeline_rows([PhaseEvent("m", "b", "kexec", 5.0, done=False)])[0]["duration"] is None
    assert timeline_rows([]) == []


def test_phase_durations_from_start_done_event_pairs() -> None:
    m = Metrics(lambda: {"ready": 2}, lambda: {})
    for node, at0, at1 in (("a", 1.0, 3.0), ("b", 1.0, 1.5)):
        m.on_event({"event": "phase", "node": node, "at": at0, "data": {"phase": "capsule", "ok": True, "done": False}})
        m.on_event({"event": "phase", "node": node, "at": at1, "data": {"phase": "capsule", "ok": True, "done": True}})
    m.on_event({"event": "phase", "node": "c", "at": 2.0, "data": {"phase": "dhcp", "ok": False, "done": True}})
    m.on_event({"event": "hello", "node": "a", "data": {"stage": "stage1"}})
    m.on_event({"event": "node_enrolled", "node": "a"})
    get = m.registry.get_sample_value
    assert get("perceus_boot_phase_duration_seconds_count", {"phase": "capsule"}) == 2
    assert get("perceus_boot_phase_duration_seconds_sum", {"phase": "capsule"}) == 2.5
    assert get("perceus_boot_phase_failures_total", {"phase": "dhcp"}) == 1
    assert get("perceus_hellos_total", {"stage": "stage1"}) == 1
    assert get("perceus_enrollments_total", {"how": "auto"}) == 1
    assert get("perceus_nodes", {"state": "ready"}) == 2
    assert get("perceus_bus_up") == 0  # no bus answered
