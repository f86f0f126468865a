"""perceus-bus feature http_boot in a namespace the test makes: stage one over HTTP on the provisioning address.

The `net` fixture (test_dnsmasq_netns) runs a real perceus-bus in namespace `srv` on a veth end with
10.77.11.1/24; the requests come from the other end, namespace `node`, as a booting iPXE's would.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

from tests.integration.netmgr.test_dnsmasq_netns import SUBNET, Net, _in_ns, _ip

PORT = 9989
CLIENT = """
import http.client, json, sys, hashlib
host, port = sys.argv[1], int(sys.argv[2])
out = []
conn = http.client.HTTPConnection(host, port, timeout=10)
for method, path, headers in json.loads(sys.argv[3]):
    conn.request(method, path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    out.append({"status": r.status, "len": len(body), "sha": hashlib.sha256(body).hexdigest(),
                "headers": {k.lower(): v for k, v in r.getheaders()}})
    if r.getheader("connection", "").lower() == "close":
        conn.close()
        conn = http.client.HTTPConnection(host, port, timeout=10)
print(json.dumps(out))
"""
PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("open")
except OSError as exc:
    print(type(exc).__name__)
"""


def _requests(net: Net, *requests: tuple[str, str, dict[str, str]]) -> list[dict[str, object]]:
    _ip("-n", net.node, "link", "set", "eth0", "up")
    _ip("-n", net.node, "addr", "replace", f"{SUBNET}.7/24", "dev", "eth0")
    result = _in_ns(net.node, CLIENT, f"{SUBNET}.1", str(PORT), json.dumps(requests))
    assert result.returncode == 0, result.stderr
    replies: list[dict[str, object]] = json.loads(result.stdout)
    return replies


def test_stage_one_over_http_with_ranges(net: Net) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (net.files.tftp / "vmlinuz").write_bytes(data)
    full, head, part, tail, beyond, missing, up, put = _requests(
        net,
        ("GET", "/vmlinuz", {}),
        ("HEAD", "/vmlinuz", {}),
        ("GET", "/vmlinuz", {"Range": "bytes=1000-1999"}),
        ("GET", "/vmlinuz", {"Range": "bytes=-17"}),
        ("GET", "/vmlinuz", {"Range": f"bytes={len(data)}-"}),
        ("GET", "/nodes/52-54-00-77-0b-01.ipxe", {}),
        ("GET", "/../dnsmasq/dnsmasq.conf", {}),
        ("PUT", "/vmlinuz", {"Content-Length": "0"}),
    )
    assert (full["status"], full["len"], full["sha"]) == (200, len(data), hashlib.sha256(data).hexdigest())
    assert full["headers"]["accept-ranges"] == "bytes"  # type: ignore[index]
    assert (head["status"], head["len"], head["headers"]["content-length"]) == (200, 0, str(len(data)))  # type: ignore[index]
    assert (part["status"], part["sha"]) == (206, hashlib.sha256(data[1000:2000]).hexdigest())
    assert part["headers"]["content-range"] == f"bytes 1000-1999/{len(data)}"  # type: ignore[index]
    assert (tail["status"], tail["sha"]) == (206, hashlib.sha256(data[-17:]).hexdigest())
    assert beyond["status"] == 416 and beyond["headers"]["content-range"] == f"bytes */{len(data)}"  # type: ignore[index]
    assert (missing["status"], up["status"]) == (404, 404)
    assert put["status"] == 501  # read-only: GET and HEAD only
    log = net.bus_log()
    assert "event=http_boot_listening" in log and f"url=http://{SUBNET}.1:{PORT}" in log
    assert f"event=boot_file_served method=GET path=/vmlinuz status=200 bytes={len(data)}" in log


def test_boot_script_points_at_http_and_only_the_provisioning_address_listens(net: Net) -> None:
    script = (net.files.tftp / "boot.ipxe").read_text()
    assert (
        f"initrd http://{SUBNET}.1:{PORT}/stage1.cpio.zst || initrd tftp://${{next-server}}/stage1.cpio.zst" in script
    )
    assert _in_ns(net.srv, PROBE, f"{SUBNET}.1", str(PORT)).stdout.strip() == "open"
    assert _in_ns(net.srv, PROBE, "127.0.0.1", str(PORT)).stdout.strip() == "ConnectionRefusedError"


PARALLEL = """
import hashlib, json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, n = sys.argv[1], int(sys.argv[2])
def get(_):
    with urllib.request.urlopen(url, timeout=30) as r:
        return hashlib.sha256(r.read()).hexdigest()
with ThreadPoolExecutor(n) as pool:
    print(json.dumps(list(pool.map(get, range(n)))))
"""


def test_a_boot_storm_of_downloads_gets_whole_files(net: Net) -> None:
    data = os.urandom(4 * 1024 * 1024)
    (net.files.tftp / "stage1.cpio.zst").write_bytes(data)
    _ip("-n", net.node, "link", "set", "eth0", "up")
    _ip("-n", net.node, "addr", "replace", f"{SUBNET}.8/24", "dev", "eth0")
    result = _in_ns(net.node, PARALLEL, f"http://{SUBNET}.1:{PORT}/stage1.cpio.zst", "32")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [hashlib.sha256(data).hexdigest()] * 32
    deadline = time.monotonic() + 2  # each request's line is logged just after its last byte went out
    while net.bus_log().count("path=/stage1.cpio.zst status=200 bytes=4194304") < 32:
        assert time.monotonic() < deadline, net.bus_log()[-3000:]
        time.sleep(0.01)
