"""Who may do what: no token → 401, read token → no writes (403), bad CSRF or foreign Origin → 403; an admin's
approve and revoke run the CLI's verbs and leave audit lines; tokens 0600; TLS with the admin's certificate."""

from __future__ import annotations

import datetime
import ipaddress
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from perceus.master.config import Paths
from perceus.master.security.audit import audit_path, read
from perceus.web.auth import COOKIE, tokens_path
from perceus.web.client import RunningWeb, start_web

from .conftest import cli_json, mac

READS = [
    "/",
    "/boot",
    "/capsules",
    "/pending",
    "/nodes/n0001",
    "/api/v1/nodes",
    "/api/v1/fleet",
    "/api/v1/status",
    "/api/v1/pending",
    "/api/v1/nodes/n0001/timeline",
    "/api/v1/boot",
    "/metrics",
    "/api/v1/session",
]
APPROVE = f"/api/v1/pending/{mac(100)}/approve"


def csrf(web: RunningWeb, token: str) -> str:
    return str(web.get_json("/api/v1/session", token)["csrf"])


@pytest.mark.parametrize("path", READS)
def test_reads_without_a_token_are_401(web: RunningWeb, path: str) -> None:
    status, headers, body = web.request(path)
    assert status == 401
    if path.startswith(("/api/", "/metrics")):
        assert headers["www-authenticate"].startswith("Bearer")
        assert "token" in json.loads(body)["error"]
    else:
        assert b"not signed in" in body and b"n0001" not in body


def test_unknown_token_is_401_and_read_token_reads(web: RunningWeb) -> None:
    assert web.request("/api/v1/nodes", token="not-a-token")[0] == 401
    for path in READS:
        assert web.request(path, token=web.tokens.read)[0] == 200, path


def test_read_token_cannot_write(web: RunningWeb) -> None:
    status, _, body = web.request(
        APPROVE, token=web.tokens.read, method="POST", headers={"X-CSRF-Token": web.tokens.csrf_for(web.tokens.read)}
    )
    assert status == 403
    assert "only read" in json.loads(body)["error"]
    assert web.get_json("/api/v1/session")["csrf"] == ""  # a read session is never handed a CSRF token
    assert len(cli_json(web.paths, "node", "pending")) == 2


def test_admin_without_or_with_bad_csrf_is_403(web: RunningWeb) -> None:
    admin = web.tokens.admin
    for headers in ({}, {"X-CSRF-Token": "0" * 40}, {"X-CSRF-Token": web.tokens.csrf_for(web.tokens.read)}):
        status, _, body = web.request(APPROVE, token=admin, method="POST", headers=headers)
        assert status == 403, headers
        assert "CSRF" in json.loads(body)["error"]
    good = {"X-CSRF-Token": csrf(web, admin), "Origin": "http://evil.example"}
    status, _, body = web.request(APPROVE, token=admin, method="POST", headers=good)
    assert status == 403
    assert "cross-origin" in json.loads(body)["error"]
    assert len(cli_json(web.paths, "node", "pending")) == 2
    assert not any(r["event"].startswith("web_") for r in read(audit_path(web.paths)))


def test_admin_approves_like_the_cli_and_is_audited(web: RunningWeb) -> None:
    admin = web.tokens.admin
    status, _, body = web.request(APPROVE, token=admin, method="POST", headers={"X-CSRF-Token": csrf(web, admin)})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["ok"] and "Approved 1 nodes: n0006" in answer["message"]
    assert [p["nodeid"] for p in cli_json(web.paths, "node", "pending")] == [mac(101)]
    assert "n0006" in [n["hostname"] for n in cli_json(web.paths, "node", "list")]
    events = [(r["event"], r.get("node") or r.get("macs")) for r in read(audit_path(web.paths))]
    assert ("approved", mac(100)) in events  # written by the CLI's verb
    assert ("web_approve", [mac(100)]) in events  # and one line naming the web and the caller
    web_line = next(r for r in read(audit_path(web.paths)) if r["event"] == "web_approve")
    assert (web_line["actor"], web_line["remote"], web_line["ok"]) == ("admin", "127.0.0.1", True)


def test_approving_an_unknown_mac_is_409_and_audited_as_failed(web: RunningWeb) -> None:
    admin = web.tokens.admin
    path = "/api/v1/pending/52:54:00:FF:FF:FF/approve"
    status, _, body = web.request(path, token=admin, method="POST", headers={"X-CSRF-Token": csrf(web, admin)})
    assert status == 409
    assert "pending node" in json.loads(body)["message"]
    line = [r for r in read(audit_path(web.paths)) if r["event"] == "web_approve"][-1]
    assert line["ok"] is False


def test_admin_revokes_and_lifts_it(web: RunningWeb) -> None:
    admin = web.tokens.admin
    headers = {"X-CSRF-Token": csrf(web, admin)}
    status, _, body = web.request("/api/v1/nodes/n0002/revoke", token=admin, method="POST", body={}, headers=headers)
    assert status == 200, body
    assert cli_json(web.paths, "node", "show", "n0002")[0]["attrs"]["revoked"]
    assert web.get_json("/api/v1/fleet?state=revoked")["rows"][0]["hostname"] == "n0002"
    status, _, _ = web.request(
        "/api/v1/nodes/n0002/revoke", token=admin, method="POST", body={"undo": True}, headers=headers
    )
    assert status == 200
    assert not cli_json(web.paths, "node", "show", "n0002")[0]["attrs"].get("revoked")
    events = [r["event"] for r in read(audit_path(web.paths))]
    assert events.count("web_revoke") == 1 and events.count("web_unrevoke") == 1
    assert "revoked" in events and "unrevoked" in events


def test_writes_name_one_node_never_a_pattern(web: RunningWeb) -> None:
    admin = web.tokens.admin
    headers = {"X-CSRF-Token": csrf(web, admin)}
    for path in ("/api/v1/nodes/n%2A/revoke", "/api/v1/nodes/n%5B0000-0002%5D/revoke", "/api/v1/pending/%2A/approve"):
        status, _, body = web.request(path, token=admin, method="POST", body={}, headers=headers)
        assert status == 400, (path, body)
    shown = cli_json(web.paths, "node", "show", "*")
    assert len(shown) >= 3 and not any(n["attrs"].get("revoked") for n in shown)


def test_login_sets_a_strict_httponly_cookie(web: RunningWeb) -> None:
    status, _, _ = web.request("/login?token=wrong")
    assert status == 401
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(web.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port)
    conn.request("GET", f"/login?token={web.tokens.read}")
    resp = conn.getresponse()
    cookie = resp.getheader("set-cookie") or ""
    assert resp.status == 303 and resp.getheader("location") == "/"
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    conn.close()
    status, _, page = web.request("/", headers={"Cookie": f"{COOKIE}={web.tokens.read}"})
    assert status == 200 and b"n0005" in page


def test_token_file_is_0600_and_a_wider_one_is_refused(fleet: Paths) -> None:
    web = start_web(fleet)
    web.stop()
    path = tokens_path(fleet)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(RuntimeError, match="readable by others"):
        start_web(fleet, timeout=5)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "perceus-master")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "admin.crt", tmp / "admin.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_with_the_admins_certificate(fleet: Paths, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    web = start_web(fleet, "--cert", str(cert), "--key", str(key), cafile=str(cert))
    try:
        assert web.url.startswith("https://127.0.0.1:")
        assert [n["hostname"] for n in web.get_json("/api/v1/nodes?group=gpu")] == ["n0000", "n0003"]
    finally:
        web.stop()


def test_binds_loopback_unless_told(fleet: Paths) -> None:
    web = start_web(fleet)
    try:
        assert web.url.startswith("http://127.0.0.1:")
    finally:
        web.stop()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cert", "x.pem"], "--cert and --key go together"),
        (["--listen", "localhost"], "--listen takes an IP address, not 'localhost'"),
    ],
)
def test_bad_options_are_one_line_errors(fleet: Paths, argv: list[str], message: str) -> None:
    import subprocess
    import sys

    from perceus.lab.bus import python_env

    dirs = ["--config-dir", str(fleet.config_dir), "--state-dir", str(fleet.state_dir)]
    out = subprocess.run(
        [sys.executable, "-m", "perceus.web", *dirs, *argv],
        capture_output=True,
        text=True,
        env=python_env(),
        timeout=30,
        check=False,
    )
    assert (out.returncode, out.stderr) == (2, f"perceus-web: error: {message}\n")


def test_print_url_is_the_admin_sign_in(fleet: Paths) -> None:
    import subprocess
    import sys

    from perceus.lab.bus import python_env
    from perceus.web.auth import Tokens

    dirs = ["--config-dir", str(fleet.config_dir), "--state-dir", str(fleet.state_dir)]
    out = subprocess.run(
        [sys.executable, "-m", "perceus.web", *dirs, "--print-url"],
        capture_output=True,
        text=True,
        env=python_env(),
        timeout=30,
        check=False,
    )
    admin = Tokens.load_or_create(tokens_path(fleet)).admin
    assert out.stdout == f"http://127.0.0.1:8987/login?token={admin}\n"
