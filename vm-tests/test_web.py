"""Issue 20 in a real browser: headless Chromium (Selenium) on the dashboard while a QEMU node boots.

The master runs with `enrollment policy = approve`: the node's stage one says hello and waits; the browser sees the
pending count rise without a reload, approves the node by clicking, then watches the fleet table turn the row
`ready` (no reload: a marker set on the page survives), and checks the node page's boot timeline.  Screenshots
are saved under $PERCEUS_ARTIFACTS (default <tmp>/artifacts) and their paths printed.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers.browser import headless_chromium

from perceus.lab import DirectBoot, Lab
from perceus.lab.bus import LabBus, perceus_cli, start_bus
from perceus.lab.web import LabWeb, start_web
from perceus.master.config import Paths
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm


@pytest.fixture
def browser() -> Iterator[object]:
    with headless_chromium(page_load_timeout=30) as driver:
        yield driver


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    out = Path(os.environ.get("PERCEUS_ARTIFACTS", tmp_path / "artifacts")) / "web"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def master(lab: Lab, stage1_image: BuildResult, tmp_path: Path) -> Iterator[tuple[LabBus, LabWeb]]:
    """perceus-bus (CurveZMQ, policy approve, capsule `mini` for new nodes) and perceus-web in the lab."""
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    paths.ensure()
    defaults = paths.defaults_conf.read_text()
    paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = mini", defaults))
    with paths.perceus_conf.open("a") as fh:
        fh.write("enrollment policy = approve\n")
    imported = perceus_cli(
        paths, "vnfs", "import", str(stage1_image.initrd), "--kernel", str(stage1_image.kernel), "--name", "mini"
    )
    assert imported.returncode == 0, imported.stderr
    bus = start_bus(lab, paths, port=9987)
    web = start_web(lab, paths, interval=0.5)
    try:
        yield bus, web
    finally:
        web.close()


def _wait(what: str, fn: Callable[[], object], timeout: float, bus: LabBus) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s\n--- perceus-bus log tail:\n{bus.log_tail()}")
        time.sleep(0.5)


def test_dashboard_shows_a_booting_node_approves_it_and_its_timeline(
    lab: Lab,
    master: tuple[LabBus, LabWeb],
    stage1_image: BuildResult,
    browser: object,
    artifacts: Path,
    record_time: Callable[[str, float], None],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    bus, web = master
    assert isinstance(browser, WebDriver)
    d = browser

    def shot(name: str) -> None:
        path = artifacts / f"{name}.png"
        d.save_screenshot(str(path))
        print(f"screenshot: {path}")

    d.get(web.login_url())
    assert d.find_element(By.ID, "fleet")
    d.execute_script("window.__perceus_no_reload = 1")
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 {bus.kernel_args} perceus.debug=1"
    t0 = time.monotonic()
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append), memory_mb=1024)
    mac = node.mac.upper()

    # Stage one says hello; policy approve: the pending badge counts it, live.
    _wait("the pending badge to count the node", lambda: d.find_element(By.ID, "pending-badge").text == "1", 240, bus)
    record_time("hello → pending badge (browser)", time.monotonic() - t0)
    assert d.execute_script("return window.__perceus_no_reload") == 1
    shot("1-fleet-pending")

    d.get(web.url + "/pending")
    row = d.find_element(By.ID, "pending-" + mac.replace(":", ""))
    row.find_element(By.CSS_SELECTOR, "button[data-action=approve]").click()
    _wait("the approval to be confirmed", lambda: "Approved 1 nodes: n0000" in row.text, 30, bus)
    shot("2-approved")
    audit = (bus.paths.logs / "audit.log").read_text()
    assert '"event": "web_approve"' in audit and '"event": "approved"' in audit

    # The fleet view, opened once: the row appears and turns ready through SSE, without a reload.
    d.get(web.url + "/")
    d.execute_script("window.__perceus_no_reload = 1")
    t1 = time.monotonic()

    def row_state() -> str:
        rows = d.find_elements(By.CSS_SELECTOR, "#fleet tbody tr")
        return next((r.find_elements(By.TAG_NAME, "td")[1].text for r in rows if r.text.startswith("n0000")), "")

    _wait("the booting node in the table", lambda: row_state().startswith(("init", "new")), 60, bus)
    shot("3-fleet-booting")
    _wait("the node's row to turn ready", lambda: row_state().startswith("ready"), 400, bus)
    record_time("approve → ready in the table (browser)", time.monotonic() - t1)
    assert d.execute_script("return window.__perceus_no_reload") == 1, "the fleet view reloaded"
    counts = d.find_element(By.ID, "counts").text
    assert "1 ready" in counts, counts
    shot("4-fleet-ready")

    d.get(web.url + "/nodes/n0000")
    phases = [
        tr.find_elements(By.TAG_NAME, "td")[0].text
        for tr in d.find_elements(By.CSS_SELECTOR, "#timeline tr")
        if tr.find_elements(By.TAG_NAME, "td")
    ]
    assert {"capsule", "kexec"} <= set(phases), phases
    assert "FAILED" not in d.find_element(By.ID, "timeline").text
    shot("5-node-timeline")

    d.get(web.url + "/boot")
    _wait("the boot progress plot", lambda: d.find_elements(By.CSS_SELECTOR, "#svg polyline"), 20, bus)
    shot("6-boot-progress")
    d.get(web.url + "/metrics")
    metrics = d.find_element(By.TAG_NAME, "body").text
    assert 'perceus_nodes{state="ready"} 1.0' in metrics
    assert 'perceus_enrollments_total{how="approved"} 1.0' in metrics
    assert "perceus_capsule_bytes_served_total" in metrics
