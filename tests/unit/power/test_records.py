"""BMC URLs and how node entries and group defaults merge into one record."""

from __future__ import annotations

import pytest

from perceus.errors import UsageError
from perceus.master.power.records import BmcRecord, parse_url, resolve


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("ipmi://admin@10.1.0.5", {"protocol": "ipmi", "host": "10.1.0.5", "user": "admin"}),
        ("ipmi://127.0.0.1:9001", {"protocol": "ipmi", "host": "127.0.0.1", "port": 9001}),
        ("redfish://root@bmc5", {"protocol": "redfish", "scheme": "https", "host": "bmc5", "user": "root"}),
        (
            "redfish+http://a@127.0.0.1:8000/redfish/v1/Systems/x/",
            {
                "protocol": "redfish",
                "scheme": "http",
                "host": "127.0.0.1",
                "port": 8000,
                "user": "a",
                "path": "/redfish/v1/Systems/x",
            },
        ),
        ("ipmi://admin@10.1.0.[1-128]", {"protocol": "ipmi", "host": "10.1.0.[1-128]", "user": "admin"}),
        ("ipmi://{hostname}-ipmi", {"protocol": "ipmi", "host": "{hostname}-ipmi"}),
        ("ipmi://[::1]:623", {"protocol": "ipmi", "host": "[::1]", "port": 623}),
    ],
)
def test_parse_url_names_only_what_is_there(url: str, fields: dict[str, object]) -> None:
    assert parse_url(url) == fields


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ipmi://admin:hunter2@10.0.0.1", "must not carry a password"),
        ("http://10.0.0.1", "use ipmi://"),
        ("ipmi://admin@10.0.0.1/x", "no path"),
        ("ipmi://admin@", "missing or invalid host"),
        ("ipmi://h:70000", "port out of range"),
    ],
)
def test_parse_url_refuses(url: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as err:
        parse_url(url)
    assert "hunter2" not in str(err.value)


def test_node_entry_overrides_group_default_and_hostname_fills_the_template() -> None:
    group = {"protocol": "ipmi", "host": "{hostname}-ipmi", "user": "admin", "password": "pw"}
    rec = resolve("n0007", group, {"user": "root"})
    assert rec == BmcRecord("ipmi", "n0007-ipmi", 623, "root", "pw")
    assert str(rec) == "ipmi://root@n0007-ipmi:623" and "pw" not in repr(rec)


def test_what_is_missing_is_said() -> None:
    assert resolve("n1", {}, {}) == "no BMC configured"
    assert resolve("n1", {}, {"protocol": "redfish", "host": "b"}) == "no BMC password set"
    rec = resolve("n1", {}, {"protocol": "redfish", "host": "b", "password": "x"})
    assert isinstance(rec, BmcRecord) and rec.url == "redfish+https://b:443" and rec.base_url == "https://b:443"
